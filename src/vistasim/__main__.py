"""``python -m vistasim`` runs the command line."""

from .cli import entry

entry()
