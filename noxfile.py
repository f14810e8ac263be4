"""Sessions: ``nox -s tests`` (numpy + array_api_strict), ``lint``, ``bench`` (quick), ``gpu``."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on every backend available here (cupy is skipped with its reason)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: style, imports, and the rule that dlcore/ never imports numpy or cupy."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks in quick mode: loop vs vectorized, step vs its floor and PyTorch (if installed).

    Prints the Markdown table and writes bench.json; ``nox -s bench -- --json out.json`` passes options on.
    """
    session.install("-e", ".[dev]")
    session.run("python", "-m", "dlcore.benchmarks.report", "--quick", *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    """The test suite on CuPy; skips cleanly when CuPy has no device here.

    ``nox -s gpu -- cuda13`` picks the CUDA 13 wheel (default cuda12).
    """
    if shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA driver here (nvidia-smi not found); the cupy tests need a CUDA GPU")
    extra = session.posargs[0] if session.posargs else "cuda12"
    session.install("-e", f".[dev,{extra}]")
    probe = (
        "import sys; from dlcore.backends import cupy_status; "
        "r = cupy_status()[1]; print(r or 'ok'); sys.exit(bool(r))"
    )
    try:
        session.run("python", "-c", probe, silent=False)
    except nox.command.CommandFailed:
        session.skip("CuPy has no usable CUDA device here")
    session.run("python", "-m", "pytest", "-k", "cupy or gpu", "tests", env={"DLCORE_BACKEND": "cupy"})
