"""The Backend object, backend lookup, and host-side randomness.

A :class:`Backend` carries ``xp`` (an Array-API namespace from ``array-api-compat``, or
``array_api_strict``) together with the few things the Array API standard leaves out:
random numbers, host <-> device transfer and device synchronisation.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from dlcore.backends.host_memory import keep_freed_host_memory

log = logging.getLogger("dlcore.backends")

BACKEND_NAMES = ("auto", "numpy", "cupy", "array_api_strict")
ENV_VAR = "DLCORE_BACKEND"
DTYPES = ("float32", "float64")

CUPY_FIX = (
    'install the CuPy wheel that matches your CUDA driver: pip install "dlcore[cuda12]" '
    '(CUDA 12.x) or pip install "dlcore[cuda13]" (CUDA 13.x), or use --backend numpy'
)


class BackendError(ValueError):
    """A backend was asked for that cannot be used here; the message says why and how to fix it."""


# ----------------------------------------------------------------------------------------------
# Host <-> device
# ----------------------------------------------------------------------------------------------
def to_numpy(x: Any) -> np.ndarray:
    """Copy any array (NumPy, CuPy, array_api_strict on any device, DLPack producers) to a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "array_api_strict":
        return np.from_dlpack(x)
    if module == "torch":
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _is_namespace_array(x: Any, xp: ModuleType) -> bool:
    if not hasattr(x, "__array_namespace__"):
        return False
    try:
        import array_api_compat

        return array_api_compat.array_namespace(x) is xp
    except TypeError:
        return False


# ----------------------------------------------------------------------------------------------
# Randomness: drawn on the host with NumPy's Generator, then moved, so a seed gives
# bit-identical numbers on every backend.
# ----------------------------------------------------------------------------------------------
@dataclass
class HostRNG:
    """Seeded random numbers for a backend (the Array API has no random module).

    Every draw happens on the host in float64 with ``numpy.random.Generator(PCG64(seed))`` and is
    then cast and moved to the backend's device, so equal seeds give equal bits everywhere.
    """

    backend: Backend
    seed: int | None = None
    generator: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.generator = np.random.default_rng(self.seed)

    def normal(self, shape: tuple[int, ...], dtype: Any = "float64", scale: float = 1.0) -> Any:
        """Standard normal draws times ``scale``, as a backend array."""
        return self.backend.asarray(self.generator.standard_normal(shape) * scale, dtype=dtype)

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, dtype: Any = "float64"
    ) -> Any:
        """Uniform draws on ``[low, high)``, as a backend array."""
        return self.backend.asarray(self.generator.uniform(low, high, shape), dtype=dtype)

    def permutation(self, n: int) -> Any:
        """A random permutation of ``range(n)`` as a backend int64 array (for shuffling columns)."""
        return self.backend.asarray(self.generator.permutation(n), dtype="int64")


