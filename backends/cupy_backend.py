"""CuPy on an NVIDIA GPU: the probe that says why it cannot run here, and the backend itself."""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
from collections.abc import Iterator
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from dlcore.backends.base import Backend, BackendError, HostRNG, one_line, require_tf32_cores
from dlcore.backends.cupy_kernels import CupyOps

from dlcore.ops import Ops, register_ops

NUMPY_FALLBACK = "or use the numpy backend"
#: which wheel: the CUDA major of the driver (the "CUDA Version" nvidia-smi prints), each with CuPy's ``ctk``
#: extra (cuBLAS, cuRAND, NVRTC, ... as pip packages: CuPy 14 wheels do not bundle them)
CHOOSE_WHEEL = (
    'pip install "dlcore[cuda13]" if nvidia-smi shows "CUDA Version: 13.x" or newer, '
    '"dlcore[cuda12]" if it shows 12.x (each brings CuPy and the CUDA libraries it loads)'
)
CUPY_FIX = f"{CHOOSE_WHEEL}, {NUMPY_FALLBACK}"

#: the CUDA libraries CuPy loads at run time, by the name in their file (libcublas.so.13, ...)
CUDA_LIBRARIES = {
    "cublas": "cuBLAS",
    "cublaslt": "cuBLASLt",
    "nvrtc": "NVRTC",
    "curand": "cuRAND",
    "cusolver": "cuSOLVER",
    "cusparse": "cuSPARSE",
    "cufft": "cuFFT",
    "nvjitlink": "nvJitLink",
    "cudart": "the CUDA runtime",
}
#: NVRTC's own helper, libnvrtc-builtins.so.13.0, counts as NVRTC ("failed to open libnvrtc-builtins...")
_LIBRARY_FILE = re.compile(
    r"lib(" + "|".join(CUDA_LIBRARIES) + r")(?:-builtins)?\.so(?:\.\d+)*", re.IGNORECASE
)


def _installed_cupy_packages() -> list[str]:
    names = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "cupy" or name.startswith("cupy-cuda"):
            names.add(name)
    return sorted(names)


