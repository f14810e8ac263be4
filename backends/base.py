"""The :class:`Backend` base class, host <-> device transfer, and host-side seeded randomness.

A backend carries ``xp`` (an Array-API namespace from ``array-api-compat``, or ``array_api_strict``),
its device, and ``ops`` (the primitives the core computes with, :class:`dlcore.ops.Ops` or a subclass
with fused versions), together with what the Array API standard leaves out: random numbers, host <->
device transfer, synchronisation, the device's name and memory. One small subclass per library
(:mod:`.numpy_backend`, :mod:`.strict_backend`, :mod:`.cupy_backend`); :mod:`.registry` finds them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np

from dlcore.ops import Ops

DTYPES = ("float32", "float64")
#: the compute dtypes of mixed precision (dlcore.precision): a backend lists those it supports
LOW_PRECISION_DTYPES = ("bfloat16", "float16")


class BackendError(ValueError):
    """A backend was asked for that cannot be used here; the message says why and how to fix it."""


def available_host_memory() -> int | None:
    """The memory this process may still take, in bytes: the host's available memory (Linux
    ``MemAvailable``, else free pages), or less where a memory cgroup (a container's limit) allows less
    (:func:`cgroup_room`); ``None`` if unknown."""
    host = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    host = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if host is None:
        try:
            host = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            pass
    room = cgroup_room()
    return room if host is None else host if room is None else min(host, room)


#: a cgroup's limit files, usage files and the reclaimable cache in its memory.stat: (v2, v1)
_CGROUP_FILES = (
    ("", "memory.max", "memory.current", "inactive_file"),
    ("/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
)
#: a v1 limit at least this large is "no limit" (the kernel writes ~2**63 rounded to its page size)
_NO_LIMIT = 1 << 60


def cgroup_room(proc: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> int | None:
    """What this process's memory cgroup still allows, in bytes: its limit less its usage, the inactive
    file cache not counted (the kernel reclaims it first). ``None`` without a limit: MemAvailable shows
    the whole host inside a container, where going past the container's limit is an OOM kill."""
    try:
        with open(proc, encoding="ascii") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    rooms = []
    for entry in entries:
        if len(entry) != 3:
            continue
        hierarchy, controllers, path = entry
        v2 = hierarchy == "0" and controllers == ""
        if not v2 and "memory" not in controllers.split(","):
            continue
        mount, limit_file, usage_file, cache_key = _CGROUP_FILES[0 if v2 else 1]
        for where in (f"{root}{mount}{path.rstrip('/')}", f"{root}{mount}"):  # a container sees its own as /
            room = _room_in(where, limit_file, usage_file, cache_key)
            if room is not None:
                rooms.append(room)
                break
    return min(rooms) if rooms else None


def _room_in(directory: str, limit_file: str, usage_file: str, cache_key: str) -> int | None:
    try:
        with open(os.path.join(directory, limit_file), encoding="ascii") as f:
            text = f.read().strip()
        if text == "max" or int(text) >= _NO_LIMIT:
            return None
        with open(os.path.join(directory, usage_file), encoding="ascii") as f:
            usage = int(f.read())
        cache = 0
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(directory, "memory.stat"), encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == cache_key:
                        cache = int(value)
                        break
    except (OSError, ValueError):
        return None
    return max(0, int(text) - max(0, usage - cache))


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line of at most ``limit`` characters (its type's name when empty)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def switched_on(variable: str) -> bool:
    """A backend feature's environment switch: on unless ``variable`` is 0, false, no or off."""
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "no", "off")


def require_tf32_cores(device: str, major: int) -> None:
    """Refuse TF32 on a GPU older than Ampere (compute capability 8.0), where the switch changes nothing."""
    if major < 8:
        raise BackendError(
            f"{device} has no TF32 tensor cores (compute capability {major}.x; TF32 needs 8.0, Ampere, "
            "or newer)"
        )


def equal(a: Any, b: Any) -> bool:
    """``a == b`` as a bool; False where ``==`` cannot say (an array's ambiguous truth value)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


def to_numpy(x: Any) -> np.ndarray:
    """Copy any array (NumPy, CuPy, array_api_strict on any device, DLPack producers) to a NumPy array
    (torch's bfloat16 as float32)."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "array_api_strict":
        return np.from_dlpack(x)
    if module == "torch":
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; float32 holds every value exactly
            x = x.float()
        return x.detach().cpu().numpy()
    return np.asarray(x)


class RNG(Protocol):
    """What ``backend.rng(seed)`` returns: seeded draws as arrays of the backend (see :class:`HostRNG`)."""

    def normal(self, shape: tuple[int, ...], dtype: Any = "float64", scale: float = 1.0) -> Any: ...

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, dtype: Any = "float64"
    ) -> Any: ...

    def permutation(self, n: int) -> Any: ...


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


class Backend:
    """One array library on one device. Subclasses set :attr:`name` and override what differs.

    Attributes:
        name: the registry name (``"numpy"``, ``"cupy"``, ``"array_api_strict"``).
        xp: the Array-API namespace the core computes with.
        device: the device arrays are created on (``xp``'s device object).
        ops: the primitives the core computes with on this backend.
        is_gpu: whether arrays live on a GPU.
        note: why this backend was chosen (set when ``auto`` picked it).
    """

    name: ClassVar[str] = "base"
    is_gpu: ClassVar[bool] = False

    def __init__(self, xp: ModuleType, device: Any, ops: Ops | None = None, note: str = "") -> None:
        self.xp = xp
        self.device = device
        self.ops = ops if ops is not None else Ops(xp)
        self.note = note

    # -- the registry's hooks -----------------------------------------------------------------------
    @classmethod
    def unavailable(cls) -> str:
        """``""`` when this backend can run here, else one sentence saying why and how to fix it."""
        return ""

    #: the device ``auto`` asks for when it chooses this backend (a GPU backend's GPU)
    auto_device: ClassVar[str | None] = None

    @classmethod
    def gpu_unavailable(cls) -> str:
        """For ``auto``: ``""`` when this backend offers a GPU here, else why not (default: unavailable)."""
        return cls.unavailable()

    @classmethod
    def create(cls, device: str | None) -> Backend:
        """The backend on ``device`` (a name from the ``":device"`` suffix, or ``None`` for the default)."""
        raise NotImplementedError

    def with_note(self, note: str) -> Backend:
        """A copy of this backend that says why it was chosen (``auto``)."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__, note=note)
        return other

    # -- dtypes -------------------------------------------------------------------------------------
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
        for name in (*DTYPES, *LOW_PRECISION_DTYPES, "int64", "bool"):
            known = getattr(self.xp, name, None)
            if known is not None and known == dtype:
                return name
        return str(dtype)

    def float_dtype(self, dtype: Any) -> Any:
        """The namespace's float32 or float64 for its name, its dtype object or NumPy's (a network's and
        its data's dtype); ValueError naming the two for anything else."""
        name = dtype
        if isinstance(dtype, (np.dtype, type)):  # np.float32 or np.dtype("float32") on any backend
            with contextlib.suppress(TypeError):
                name = np.dtype(dtype).name
        elif not isinstance(dtype, str):
            name = self.dtype_name(dtype)
        if name not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        return self.dtype(name)

    #: the low-precision compute dtypes this backend supports for mixed precision, best first
    low_precision: ClassVar[tuple[str, ...]] = ()

    def low_precision_dtypes(self) -> tuple[str, ...]:
        """The compute dtypes mixed precision may use here, best first (``()``: none)."""
        return self.low_precision

    def low_precision_dtype(self, name: str) -> Any:
        """xp's dtype for the compute dtype ``name`` (``"bfloat16"``, ``"float16"``); a :class:`BackendError`
        saying which backend or dtype to use instead when this backend cannot compute in it."""
        if name not in LOW_PRECISION_DTYPES:
            raise ValueError(
                f"a low-precision dtype is one of {', '.join(LOW_PRECISION_DTYPES)}; got {name!r}"
            )
        supported = self.low_precision_dtypes()
        if name not in supported:  # another dtype here, or another backend (any dtype, when none here)
            instead = [*supported[:1], *self._mixed_precision_backends(name if supported else None)]
            cannot = f"cannot compute in {name}" if supported else "has no low-precision dtype"
            raise BackendError(f"the {self.name} backend {cannot}; use {' or '.join(instead) or 'float32'}")
        return getattr(self.xp, name)

    def _mixed_precision_backends(self, name: str | None) -> list[str]:
        """The other registered backends whose ``low_precision`` has ``name`` (``None``: any low dtype),
        most dtypes first, one per set of dtypes (the first registered: numpy, not cupy, for float16
        alone): e.g. ``["the torch backend (bfloat16, float16)", "numpy (float16)"]``."""
        from dlcore.backends.registry import REGISTRY  # the registry imports this module

        offers: dict[tuple[str, ...], str] = {}  # a set of dtypes -> the backend named for it
        for cls in sorted(REGISTRY.values(), key=lambda cls: -len(cls.low_precision)):  # stable sort
            dtypes = cls.low_precision
            if cls.name != self.name and dtypes and (name is None or name in dtypes):
                offers.setdefault(dtypes, cls.name)
        return [
            f"the {backend} backend ({', '.join(dtypes)})" if i == 0 else f"{backend} ({', '.join(dtypes)})"
            for i, (dtypes, backend) in enumerate(offers.items())
        ]

    # -- transfer -----------------------------------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """Whether ``x`` is already an array of this backend, on its device (no copy needed)."""
        return False

    def from_host(self, host: np.ndarray) -> Any:
        """A NumPy array copied onto this backend's device."""
        return self.xp.asarray(host, device=self.device)

    def asarray(self, host_array: Any, dtype: Any = None) -> Any:
        """Move ``host_array`` (NumPy array, nested lists, or another backend's array) onto this backend.

        Arrays already on this backend are cast (if ``dtype`` differs) without a host round trip.
        """
        xdtype = None if dtype is None else self.dtype(dtype)
        if self.owns(host_array):
            if xdtype is not None and host_array.dtype != xdtype:
                return self.xp.astype(host_array, xdtype)
            return host_array
        host = to_numpy(host_array)
        if not host.dtype.isnative:  # big-endian data (a file from another machine): torch refuses it
            host = host.astype(host.dtype.newbyteorder("="))
        if host.dtype.kind == "f" and host.dtype.itemsize > 8:  # NumPy's longdouble: no other library has it
            host = host.astype(np.float64)
        if xdtype is None:
            return self.from_host(host)
        name = self.dtype_name(xdtype)
        if name == "bfloat16":  # NumPy has none: cast on the backend (one rounding, from the host's dtype)
            return self.xp.astype(self.from_host(host), xdtype)
        return self.from_host(host.astype(name, copy=False))

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy a backend array to a NumPy array on the host."""
        return to_numpy(x)

    def synchronize(self) -> None:
        """Block until all queued device work is done (a no-op on CPU backends)."""

    def activate(self) -> contextlib.AbstractContextManager:
        """A context in which new arrays land on this backend's device (entered once per fit/predict)."""
        return contextlib.nullcontext()

    def tf32(self) -> contextlib.AbstractContextManager:
        """A context in which float32 matrix products may use TF32 tensor cores (10-bit mantissas: faster,
        less exact; NVIDIA GPUs from Ampere on). Only GPU backends have it: a ValueError elsewhere."""
        raise BackendError(
            f"the {self.name} backend on {self.device_name()} has no TF32 mode: it is an NVIDIA GPU's "
            "(cupy, torch:cuda)"
        )

    def quiet_floating_point(self) -> contextlib.AbstractContextManager:
        """Silence overflow/invalid warnings: training detects non-finite costs itself."""
        return contextlib.nullcontext()

    def rng(self, seed: int | None = None, *, on_device: bool = False) -> RNG:
        """A seeded random generator.

        By default (:class:`HostRNG`) the draws are made on the host and moved, so they are bit-identical
        on every backend. ``on_device=True`` asks for draws made on the device itself (faster on a GPU:
        no host draw and no copy per dropout mask or epoch permutation); they are reproducible for a
        seed on one backend and device, but **not bit-identical across backends**. Backends without a
        device generator (the CPU ones, where the host is the device) return the host generator.
        """
        return HostRNG(self, seed)

    # -- description --------------------------------------------------------------------------------
    def spec(self) -> str:
        """The name ``get_backend`` rebuilds this backend from (``"numpy"``, ``"cupy:1"``,
        ``"torch:cuda:0"``): what a pickled :class:`~dlcore.model.Network` stores instead of the backend."""
        device = self.device_spec()
        return self.name if device is None else f"{self.name}:{device}"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickled and deep-copied by name: the copy is ``get_backend(self.spec())`` (the same cached
        backend in this process, rebuilt in another)."""
        from dlcore.backends.registry import get_backend

        return get_backend, (self.spec(),)

    def device_spec(self) -> str | None:
        """The ``":device"`` suffix :meth:`spec` adds (``None``: the default device)."""
        return None if self.device in (None, "cpu") else str(self.device)

    def device_name(self) -> str:
        """A human-readable device name, e.g. ``"CPU"`` or ``"NVIDIA H100 80GB HBM3 (GPU 0)"``."""
        return "CPU"

    def memory_info(self) -> dict[str, int] | None:
        """Device memory in bytes (``free``, ``total``, ``pool_used``); ``None`` on CPU."""
        return None

    def available_memory(self) -> int | None:
        """Bytes that new arrays on this backend can still take: the device's free memory, or on the CPU
        the host's available memory; ``None`` when unknown (then no estimate is refused)."""
        try:
            info = self.memory_info()
        except Exception:  # a device that cannot say: do not guess
            info = None
        if info and info.get("free") is not None:
            return int(info["free"])
        return available_host_memory()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device_name()!r})"
