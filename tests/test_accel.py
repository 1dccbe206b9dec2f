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
    missing = [n for n, used in _accel.status().items() if not used]
    assert not missing, f"not compiled: {missing}; install gcc and the Python headers, then pip install -e ."


def test_version_names_the_accelerators_in_use(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from vistasim.cli import main

    monkeypatch.setenv(_accel.PURE_ENV, "1")
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("vistasim ") and "compiled accelerators: none" in out
    assert all(n in out for n in NAMES)


def test_a_stale_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """An accelerator whose PROTOCOL is not the one the package expects (an old in-place build) is skipped."""
    import sys
    import types

    from vistasim import _c

    monkeypatch.delenv(_accel.PURE_ENV, raising=False)
    fake = types.ModuleType("vistasim._c.fake_accel")
    fake.PROTOCOL = 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vistasim._c.fake_accel", fake)
    monkeypatch.setitem(_c.PROTOCOLS, "fake_accel", 2)
    assert _accel.load("fake_accel") is None
    monkeypatch.setitem(_c.PROTOCOLS, "fake_accel", 1)
    assert _accel.load("fake_accel") is fake
