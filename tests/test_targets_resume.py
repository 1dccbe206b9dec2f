"""Kill-and-resume: a loader killed (SIGKILL) at a commit point and restarted with the same inputs
ends with the same production state as an uninterrupted run, and redoes no committed step.

The child process is ``tests/_targets_fixtures.py``: it runs a plan of four waves and one backout,
prints every commit event, and kills itself at the k-th. Events come in pairs: ``before:X`` (the
transaction's work is done, the commit not yet) and ``after:X`` (committed), so killing at either
exercises both a rolled-back and a committed step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _pg import fresh_schema_url, pg_server  # noqa: F401  (fixture)

from vistasim.targets import open_target

CHILD = str(Path(__file__).with_name("_targets_fixtures.py"))
N_EVENTS = 54  # commit events of the uninterrupted plan (checked below)
# Kill points: first staging (before/after), first promotes, a wave's last promote and verify, the
# backout (before/after), the last commit.
QUICK_POINTS = [1, 2, 3, 4, 14, 15, 16, 17, 29, 44, 45, 46, 53, 54]
PG_POINTS = [2, 3, 16, 45, 46]


def _run(url: str, kill_at: int, persons_per_commit: int = 1) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [sys.executable, CHILD, url, str(kill_at), str(persons_per_commit)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode not in (0, -9):
        raise AssertionError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.returncode, done.stdout.split()


def _state(url: str) -> tuple[list[tuple[str, str, str, str, str]], list[str]]:
    t = open_target(url)
    try:
        return t.dump(), t.persons()
    finally:
        t.close()


def _once_only(events: list[str]) -> list[str]:
    """Committed steps that must happen exactly once over a whole (possibly resumed) run."""
    return [e for e in events if e.startswith("after:") and not e.startswith("after:verified")]


def _check_resume(
    new_url: Callable[[], str],
    kill_at: int,
    reference: tuple[object, object],
    once: list[str],
    persons_per_commit: int = 1,
) -> None:
    url = new_url()
    rc, first = _run(url, kill_at, persons_per_commit)
    assert rc == -9 and len(first) == kill_at
    rc, second = _run(url, 0, persons_per_commit)
    assert rc == 0
    assert _state(url) == reference
    done_first, done_second = _once_only(first), _once_only(second)
    assert not set(done_first) & set(done_second), "a committed step was redone"
    assert sorted(done_first + done_second) == sorted(once)


def _reference(url: str, persons_per_commit: int = 1) -> tuple[tuple[object, object], list[str]]:
    rc, events = _run(url, 0, persons_per_commit)
    assert rc == 0
    return _state(url), _once_only(events)


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[object, object], list[str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    rc, events = _run(url, 0)
    assert rc == 0 and len(events) == N_EVENTS
    dump, persons = _state(url)
    assert len(persons) == 12  # 15 persons loaded, 10-12 backed out
    return (dump, persons), _once_only(events)


@pytest.mark.parametrize("kill_at", QUICK_POINTS)
def test_sqlite_kill_and_resume_equals_uninterrupted(
    kill_at: int, sqlite_reference: tuple[tuple[object, object], list[str]], tmp_path: Path
) -> None:
    counter = iter(range(10))
    reference, once = sqlite_reference
    _check_resume(lambda: f"sqlite:///{tmp_path / f'run{next(counter)}.db'}", kill_at, reference, once)


def test_sqlite_kill_and_resume_with_group_commits(tmp_path: Path) -> None:
    reference, once = _reference(f"sqlite:///{tmp_path / 'ref.db'}", persons_per_commit=3)
    assert _state(f"sqlite:///{tmp_path / 'ref.db'}") == reference
    for k in (3, 4, 6):
        url = f"sqlite:///{tmp_path / f'run{k}.db'}"
        _check_resume(lambda url=url: url, k, reference, once, persons_per_commit=3)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [k for k in range(1, N_EVENTS + 1) if k not in QUICK_POINTS])
def test_sqlite_kill_and_resume_at_every_commit_point(
    kill_at: int, sqlite_reference: tuple[tuple[object, object], list[str]], tmp_path: Path
) -> None:
    reference, once = sqlite_reference
    _check_resume(lambda: f"sqlite:///{tmp_path / 'run.db'}", kill_at, reference, once)


def test_postgres_kill_and_resume_equals_uninterrupted(pg_server: str, sqlite_reference) -> None:  # noqa: F811
    reference, once = _reference(fresh_schema_url(pg_server))
    # same plan, same content hashes: PostgreSQL ends where SQLite does
    assert reference == sqlite_reference[0]
    for k in PG_POINTS:
        _check_resume(lambda: fresh_schema_url(pg_server), k, reference, once)
