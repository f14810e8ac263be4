"""CuPy on an NVIDIA GPU: the probe that says why it cannot run here, and the backend itself."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from dlcore.backends.base import Backend, BackendError

from dlcore.ops import Ops, register_ops

CUPY_FIX = (
    'install the CuPy wheel that matches your CUDA driver: pip install "dlcore[cuda12]" '
    '(CUDA 12.x) or pip install "dlcore[cuda13]" (CUDA 13.x), or use --backend numpy'
)


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


class CupyOps(Ops):
    """The GPU's primitives: the default Array API code for now; fused kernels override hot paths here."""

    name = "cupy"


class CupyBackend(Backend):
    """``cupy`` through ``array_api_compat.cupy``, on one GPU (``cupy:1`` for the second)."""

    name = "cupy"
    is_gpu = True

    def __init__(self, xp: ModuleType, device: Any, lib: ModuleType, ops: Ops | None = None) -> None:
        super().__init__(xp, device, ops)
        self.lib = lib

    @classmethod
    def unavailable(cls) -> str:
        return cupy_status()[1]

    @classmethod
    def create(cls, device: str | None) -> CupyBackend:
        cupy, reason = cupy_status()
        if cupy is None:
            raise BackendError(f"cannot use the cupy backend: {reason}")
        import array_api_compat.cupy as xp

        try:
            gpu = int(device) if device else 0
        except ValueError:
            raise ValueError(f"a cupy device is a GPU number like cupy:1; got {device!r}") from None
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= gpu < count:
            raise BackendError(f"GPU {gpu} does not exist; this machine has {count}")
        ops = CupyOps(xp)
        register_ops(cupy.ndarray, ops)
        return cls(xp, cupy.cuda.Device(gpu), cupy, ops)

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.lib.ndarray) and x.device.id == self.device.id

    def from_host(self, host: np.ndarray) -> Any:
        with self.lib.cuda.Device(self.device.id):
            return self.lib.asarray(host)

    def synchronize(self) -> None:
        self.lib.cuda.Device(self.device.id).synchronize()

    def activate(self) -> contextlib.AbstractContextManager:
        return self.lib.cuda.Device(self.device.id)

    def device_name(self) -> str:
        props = self.lib.cuda.runtime.getDeviceProperties(self.device.id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else name
        return f"{name} (GPU {self.device.id})"

    def memory_info(self) -> dict[str, int] | None:
        with self.lib.cuda.Device(self.device.id):
            free, total = self.lib.cuda.runtime.memGetInfo()
            pool_used = self.lib.get_default_memory_pool().used_bytes()
        return {"free": free, "total": total, "pool_used": pool_used}
