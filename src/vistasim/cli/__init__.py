"""The ``vistasim`` command: thin argument parsing in front of the library.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``; the
module adds its parser and sets ``func`` (``args -> exit code``). Errors the user can fix
(:class:`vistasim.errors.VistasimError`) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import VistasimError

# Order of appearance in --help. A module that is not there (yet) is skipped.
COMMANDS = ("simulate", "generate", "migrate", "risk", "compare", "calibrate", "report")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other error of vistasim."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Version(argparse.Action):
    """``--version``: the version and which compiled accelerators are in use (worked out only when asked)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from .. import __version__, _accel

        used = _accel.status()
        on = ", ".join(n for n, ok in used.items() if ok) or "none"
        off = [n for n, ok in used.items() if not ok]
        hint = f"; pure Python: {', '.join(off)}" if off else ""
        print(f"vistasim {__version__} (compiled accelerators: {on}{hint})")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vistasim",
        description="Synthetic VistA veterans and a measured rehearsal of their migration to Oracle Health.",
        epilog="Run 'vistasim COMMAND --help' for the options and examples of a command. "
        "With no command, 'vistasim' runs 'vistasim simulate' on the defaults.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and the compiled accelerators in use")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version"):
        args_list = ["simulate", *args_list]
    args = parser.parse_args(args_list)
    try:
        return int(args.func(args) or 0)
    except VistasimError as exc:
        print(f"vistasim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("vistasim: interrupted", file=sys.stderr)
        return 130


def entry() -> None:  # pragma: no cover
    sys.exit(main())
