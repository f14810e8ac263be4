"""What this machine offers: backends (and why not), GPU device and memory, library versions, BLAS."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
from typing import Any

import numpy as np
from dlcore.backends.base import one_line, switched_on
from dlcore.backends.host_memory import host_pool_status
from dlcore.backends.numpy_backend import FUSED_MIN_ELEMENTS
from dlcore.backends.registry import available_backends, get_backend

from dlcore._version import __version__

#: dlcore's requirements and every library an extra brings (pyproject.toml's optional-dependencies)
LIBRARIES = (
    "dlcore",
    "numpy",
    "array-api-compat",
    "array-api-strict",
    "cupy",
    "torch",
    "numba",
    "scikit-learn",
    "mpi4py",
    "matplotlib",
    "tqdm",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of Python and the libraries dlcore uses (``None`` when not installed).

    dlcore's own is always there: the running code's ``dlcore.__version__`` (the one source the package
    metadata is built from), also when it runs from a source tree without metadata (``PYTHONPATH``).
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["dlcore"] = __version__
    if versions["cupy"] is None:  # CuPy ships as cupy-cuda12x, cupy-cuda13x, ...
        for dist in importlib.metadata.distributions():
            dist_name = (dist.metadata["Name"] or "").lower()
            if dist_name.startswith("cupy-cuda"):
                versions["cupy"] = f"{dist.version} ({dist_name})"
    return versions


def numpy_blas() -> str:
    """The BLAS NumPy was built against, e.g. ``"scipy-openblas 0.3.27 (OpenBLAS ... Haswell ...)"``."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
    except Exception as exc:  # older NumPy or a build without the metadata
        return f"unknown ({type(exc).__name__})"
    text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    detail = blas.get("openblas configuration")
    return f"{text} ({detail.strip()})" if detail and detail != "unknown" else text


def _cuda_version(number: int) -> str:
    """CUDA's version integer as text: 13000 -> "13.0"."""
    return f"{number // 1000}.{number % 1000 // 10}"


def gpu_info() -> list[dict[str, Any]]:
    """Name, memory (bytes), CUDA versions (text, ``None`` where unknown) and the backend that reaches each
    GPU: CuPy's, else PyTorch's (``auto`` chooses PyTorch on CUDA without CuPy); empty without one."""
    status = available_backends()
    if not status["cupy"]:
        import cupy

        runtime, driver = cupy.cuda.runtime.runtimeGetVersion(), cupy.cuda.runtime.driverGetVersion()
        backends = [get_backend("cupy", str(i)) for i in range(cupy.cuda.runtime.getDeviceCount())]
        versions = _cuda_version(runtime), _cuda_version(driver)
    elif not status["torch"] and get_backend("torch").lib.cuda.is_available():
        torch = get_backend("torch").lib
        backends = [get_backend("torch", f"cuda:{i}") for i in range(torch.cuda.device_count())]
        versions = torch.version.cuda, None  # PyTorch reports its CUDA runtime, not the driver's
    else:
        return []
    devices = []
    for be in backends:
        mem = be.memory_info() or {}
        devices.append(
            {
                "name": be.device_name(),
                "backend": be.name,
                "total_bytes": mem.get("total"),
                "free_bytes": mem.get("free"),
                "cuda_runtime": versions[0],
                "cuda_driver": versions[1],
            }
        )
    return devices


def _cpu_pool() -> str:
    get_backend("numpy")  # creating a CPU backend starts the host memory pool (backends/host_memory.py)
    return host_pool_status()


def fused_kernels_status(versions: dict[str, str | None]) -> str:
    """Whether the numpy backend's numba kernels serve (without compiling them)."""
    if not switched_on("DLCORE_NUMBA"):
        return f"off (DLCORE_NUMBA={os.environ.get('DLCORE_NUMBA', '')})"
    if versions.get("numba") is None:
        return 'off (numba is not installed: pip install "dlcore[numba]")'
    try:  # installed is not importable: numba refuses a NumPy newer than it supports, at import
        importlib.import_module("numba")
    except Exception as exc:
        return f"off (numba {versions['numba']} is installed but fails to import: {one_line(exc)})"
    return f"on (numpy backend, ReLU and tanh layers of {FUSED_MIN_ELEMENTS:,} elements or more)"


def describe() -> dict[str, Any]:
    """Everything ``dlcore info`` prints, as a dict."""
    versions = library_versions()
    return {
        "backends": available_backends(),
        "gpus": gpu_info(),
        "versions": versions,
        "fused_kernels": fused_kernels_status(versions),
        "blas": numpy_blas(),
        "host_memory_pool": _cpu_pool(),
    }
