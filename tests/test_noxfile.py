"""``nox -s gpu``: skipped only without an NVIDIA driver, a failure when a GPU is there and CuPy cannot
use it, the CUDA extra chosen from the driver, and installable offline from a folder of wheels."""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("nox")
import noxfile  # noqa: E402  (the repository root is on sys.path under pytest)

SMI_13 = "| NVIDIA-SMI 580.159.03   Driver Version: 580.159.03   CUDA Version: 13.0 |\n"


class Skipped(Exception):
    pass


class Failed(Exception):
    pass


class FakeSession:
    """What the gpu session calls on ``nox.Session``; ``probe_fails`` makes ``python -c probe`` exit 1."""

    def __init__(self, *posargs: str, probe_fails: bool = False) -> None:
        self.posargs = list(posargs)
        self.probe_fails = probe_fails
        self.calls: list[tuple] = []

    def skip(self, reason: str):
        raise Skipped(reason)

    def error(self, reason: str):
        raise Failed(reason)

    def install(self, *args: str) -> None:
        self.calls.append(("install", *args))

    def run(self, *args: str, env=None, **kwargs) -> None:
        self.calls.append(("run", *args, env))
        if self.probe_fails and args[:2] == ("python", "-c"):
            raise Failed("Command python -c ... failed with exit code 1")


def driver(monkeypatch, smi: str | None, stdout: str = SMI_13, returncode: int = 0) -> None:
    monkeypatch.setattr(noxfile.shutil, "which", lambda name: smi if name == "nvidia-smi" else None)
    done = subprocess.CompletedProcess(["nvidia-smi"], returncode, stdout, "")
    monkeypatch.setattr(noxfile.subprocess, "run", lambda *a, **k: done)


def test_no_driver_skips(monkeypatch):
    driver(monkeypatch, None)
    with pytest.raises(Skipped, match="no NVIDIA driver here"):
        noxfile.gpu(FakeSession())


def test_a_broken_driver_fails(monkeypatch):
    failed = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    driver(monkeypatch, "/usr/bin/nvidia-smi", stdout=failed, returncode=9)
    with pytest.raises(Failed, match="nvidia-smi is installed but failed .exit 9: NVIDIA-SMI has failed"):
        noxfile.gpu(FakeSession())


def test_a_gpu_cupy_cannot_use_fails_instead_of_skipping(monkeypatch):
    driver(monkeypatch, "/usr/bin/nvidia-smi")
    session = FakeSession(probe_fails=True)
    with pytest.raises(Failed):
        noxfile.gpu(session)
    assert session.calls[-1][:3] == ("run", "python", "-c")  # the probe ran, pytest did not
    assert "but CuPy cannot use it" in session.calls[-1][3]


def test_offline_from_wheels_with_the_drivers_cuda_extra(monkeypatch):
    driver(monkeypatch, "/usr/bin/nvidia-smi")
    session = FakeSession("--wheels", ".whl", "-x")
    noxfile.gpu(session)
    install, probe, tests = session.calls
    assert install == ("install", "--no-index", "--find-links", ".whl", "-e", ".[test,cuda13]")
    assert probe[:3] == ("run", "python", "-c")
    assert tests[1:-1] == ("python", "-m", "pytest", "-x")
    assert tests[-1] == {"DLCORE_BACKEND": "cupy", "DLCORE_REQUIRE_CUPY": "1"}


def test_the_extra_follows_the_driver_unless_named(monkeypatch):
    driver(monkeypatch, "/usr/bin/nvidia-smi", stdout=SMI_13.replace("13.0", "12.4"))
    session = FakeSession()
    noxfile.gpu(session)
    assert session.calls[0] == ("install", "-e", ".[test,cuda12]")
    assert session.calls[-1][4:-1] == ("-k", "cupy or gpu", "tests")
    session = FakeSession("cuda13")
    noxfile.gpu(session)
    assert session.calls[0] == ("install", "-e", ".[test,cuda13]")
