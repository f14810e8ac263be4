"""Every Python example in README.md runs, as written, on small built-in data: the documentation cannot
drift from the code. Files the examples read (data.csv, new.csv) are made in a temporary directory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    if "digits" in code or "sklearn" in code:
        pytest.importorskip("sklearn", reason="this example needs scikit-learn")
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((60, 2))
    table = np.column_stack([rows, (rows[:, 0] * rows[:, 1] > 0).astype(float)])
    np.savetxt(tmp_path / "data.csv", table, delimiter=",", header="x1,x2,y", comments="")
    np.savetxt(tmp_path / "new.csv", rows[:7], delimiter=",")
    monkeypatch.chdir(tmp_path)
    namespace = {"images": rng.integers(0, 256, size=(5, 4, 4, 3), dtype=np.uint8)}  # the cat example's
    exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)
