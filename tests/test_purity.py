"""dlcore/ never imports numpy, cupy or array_api_strict: it uses only the namespace it is handed."""

from __future__ import annotations

import ast
from pathlib import Path

import dlcore

BANNED = {"numpy", "cupy", "cupyx", "array_api_strict", "torch"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_array_library():
    files = sorted(Path(dlcore.__file__).parent.rglob("*.py"))
    assert len(files) >= 5
    offenders = {str(f): sorted(_imports(f) & BANNED) for f in files if _imports(f) & BANNED}
    assert offenders == {}, f"dlcore/ must use the backend's xp only: {offenders}"


def test_the_checker_catches_a_banned_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom cupy import asarray\n")
    assert _imports(bad) & BANNED == {"numpy", "cupy"}
