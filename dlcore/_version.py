"""The version, single-sourced: the installed package's metadata, else (a source tree on PYTHONPATH) this."""

from __future__ import annotations

import importlib.metadata

FALLBACK = "0.1.0"  # keep equal to pyproject.toml's version


def _version() -> str:
    try:
        return importlib.metadata.version("dlcore")
    except importlib.metadata.PackageNotFoundError:
        return FALLBACK


__version__ = _version()
