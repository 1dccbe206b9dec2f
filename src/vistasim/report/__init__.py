"""Reports rendered from analytics or from a run's results.json: text (the spec's format), and more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FORMATS = ("txt", "json", "md", "html")


def render(doc: dict[str, Any], fmt: str) -> str:
    """Render a results.json document in one of FORMATS."""
    from ..errors import ConfigError

    renderers: dict[str, Callable[[dict[str, Any]], str]] = {"txt": _txt, "json": _json}
    try:
        from . import markdown as _md  # noqa: F401

        renderers["md"] = _md.render_markdown
    except ImportError:
        pass
    try:
        from . import html as _html  # noqa: F401

        renderers["html"] = _html.render_html
    except ImportError:
        pass
    if fmt not in renderers:
        raise ConfigError(f"report format {fmt!r} is not available (use one of {', '.join(sorted(renderers))})")
    return renderers[fmt](doc)


def _txt(doc: dict[str, Any]) -> str:
    from .text import render_text_report

    return render_text_report(doc, doc.get("config"))


def _json(doc: dict[str, Any]) -> str:
    from ..results import dumps

    return dumps(doc).decode("utf-8")
