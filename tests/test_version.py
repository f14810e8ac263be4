"""One version, written once in dlcore/_version.py: pyproject.toml builds the package metadata from it,
and ``dlcore --version`` and ``dlcore info`` report it also where dlcore runs without that metadata
(a source tree on ``PYTHONPATH``, as a GPU machine without network may run it)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from dlcore.backends.info import library_versions

import dlcore
from dlcore._version import __version__
from dlcore.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_once():
    assert dlcore.__version__ == __version__ and re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert 'version = {attr = "dlcore._version.__version__"}' in text
    assert not re.search(r"^version = \"", text, re.M)  # no second copy in [project]


def test_installed_metadata_says_the_same():
    try:
        installed = importlib.metadata.version("dlcore")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("dlcore runs without package metadata here")
    assert installed == dlcore.__version__


def test_info_names_the_version_without_package_metadata(monkeypatch, capsys):
    real = importlib.metadata.version

    def no_dlcore_metadata(name: str) -> str:
        if name == "dlcore":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", no_dlcore_metadata)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("dlcore")
    assert library_versions()["dlcore"] == __version__
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"dlcore {__version__} on Python ")
    assert "(not installed)" not in out
    assert not re.search(r"^not installed: .*\bdlcore\b", out, re.M)
    assert re.search(rf"^libraries: dlcore {re.escape(__version__)}, numpy ", out, re.M)