# ----------------------------------------------------------------------------------------------
# The Backend object
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Backend:
    """One array library on one device: ``xp`` plus the device-specific helpers.

    Attributes:
        name: ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
        xp: the Array-API namespace the core computes with.
        device: the device arrays are created on (``xp``'s device object).
        is_gpu: whether arrays live on a GPU.
        note: why this backend was chosen (set when ``auto`` picked it).
    """

    name: str
    xp: ModuleType
    device: Any
    is_gpu: bool = False
    note: str = ""
    _lib: ModuleType | None = field(default=None, repr=False)

    # -- dtypes ---------------------------------------------------------------------------------
    def dtype(self, dtype: Any) -> Any:
        """The namespace's dtype object for ``"float32"``/``"float64"`` (or an xp dtype itself)."""
        if not isinstance(dtype, str):
            return dtype
        if dtype not in DTYPES and dtype not in ("int64", "bool"):
            raise ValueError(f"unsupported dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        try:
            return getattr(self.xp, dtype)
        except AttributeError:
            raise ValueError(
                f"the {self.name} backend has no {dtype}; use one of {', '.join(DTYPES)}"
            ) from None

    def dtype_name(self, dtype: Any) -> str:
        """``"float32"``/``"float64"`` for an xp dtype."""
        for name in (*DTYPES, "int64", "bool"):
            if getattr(self.xp, name, None) == dtype:
                return name
        return str(dtype)

    # -- transfer -------------------------------------------------------------------------------
    def asarray(self, host_array: Any, dtype: Any = None) -> Any:
        """Move ``host_array`` (NumPy array, nested lists, or another backend's array) onto this backend.

        Arrays already on this backend are cast (if ``dtype`` differs) without a host round trip.
        """
        xp = self.xp
        xdtype = None if dtype is None else self.dtype(dtype)
        if _is_namespace_array(host_array, xp) and host_array.device == self.device:
            if xdtype is not None and host_array.dtype != xdtype:
                return xp.astype(host_array, xdtype)
            return host_array
        host = to_numpy(host_array)
        if xdtype is not None:
            host = host.astype(self.dtype_name(xdtype), copy=False)
        if self.name == "cupy":
            with self._lib.cuda.Device(self.device.id):
                return self._lib.asarray(host)
        return xp.asarray(host, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy a backend array to a NumPy array on the host."""
        return to_numpy(x)

    def synchronize(self) -> None:
        """Block until all queued device work is done (a no-op on CPU backends)."""
        if self.name == "cupy":
            self._lib.cuda.Device(self.device.id).synchronize()

    def quiet_floating_point(self) -> contextlib.AbstractContextManager:
        """Silence NumPy's overflow/invalid warnings: training detects non-finite costs itself."""
        if self.name in ("numpy", "array_api_strict"):
            return np.errstate(over="ignore", invalid="ignore", divide="ignore")
        return contextlib.nullcontext()

    def rng(self, seed: int | None = None) -> HostRNG:
        """A seeded random generator whose draws are identical on every backend."""
        return HostRNG(self, seed)

    # -- description ----------------------------------------------------------------------------
    def device_name(self) -> str:
        """A human-readable device name, e.g. ``"CPU"`` or ``"NVIDIA H100 80GB HBM3 (GPU 0)"``."""
        if self.name == "cupy":
            props = self._lib.cuda.runtime.getDeviceProperties(self.device.id)
            name = props["name"]
            name = name.decode() if isinstance(name, bytes) else name
            return f"{name} (GPU {self.device.id})"
        if self.name == "array_api_strict":
            return f"CPU (array_api_strict {self.device!r})"
        return "CPU"

    def memory_info(self) -> dict[str, int] | None:
        """GPU memory in bytes (``free``, ``total``, ``pool_used``); ``None`` on CPU."""
        if self.name != "cupy":
            return None
        with self._lib.cuda.Device(self.device.id):
            free, total = self._lib.cuda.runtime.memGetInfo()
            pool_used = self._lib.get_default_memory_pool().used_bytes()
        return {"free": free, "total": total, "pool_used": pool_used}

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device_name()!r})"


# ----------------------------------------------------------------------------------------------
# Lookup
# ----------------------------------------------------------------------------------------------
def _installed_cupy_packages() -> list[str]:
    names = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "cupy" or name.startswith("cupy-cuda"):
            names.add(name)
    return sorted(names)


@cache
def cupy_status() -> tuple[ModuleType | None, str]:
    """``(cupy, "")`` when CuPy works with a CUDA device here, else ``(None, reason-and-fix)``."""
    packages = _installed_cupy_packages()
    if len(packages) > 1:
        return None, (
            f"several CuPy packages are installed at once ({', '.join(packages)}); "
            f"uninstall all but the one matching your CUDA driver (pip uninstall {packages[0]})"
        )
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        if not packages:
            return None, f"CuPy is not installed; {CUPY_FIX}"
        return None, f"CuPy ({packages[0]}) is installed but fails to import ({exc}); {CUPY_FIX}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, driver too old, ...
        text = str(exc)
        if "InsufficientDriver" in text or "driver version is insufficient" in text:
            why = "the NVIDIA driver is too old for this CuPy's CUDA version"
        elif "NoDevice" in text or "no CUDA-capable device" in text:
            why = "no CUDA GPU was found"
        else:
            why = f"the CUDA runtime failed to start ({text})"
        return None, f"CuPy is installed but {why}; {CUPY_FIX}"
    if count < 1:
        return None, f"CuPy is installed but no CUDA GPU was found; {CUPY_FIX}"
    try:  # touches cuBLAS/NVRTC, which is where missing CUDA libraries show up
        a = cupy.ones((2, 2), dtype=cupy.float32)
        float((a @ a).sum())
    except Exception as exc:
        return (
            None,
            f"CuPy found a GPU but could not run on it ({type(exc).__name__}: {exc}); {CUPY_FIX}",
        )
    return cupy, ""


