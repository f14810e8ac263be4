"""Shared fixtures: every backend-agnostic test runs on every available backend and dtype.

Backends: numpy; array_api_strict on its default CPU device and on its simulated second device
``device1`` (catches arrays created on the wrong device without a GPU); torch on the CPU when PyTorch
is installed (the dev extra installs it); cupy when a GPU answers, and torch:cuda when PyTorch has CUDA,
skipped otherwise with the first clause of the reason (``dlcore info`` prints it whole, with the fix).
``DLCORE_REQUIRE_CUPY=1`` (scripts/gpu_validate.sh on a machine with a GPU) turns those two GPU skips
into failures: there, cupy or PyTorch's CUDA not answering is the bug.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from dlcore.backends import available_backends, cupy_status, get_backend

BACKENDS = ["numpy", "array_api_strict", "array_api_strict:device1", "torch", "torch:cuda", "cupy"]


def cupy_skip_reason() -> str:
    """Why the cupy tests skip here, in one short clause; ``""`` when CuPy answers or must answer."""
    reason = cupy_status()[1]
    if not reason or os.environ.get("DLCORE_REQUIRE_CUPY") == "1":
        return ""
    return "cupy backend unavailable: " + reason.split(";")[0]


NO_TORCH = "torch backend unavailable: PyTorch is not installed"


def torch_cuda_skip_reason() -> str:
    """Why the torch:cuda tests skip here; ``""`` when PyTorch's CUDA answers or must answer."""
    if available_backends()["torch"]:
        return NO_TORCH
    import torch

    if torch.cuda.is_available() or os.environ.get("DLCORE_REQUIRE_CUPY") == "1":
        return ""
    return "torch:cuda backend unavailable: no CUDA GPU"


def _backend_param(name: str):
    marks = []
    if name == "cupy" and cupy_skip_reason():
        marks.append(pytest.mark.skip(reason=cupy_skip_reason()))
    if name == "torch" and available_backends()["torch"]:
        marks.append(pytest.mark.skip(reason=NO_TORCH))
    if name == "torch:cuda" and torch_cuda_skip_reason():
        marks.append(pytest.mark.skip(reason=torch_cuda_skip_reason()))
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_backend_param(n) for n in BACKENDS])
def backend(request):
    """Each available backend in turn."""
    return get_backend(request.param)


@pytest.fixture(params=["float64", "float32"])
def dtype(request) -> str:
    return request.param


@pytest.fixture
def tol(dtype) -> dict:
    """Tolerances for comparing two computations of the same quantity in ``dtype``."""
    return {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-4, "atol": 1e-5}}[dtype]


@pytest.fixture
def host_rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


def to_host(backend, x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x))


def numeric_gradients(cost_of, backend, params, eps: float = 1e-6) -> dict:
    """Central differences of ``cost_of(host_params) -> float`` for every entry of ``params``.

    The independent oracle for backpropagation: each parameter entry is nudged by +-eps on the host
    (float64) and the cost re-evaluated. Returns {"dW1": ..., "db1": ...} as NumPy arrays.
    """
    host = {k: to_host(backend, v).astype(np.float64) for k, v in params.items()}
    grads = {}
    for name, value in host.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + eps
            plus = cost_of(host)
            value[idx] = old - eps
            minus = cost_of(host)
            value[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        grads["d" + name] = g
    return grads
