"""The compiled accelerators: switched off by the environment, present where CI builds them.

Each accelerator's own tests (test_fhirc.py, test_zwrc.py) check that it gives the pure-Python answers;
these check the switch and that a CI install really compiled them (an optional extension that failed to
build only prints a warning, and the suite would then pass on the slow path unnoticed).
"""

from __future__ import annotations

import os

import pytest

from vistasim import _accel
from vistasim._c import NAMES


def test_the_environment_switch_turns_every_accelerator_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, off in (("1", True), ("yes", True), ("0", False), ("", False), ("false", False)):
        monkeypatch.setenv(_accel.PURE_ENV, value)
        assert _accel.pure_python() is off
        if off:
            assert all(_accel.load(n) is None for n in NAMES)
            assert _accel.status() == dict.fromkeys(NAMES, False)


def test_an_unknown_accelerator_is_simply_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    assert _accel.load("no_such_accelerator") is None


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI promises a C compiler")
def test_ci_built_every_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    missing = [n for n in NAMES if _accel.load(n) is None]
    assert not missing, f"not compiled: {missing}; install gcc and the Python headers, then pip install -e ."
