"""The exceptions vistasim raises, in one place.

VistasimError                 anything the user can fix; the CLI prints its message on one line, exit 2
 +-- ConfigError              a configuration value, key or file is wrong (also a ValueError)
 +-- InputError               an input file or folder is missing, unreadable or malformed
 |    +-- ZWRFormatError      a ZWR file is truncated or corrupt (names the file and the line)
 +-- OutputError              an output path cannot be written
 +-- MissingDependencyError   an optional extra is not installed (the message says what to pip install)
"""

from __future__ import annotations


class VistasimError(Exception):
    """Base of every error the user can fix. ``str(err)`` is one line that names the input and the fix."""


class ConfigError(VistasimError, ValueError):
    """A configuration value out of range, an unknown key or strategy, malformed YAML."""


class InputError(VistasimError):
    """An input path is missing or its content is unusable."""


class ZWRFormatError(InputError):
    """A ZWR line could not be parsed."""

    def __init__(self, path: str, line_no: int, reason: str) -> None:
        self.path = path
        self.line_no = line_no
        self.reason = reason
        super().__init__(
            f"{path}, line {line_no}: {reason} (fix the export, or read with skip_bad_lines=True to skip and count bad lines)"
        )


class OutputError(VistasimError):
    """An output path is not writable."""


class MissingDependencyError(VistasimError, ImportError):
    """An optional dependency is missing."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs {package}: install it with  pip install 'vistasim[{extra}]'")


def require(module: str, extra: str, purpose: str):  # type: ignore[no-untyped-def]
    """Import an optional dependency or raise a MissingDependencyError with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only where the extra is absent
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
