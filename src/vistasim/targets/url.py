"""Choose a load target by URL: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
``sqlite:///:memory:``, ``postgresql://user@host:port/db`` (``postgres://`` too).

SQLite paths follow the common convention (SQLAlchemy's): three slashes then a relative path, four
slashes for an absolute one.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import DEFAULT_PERSONS_PER_COMMIT, CommitHook, Target

SCHEMES = ("sqlite", "postgresql", "postgres")


def sqlite_path(url: str) -> str:
    """The file path in an ``sqlite:///...`` URL (``:memory:`` for an in-memory database)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InputError(
            f"{url}: not an SQLite URL; write sqlite:///relative.db, sqlite:////abs/path.db or sqlite:///:memory:"
        )
    path = url[len(prefix) :]
    if "?" in path:
        raise InputError(f"{url}: query options are not supported in SQLite URLs; pass them as keyword arguments")
    return path


def open_target(
    url: str,
    *,
    persons_per_commit: int = DEFAULT_PERSONS_PER_COMMIT,
    on_commit: CommitHook | None = None,
    **options: Any,
) -> Target:
    """Open (and create if needed) the load target a URL names.

    Raises InputError, naming the URL, for an unknown scheme, a malformed URL, a missing folder or an
    unreachable server; MissingDependencyError for a PostgreSQL URL without the ``postgres`` extra.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InputError(
            f"target URL {url!r}: expected scheme://..., e.g. sqlite:///out.db or postgresql://user@host/db"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteTarget

        if options:
            raise InputError(f"{url}: option(s) {', '.join(sorted(options))} apply to PostgreSQL only; remove them")

        return SQLiteTarget(sqlite_path(url), url=url, persons_per_commit=persons_per_commit, on_commit=on_commit)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresTarget

        return PostgresTarget(url, persons_per_commit=persons_per_commit, on_commit=on_commit, **options)
    raise InputError(f"target URL {url}: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
