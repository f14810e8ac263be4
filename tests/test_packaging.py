"""Packaging: the CUDA extras and the advice naming them, imports from a source checkout, and the sdist."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dlcore.backends import cupy_backend

ROOT = Path(__file__).resolve().parents[1]


def test_cuda_extras_take_cupys_ctk_extra():
    text = (ROOT / "pyproject.toml").read_text()
    for major in (12, 13):  # "ctk" is the extra's name in cupy-cuda12x / cupy-cuda13x 14.2.0's METADATA
        assert re.search(rf'^cuda{major} = \["cupy-cuda{major}x\[ctk\]>=14"\]$', text, re.M)


def test_the_install_advice_says_which_extra_to_choose():
    advice = cupy_backend.CHOOSE_WHEEL
    assert 'pip install "dlcore[cuda13]" if nvidia-smi shows "CUDA Version: 13.x" or newer' in advice
    assert '"dlcore[cuda12]" if it shows 12.x' in advice
    readme = (ROOT / "README.md").read_text()
    assert '`13.x` or newer: `pip install "dlcore[cuda13]"`; `12.x`: `pip install "dlcore[cuda12]"`' in readme
    assert "`cupy-cuda13x[ctk]`" in readme


def test_python_run_in_the_checkout_finds_dlcore_backends_without_an_editable_install():
    """After a plain `pip install .`, Python run in the repository imports its dlcore/ first, which holds
    no backends/: `import dlcore` failed with "No module named 'dlcore.backends'" (only the editable
    install's finder hid it). Here that finder is taken away."""
    import subprocess
    import sys

    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
        "getattr(f, '__module__', '')]; import dlcore.backends, dlcore.benchmarks, pkgutil; "
        "print(dlcore.backends.__file__); print(dlcore.benchmarks.__file__); "
        "names = {m.name for m in pkgutil.iter_modules(dlcore.__path__)}; "
        "print(sorted({'tests', 'dlcore', 'noxfile'} & names))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    # and nothing else of the checkout's root under dlcore (help(dlcore) listed tests, noxfile, dlcore)
    assert done.stdout.split() == [
        str(ROOT / "backends" / "__init__.py"),
        str(ROOT / "benchmarks" / "__init__.py"),
        "[]",
    ]


def test_the_source_distribution_carries_its_tests_documents_and_license(tmp_path):
    """The sdist shipped tests/test_*.py without tests/conftest.py (its tests could not run), and none of
    LICENSE, BENCHMARKS.md, ARCHITECTURE.md (linked from the README), noxfile.py or scripts/."""
    import tarfile

    pytest.importorskip("setuptools", minversion="77", reason="the build backend pyproject.toml names")
    from setuptools import build_meta as setuptools_build

    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        name = setuptools_build.build_sdist(str(tmp_path))
    finally:
        os.chdir(cwd)
    with tarfile.open(tmp_path / name) as sdist:
        files = {member.split("/", 1)[1] for member in sdist.getnames() if "/" in member}
    for needed in ("LICENSE", "README.md", "BENCHMARKS.md", "ARCHITECTURE.md", "noxfile.py"):
        assert needed in files
    for needed in (
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/distributed_worker.py",
        "scripts/gpu_validate.sh",
    ):
        assert needed in files
    assert not any("__pycache__" in f for f in files)


@pytest.mark.parametrize("argv", [["--nox", "cuda11"], ["--help"], ["cuda12"], ["--nox", "cuda12", "x"]])
def test_fetch_gpu_wheels_refuses_bad_arguments_before_emptying_the_wheel_folder(tmp_path, argv):
    """`--nox cuda11` printed the usage after `rm -rf .whl` (up to a GB of downloads gone); `--help` and a
    bare `cuda12` started the default download."""
    import shutil
    import subprocess

    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    (tmp_path / ".whl").mkdir()
    (tmp_path / ".whl" / "kept.whl").write_bytes(b"kept")
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "fetch_gpu_wheels.sh"), *argv], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.startswith("usage: ")
    assert (tmp_path / ".whl" / "kept.whl").read_bytes() == b"kept"
