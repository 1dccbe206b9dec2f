"""Writing run output safely: files appear complete or not at all, and an unwritable path fails early."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


def ensure_dir(path: Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) and check it is writable; OutputError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{what} {str(path)!r} cannot be created ({exc.strerror or exc}); choose a writable path"
        ) from None
    if not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a file, not a folder; choose another path")
    if not os.access(path, os.W_OK):
        raise OutputError(f"{what} {str(path)!r} is not writable; choose a writable path")
    return path


def check_dir_creatable(path: Path, what: str = "output folder") -> Path:
    """Fail before any work if ``path`` could not be created or written; creates nothing."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{what} {str(path)!r} is a file, not a folder; choose another path")
        if not os.access(path, os.W_OK):
            raise OutputError(f"{what} {str(path)!r} is not writable; choose a writable path")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK) or str(parent).startswith("/proc"):
        raise OutputError(
            f"{what} {str(path)!r} cannot be created ({str(parent)!r} is not writable); choose a writable path"
        )
    return path


def check_writable_file(path: Path, what: str = "output file") -> Path:
    """Fail before any work if ``path`` cannot be written (its folder missing and not creatable, or read-only)."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a folder; give a file path")
    check_dir_creatable(path.parent if str(path.parent) else Path("."), f"folder of {what}")
    return path


def _default_mode() -> int:
    """What ``open()`` would give a new file under the process umask (mkstemp always gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    check_writable_file(path)
    ensure_dir(path.parent if str(path.parent) else Path("."), "output folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        # the run folder's files get the same permissions whichever way they were written
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(Path(path), text.encode("utf-8"))
