"""vistasim: synthetic VistA veterans and a measured rehearsal of their migration to Oracle Health."""

from __future__ import annotations

__version__ = "0.1.0"