def _cuda(version: int) -> str:
    """CUDA's integer version (13020) as text ("13.2")."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _package_major(packages: list[str]) -> int | None:
    """The CUDA major a CuPy wheel is built for, from its name (cupy-cuda13x -> 13)."""
    for name in packages:
        match = re.fullmatch(r"cupy-cuda(\d+)x?", name)
        if match:
            return int(match.group(1))
    return None


def missing_library(exc: BaseException) -> str:
    """``"libcublas.so.13 (cuBLAS)"`` when ``exc`` says a CUDA library could not be loaded, else ``""``.

    CuPy raises ``ImportError: libcublas.so.13: cannot open shared object file`` for cuBLAS and cuRAND,
    and cuda-pathfinder's ``DynamicLibNotFoundError: Failure finding "libnvrtc.so.13 ..."`` for NVRTC.
    """
    match = _LIBRARY_FILE.search(str(exc))
    if not match:
        return ""
    return f"{match.group(0)} ({CUDA_LIBRARIES[match.group(1).lower()]})"


def libraries_fix(major: int | None) -> str:
    """How to install the CUDA libraries CuPy loads (its ``ctk`` extra)."""
    major = major or 13
    return (
        f'install them with CuPy\'s ctk extra: pip install "dlcore[cuda{major}]" (it pulls '
        f"cupy-cuda{major}x[ctk]), or install the CUDA Toolkit {major}, {NUMPY_FALLBACK}"
    )


@cache
def cupy_status() -> tuple[ModuleType | None, str]:
    """``(cupy, "")`` when CuPy works with a CUDA device here, else ``(None, reason-and-fix)``.

    The reason is one line, ``why; fix``: two CuPy wheels, CuPy missing or broken, no NVIDIA driver, a
    driver older than the wheel's CUDA, no GPU visible, or CUDA libraries missing; each has its own fix.
    """
    packages = _installed_cupy_packages()
    if len(packages) > 1:
        return None, (
            f"several CuPy packages are installed at once ({', '.join(packages)}) and overwrite each "
            f"other's files; uninstall them all (pip uninstall -y {' '.join(packages)}), "
            f"then {CHOOSE_WHEEL}, {NUMPY_FALLBACK}"
        )
    major = _package_major(packages)
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a RuntimeError from a broken install
        if not packages:
            return None, f"CuPy is not installed; {CUPY_FIX}"
        library = missing_library(exc)
        if library:
            return None, f"CuPy ({packages[0]}) cannot load {library}; {libraries_fix(major)}"
        return None, (
            f"CuPy ({packages[0]}) is installed but fails to import ({one_line(exc)}); reinstall it: "
            f"pip install --force-reinstall {packages[0]}, {NUMPY_FALLBACK}"
        )
    runtime = cupy.cuda.runtime
    try:
        driver = int(runtime.driverGetVersion())  # 0: no driver (no libcuda) at all
    except Exception:
        driver = -1  # unknown: getDeviceCount below says more
    if driver == 0:
        return None, (
            "CuPy is installed but no NVIDIA driver was found (CUDA driver version 0); install the "
            "NVIDIA driver for your GPU until nvidia-smi lists it (reinstalling CuPy will not help), "
            f"{NUMPY_FALLBACK}"
        )
    try:
        built = int(runtime.runtimeGetVersion())  # the CUDA version this CuPy wheel is built for
    except Exception:
        built = (major or 0) * 1000
    major = major or (built // 1000 or None)
    wheel = f"{packages[0]}, " if packages else ""
    if driver > 0 and built and driver // 1000 < built // 1000:
        switch = ""
        if driver // 1000 >= 12:
            switch = (
                f", or switch to the wheel for CUDA {driver // 1000}: "
                f"pip uninstall -y {packages[0] if packages else 'cupy'} && "
                f'pip install "dlcore[cuda{driver // 1000}]"'
            )
        return None, (
            f"CuPy is installed but the NVIDIA driver (CUDA {_cuda(driver)}) is older than this CuPy's "
            f"CUDA {_cuda(built)} ({wheel}CUDA {built // 1000} needs a newer driver); update the NVIDIA "
            f"driver{switch}, {NUMPY_FALLBACK}"
        )
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError
        text = one_line(exc)
        if "NoDevice" in text or "no CUDA-capable device" in text:
            count = 0
        elif "InsufficientDriver" in text or "driver version is insufficient" in text:
            return None, (
                f"CuPy is installed but the NVIDIA driver is too old for this CuPy's CUDA "
                f"{_cuda(built) if built else '?'} ({text}); update the NVIDIA driver, {NUMPY_FALLBACK}"
            )
        else:
            return None, (
                f"CuPy is installed but the CUDA runtime failed to start ({text}); check that nvidia-smi "
                f"works, {NUMPY_FALLBACK}"
            )
    if count < 1:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = "" if visible is None else f' (CUDA_VISIBLE_DEVICES="{visible}")'
        return None, (
            f"CuPy and the NVIDIA driver are installed but no GPU is visible{hidden}; check that nvidia-smi "
            f"lists one and that CUDA_VISIBLE_DEVICES does not hide it, {NUMPY_FALLBACK}"
        )
    try:  # an elementwise kernel (compiled by NVRTC) and a matrix product (cuBLAS)
        a = cupy.ones((2, 2), dtype=cupy.float32)
        b = a + a
        float((b @ b).sum())
    except Exception as exc:
        library = missing_library(exc)
        if library:
            return None, f"CuPy found a GPU but cannot load {library}; {libraries_fix(major)}"
        return None, (
            f"CuPy found a GPU but could not run on it ({type(exc).__name__}: {one_line(exc)}); check "
            f"nvidia-smi, or reinstall CuPy: {CHOOSE_WHEEL}, {NUMPY_FALLBACK}"
        )
    return cupy, ""


def _curand_dtype(dtype: Any) -> Any:
    """The dtype cuRAND draws ``dtype`` in: itself for float32 and float64, else float32 (``cupy.random``
    raises TypeError for any other dtype, e.g. the float16 of a dropout mask under mixed precision)."""
    return dtype if np.dtype(dtype).char in ("f", "d") else np.float32


class CupyDeviceRNG:
    """Seeded random draws made on the GPU by cuRAND (``cupy.random.RandomState``): no host draw, no copy.

    The interface of :class:`~dlcore.backends.base.HostRNG`. Equal seeds give equal draws on the same GPU
    with the same CuPy, but not the bits of the host draws (``backend.rng(seed)``) or of other backends.
    """

    def __init__(self, backend: CupyBackend, seed: int | None = None) -> None:
        self.backend = backend
        self.seed = seed
        try:
            with backend.activate():  # cuRAND's generator lives on the backend's GPU
                self.state = backend.lib.random.RandomState(seed)
        except Exception as exc:
            library = missing_library(exc)
            if not library:
                raise
            raise BackendError(f"device random draws need {library}; {libraries_fix(None)}") from exc

    def _cast(self, x: Any, dtype: Any) -> Any:
        """``x`` (drawn in float32 or float64) in ``dtype``, cast on the GPU when it differs."""
        return x if x.dtype == dtype else self.backend.xp.astype(x, dtype)

    def normal(self, shape: tuple[int, ...], dtype: Any = "float64", scale: float = 1.0) -> Any:
        """Standard normal draws times ``scale``, on the GPU (a float16 ``dtype``: drawn in float32, cast)."""
        dtype = self.backend.dtype(dtype)
        with self.backend.activate():
            z = self.state.standard_normal(shape, dtype=_curand_dtype(dtype))
            if scale != 1.0:
                z *= scale
            return self._cast(z, dtype)

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, dtype: Any = "float64"
    ) -> Any:
        """Uniform draws on ``[low, high)``, on the GPU (a float16 ``dtype``: drawn in float32 and cast, which
        may round a draw up to ``high``)."""
        dtype = self.backend.dtype(dtype)
        with self.backend.activate():
            return self._cast(self.state.uniform(low, high, shape, dtype=_curand_dtype(dtype)), dtype)

    def permutation(self, n: int) -> Any:
        """A random permutation of ``range(n)`` as an int64 array on the GPU."""
        with self.backend.activate():
            p = self.state.permutation(int(n))  # an int: a permuted range (argsort of cuRAND draws)
            int64 = self.backend.dtype("int64")
            return p if p.dtype == int64 else self.backend.xp.astype(p, int64)


#: cupy/_core/_routines_linalg.pyx's COMPUTE_TYPE_TF32 (a C constant there, not importable)
CUPY_COMPUTE_TYPE_TF32 = 7


@cache
def _ops(cupy: ModuleType, xp: ModuleType) -> CupyOps:
    """One ops object for every GPU, registered for ``cupy.ndarray`` (the functional API): a second
    backend (another GPU, or the same one asked for again) must not re-register a new one."""
    ops = CupyOps(xp, cupy)
    register_ops(cupy.ndarray, ops)
    return ops


class CupyBackend(Backend):
    """``cupy`` through ``array_api_compat.cupy``, on one GPU (``cupy:1`` for the second)."""

    name = "cupy"
    is_gpu = True
    #: mixed precision's compute dtypes. Not bfloat16: CuPy 14 knows ml_dtypes' bfloat16 ("minimal support",
    #: its upgrade guide), but cupy.where and cupy.clip have no bfloat16 loop and compute it in float32
    #: (cupy/_sorting/search.py, _core/_routines_math.pyx in 14.2), so sigmoid's output would leave
    #: bfloat16; asking for it is one sentence naming float16 and torch (Backend.low_precision_dtype)
    low_precision = ("float16",)

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
        return cls(xp, cupy.cuda.Device(gpu), cupy, _ops(cupy, xp))

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.lib.ndarray) and x.device.id == self.device.id

    def from_host(self, host: np.ndarray) -> Any:
        with self.lib.cuda.Device(self.device.id):
            return self.lib.asarray(host)

    def synchronize(self) -> None:
        self.lib.cuda.Device(self.device.id).synchronize()

    def activate(self) -> contextlib.AbstractContextManager:
        return self.lib.cuda.Device(self.device.id)

    @contextlib.contextmanager
    def tf32(self) -> Iterator[None]:
        """CuPy's compute type for float32 products set to TF32 (what ``CUPY_TF32=1`` asks for before the
        first product), then put back."""
        require_tf32_cores(self.device_name(), int(self.device.compute_capability) // 10)
        try:
            linalg = importlib.import_module("cupy._core._routines_linalg")
        except ImportError:
            linalg = None
        if not hasattr(linalg, "set_compute_type"):
            raise BackendError("this CuPy cannot switch TF32 at run time; set CUPY_TF32=1 before starting")
        before = linalg.get_compute_type(np.float32)
        linalg.set_compute_type(np.float32, CUPY_COMPUTE_TYPE_TF32)
        try:
            yield
        finally:
            linalg.set_compute_type(np.float32, before)

    def rng(self, seed: int | None = None, *, on_device: bool = False) -> HostRNG | CupyDeviceRNG:
        """Host draws moved to the GPU (bit-identical to every backend; the default), or with
        ``on_device=True`` draws made on the GPU by cuRAND (faster: no host draw, no copy; not the same
        bits as the host draws)."""
        return CupyDeviceRNG(self, seed) if on_device else HostRNG(self, seed)

    def device_spec(self) -> str | None:
        return str(self.device.id)

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
