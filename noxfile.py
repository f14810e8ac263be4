"""Sessions: ``nox -s tests`` (numpy + array_api_strict), ``lint``, ``bench`` (quick), ``gpu``."""

from __future__ import annotations

import re
import shutil
import subprocess

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


def _driver_cuda(session: nox.Session) -> str:
    """The CUDA major the NVIDIA driver runs ("13"), "" when nvidia-smi does not say; skips the session
    where there is no driver at all, and fails it where nvidia-smi is there but does not answer."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        session.skip("no NVIDIA driver here (nvidia-smi not found): the cupy tests need a CUDA GPU")
    try:
        done = subprocess.run([smi], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        session.error(f"nvidia-smi is installed but did not run ({exc}): fix the NVIDIA driver")
    if done.returncode != 0:
        said = ((done.stdout + done.stderr).strip().splitlines() or ["no output"])[0]
        session.error(
            f"nvidia-smi is installed but failed (exit {done.returncode}: {said}): fix the NVIDIA driver"
        )
    match = re.search(r"CUDA Version: (\d+)\.", done.stdout)
    return match.group(1) if match else ""


@nox.session
def gpu(session: nox.Session) -> None:
    """The tests on CuPy. Skips only where there is no NVIDIA driver; where nvidia-smi answers, a GPU is
    there, and CuPy not being able to use it fails the session with the reason and its fix.

    ``nox -s gpu`` installs ``.[test,cudaNN]`` for the driver's CUDA (13.x or newer: cuda13; 12.x:
    cuda12); ``nox -s gpu -- cuda12`` chooses. Offline, from a folder of wheels (the test extra, CuPy
    with its ctk extra and the nvidia-* packages it pulls, setuptools>=77 to build dlcore):
    ``nox -s gpu -- --wheels DIR`` (``scripts/fetch_gpu_wheels.sh --nox cuda13`` downloads them). Other
    arguments go to pytest (default: ``-k "cupy or gpu" tests``).
    """
    driver = _driver_cuda(session)
    args = list(session.posargs)
    wheels = None
    if "--wheels" in args:
        i = args.index("--wheels")
        if i + 1 >= len(args):
            session.error("--wheels needs a folder: nox -s gpu -- --wheels .whl")
        wheels = args[i + 1]
        del args[i : i + 2]
    extras = [a for a in args if re.fullmatch(r"cuda\d+", a)]
    args = [a for a in args if a not in extras]
    extra = extras[0] if extras else ("cuda12" if driver == "12" else "cuda13")
    offline = ["--no-index", "--find-links", wheels] if wheels else []
    session.install(*offline, "-e", f".[test,{extra}]")
    probe = (
        "import sys; from dlcore.backends import cupy_status; r = cupy_status()[1]; "
        "print('cupy: ok' if not r else 'a GPU is here (nvidia-smi answers) but CuPy cannot use it: ' + r); "
        "sys.exit(bool(r))"
    )
    session.run("python", "-c", probe)  # fails the session, loudly, when CuPy cannot use the GPU
    session.run(
        "python",
        "-m",
        "pytest",
        *(args or ["-k", "cupy or gpu", "tests"]),
        env={"DLCORE_BACKEND": "cupy", "DLCORE_REQUIRE_CUPY": "1"},  # a cupy test may not skip here
    )