def available_backends() -> dict[str, str]:
    """Every backend name mapped to ``""`` if usable here, or to the reason it is not."""
    status = {"numpy": "", "array_api_strict": ""}
    try:
        importlib.import_module("array_api_strict")
    except ImportError:
        status["array_api_strict"] = (
            "array-api-strict is not installed; pip install array-api-strict (it ships in dlcore[dev])"
        )
    status["cupy"] = cupy_status()[1]
    return status


def _split_name(name: str) -> tuple[str, str | None]:
    base, _, dev = name.partition(":")
    return base.strip().lower().replace("-", "_"), (dev.strip() or None)


@cache
def _make_backend(name: str, device: str | None) -> Backend:
    if name in ("numpy", "array_api_strict"):
        keep_freed_host_memory()  # the CPU's memory pool (backends/host_memory.py)
    if name == "numpy":
        import array_api_compat.numpy as xp

        return Backend("numpy", xp, "cpu", False)
    if name == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError:
            raise BackendError(available_backends()["array_api_strict"]) from None
        dev = xp.Device(device) if device else xp.Device()
        return Backend("array_api_strict", xp, dev, False)
    if name == "cupy":
        cupy, reason = cupy_status()
        if cupy is None:
            raise BackendError(f"cannot use the cupy backend: {reason}")
        import array_api_compat.cupy as xp

        gpu = int(device) if device else 0
        if gpu >= cupy.cuda.runtime.getDeviceCount():
            raise BackendError(
                f"GPU {gpu} does not exist; this machine has {cupy.cuda.runtime.getDeviceCount()}"
            )
        return Backend("cupy", xp, cupy.cuda.Device(gpu), True, _lib=cupy)
    raise AssertionError(name)


def get_backend(name: str | Backend | None = None, device: str | None = None) -> Backend:
    """Return the backend called ``name``.

    Args:
        name: ``"auto"`` (CuPy when it imports and a CUDA device answers, else NumPy),
            ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``; an optional ``":device"`` suffix picks
            the device (``"cupy:1"``, ``"array_api_strict:device1"``). ``None`` reads the
            ``DLCORE_BACKEND`` environment variable, defaulting to ``"auto"``. A Backend is returned as is.
        device: the device, instead of the suffix.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        BackendError: the backend cannot work here (the message says why and how to fix it).
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get(ENV_VAR, "auto") or "auto"
    base, suffix = _split_name(str(name))
    device = device or suffix
    if base not in BACKEND_NAMES:
        source = f" (from ${ENV_VAR})" if name == os.environ.get(ENV_VAR) else ""
        raise ValueError(f"unknown backend {name!r}{source}; choose one of: {', '.join(BACKEND_NAMES)}")
    if base == "auto":
        cupy, reason = cupy_status()
        if cupy is not None:
            be = _make_backend("cupy", device)
            note = f"auto: chose cupy on {be.device_name()}"
        else:
            be = _make_backend("numpy", None)
            note = f"auto: chose numpy on CPU because {reason.split(';')[0]}"
        log.info(note)
        return Backend(be.name, be.xp, be.device, be.is_gpu, note, be._lib)
    return _make_backend(base, device)


def backend_of(x: Any) -> Backend:
    """The backend an array belongs to (NumPy, CuPy or array_api_strict, on its own device)."""
    module = type(x).__module__.split(".")[0]
    if module == "numpy":
        return get_backend("numpy")
    if module == "cupy":
        return get_backend("cupy", str(x.device.id))
    if module == "array_api_strict":
        return get_backend("array_api_strict", x.device._device)
    raise ValueError(
        f"arrays of type {type(x).__name__} are not supported; use numpy, cupy or array_api_strict"
    )
