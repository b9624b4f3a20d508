"""`genmedia`: a command-line client of the genmedia API, for the people who run it (stdlib only)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
