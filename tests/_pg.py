"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, stopped afterwards.

``initdb`` refuses to run as root, so as root the cluster is created and run as the ``postgres`` OS
user (the folder is chowned to it). The server listens only on 127.0.0.1, on a free port, with trust
authentication and durability switched off (fsync) since its data is thrown away.

Use the ``pg_server`` fixture (session-scoped: one server per test session) and ``pg_url`` (a
fresh schema per test, so tests never see each other's tables). Set VISTASIM_PG_URL to use an
existing server instead. When the binaries or psycopg are missing the tests skip with the reason,
except under CI=true, where they fail: CI must exercise PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def find_binary(name: str) -> str | None:
    """A PostgreSQL server binary on PATH or under Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """A running throwaway cluster. ``url`` connects as the superuser ``postgres`` to db ``postgres``."""

    datadir: str
    port: int
    pg_ctl: str
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", self.datadir, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(os.path.dirname(self.datadir), ignore_errors=True)


def start_cluster() -> PgCluster:
    """initdb + pg_ctl start on a free loopback port; raises RuntimeError with the server log if it fails."""
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("initdb/pg_ctl not found (run .ci/postgres.sh, or apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="vistasim-pg-")
    datadir = os.path.join(root, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise FileNotFoundError("running as root and there is no 'postgres' OS user for initdb") from exc
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = dict(capture_output=True, text=True, timeout=120)
    done = subprocess.run(
        [*as_user, initdb, "-D", datadir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
        **run,
    )
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stderr.strip()[-800:]}")
    port = _free_port()
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=40"
    )
    log = os.path.join(root, "server.log")
    done = subprocess.run([*as_user, pg_ctl, "-D", datadir, "-o", opts, "-l", log, "-w", "-t", "60", "start"], **run)
    if done.returncode != 0:
        tail = open(log).read()[-800:] if os.path.exists(log) else done.stderr
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {tail.strip()}")
    return PgCluster(datadir, port, pg_ctl, as_user)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server for this session (VISTASIM_PG_URL, or a throwaway cluster)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'vistasim[postgres]')")
    existing = os.environ.get("VISTASIM_PG_URL")
    if existing:
        yield existing
        return
    try:
        cluster = start_cluster()
    except (FileNotFoundError, RuntimeError) as exc:
        _unavailable(str(exc))
    try:
        yield cluster.url
    finally:
        cluster.stop()


def fresh_schema_url(server_url: str) -> str:
    """A URL whose connections work in a new, empty schema (cheaper than a database per test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url(pg_server: str) -> str:
    return fresh_schema_url(pg_server)
