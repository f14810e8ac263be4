"""PyTorch tensors on the CPU or a CUDA GPU (``torch``, ``torch:cpu``, ``torch:cuda``, ``torch:cuda:1``),
through ``array_api_compat.torch``: the same core, on the most used array library.

Seeded draws are made on the host (NumPy) and moved, as on every backend, so a seed gives the same
initial weights bit for bit. PyTorch is an optional extra: ``pip install "dlcore[torch]"``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from dlcore.backends.base import (
    Backend,
    BackendError,
    HostRNG,
    one_line,
    require_tf32_cores,
    switched_on,
)
from dlcore.backends.torch_graphs import ENV_VAR as GRAPHS_ENV_VAR
from dlcore.backends.torch_graphs import CudaGraphs, GraphedStep

from dlcore.losses import binary_cross_entropy_from_logits
from dlcore.ops import Ops, register_ops

#: PyTorch's CPU build, a small download (Linux's default wheel brings GBs of CUDA libraries)
CPU_BUILD = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
FIX = (
    f'pip install "dlcore[torch]" (PyTorch; without an NVIDIA GPU, first the small CPU build: {CPU_BUILD}), '
    "or use the numpy backend"
)


@cache
def import_torch() -> tuple[ModuleType | None, str]:
    """PyTorch, or ``None`` and why not: not installed, or installed but failing to import (a CUDA
    build missing its libraries raises ImportError, ValueError or OSError), so that ``auto`` and the
    other backends go on without it. Tried once: a failed import runs the package's code again."""
    try:
        return importlib.import_module("torch"), ""
    except Exception as exc:
        if importlib.util.find_spec("torch") is None:
            return None, f"PyTorch is not installed; {FIX}"
        return None, (
            f"PyTorch is installed but fails to import ({one_line(exc)}); reinstall it (the CPU build: "
            f"{CPU_BUILD}), or use the numpy backend"
        )


class TorchOps(Ops):
    """PyTorch's primitives: the default Array API code but ReLU and the binary cost's max(Z, 0), taken as
    ``clip`` (no tensor made of the 0), and one kernel where the default launches several (the sigmoid,
    tanh', the parameters' updates); with ``graphs`` (the default; off with ``DLCORE_TORCH_GRAPHS=0``)
    a replayable step on CUDA tensors captured and replayed as a CUDA graph (:mod:`.torch_graphs`)."""

    name = "torch"

    def __init__(self, xp: Any, lib: ModuleType, graphs: bool | None = None) -> None:
        super().__init__(xp)
        self.lib = lib
        self.graphs = switched_on(GRAPHS_ENV_VAR) if graphs is None else graphs
        self._engine: CudaGraphs | None = None

    # max(Z, 0) as clip (torch.clamp): array_api_compat's maximum makes a tensor of the Python 0 on every
    # call (on CUDA a host-to-device copy, which syncs and which graph capture forbids; 4x slower on the
    # CPU); clamp takes the scalar as a kernel argument and gives maximum's values (NaN stays NaN, -0.0
    # stays -0.0)
    def _positive_part(self, x: Any) -> Any:
        return self.xp.clip(x, min=0.0)

    # one kernel each where the default takes several (a CUDA step is bound by its launches): the sigmoid
    # (the core's overflow-free formula is 8; torch.sigmoid is accurate in relative terms too, and differs
    # only where e^-z overflows, z < -88 in float32: 0 for a denormal), tanh' (3; ATen's is the more
    # accurate, up to ~1e-5 relative from the default's dA (1 - A A) where |A| nears 1, in float32), and
    # every parameter's W -= dW in one multi-tensor launch (the same bits)
    def layer_forward(self, W: Any, A_prev: Any, b: Any, g: Any) -> tuple[Any, Any]:
        if g.name not in ("relu", "sigmoid"):
            return super().layer_forward(W, A_prev, b, g)
        Z = W @ A_prev
        Z += b
        return Z, self._positive_part(Z) if g.name == "relu" else self.lib.sigmoid(Z)

    def activation_backward(self, g: Any, dA: Any, Z: Any, A: Any) -> Any:
        if g.name != "tanh":
            return super().activation_backward(g, dA, Z, A)
        return self.lib.ops.aten.tanh_backward.grad_input(dA, A, grad_input=dA)  # dA * (1 - A * A)

    def gd_update_all(self, Ws: Sequence[Any], dWs: Sequence[Any], learning_rate: float) -> None:
        if learning_rate != 1.0:  # W + (-alpha) dW would round once: other bits
            return super().gd_update_all(Ws, dWs, learning_rate)
        self.lib._foreach_sub_(Ws, dWs)

    def cost(self, head: Any, Z: Any, A: Any, Y: Any) -> Any:
        if not head.logit_cross_entropy:
            return super().cost(head, Z, A, Y)
        return binary_cross_entropy_from_logits(Z, Y, self._positive_part)

    def capture(
        self, step: Callable[..., Any], replay: bool = False, inputs: tuple[int, ...] = ()
    ) -> Callable[..., Any]:
        engine = self.graph_engine() if replay and self.graphs else None
        return step if engine is None else GraphedStep(step, self, engine, self.lib.Tensor, inputs)

    def graph_engine(self) -> CudaGraphs | None:
        """The CUDA graph mechanics (one per ops object: its side streams), None without CUDA (tests
        hand a CPU stand-in)."""
        if self._engine is None and self.lib.cuda.is_available():
            self._engine = CudaGraphs(self.lib)
        return self._engine


@cache
def _ops(torch: ModuleType, xp: ModuleType) -> TorchOps:
    """One ops object for every torch device, registered for ``torch.Tensor`` (the functional API)."""
    ops = TorchOps(xp, torch)
    register_ops(torch.Tensor, ops)
    return ops


class TorchDeviceRNG:
    """Seeded draws made by a ``torch.Generator`` on the backend's device (not the host draws' bits)."""

    def __init__(self, backend: TorchBackend, seed: int | None = None) -> None:
        torch = backend.lib
        self.backend = backend
        self.generator = torch.Generator(device=backend.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def normal(self, shape: tuple[int, ...], dtype: Any = "float64", scale: float = 1.0) -> Any:
        z = self.backend.lib.randn(
            shape, generator=self.generator, dtype=self.backend.dtype(dtype), device=self.backend.device
        )
        return z * scale if scale != 1.0 else z

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, dtype: Any = "float64"
    ) -> Any:
        u = self.backend.lib.rand(
            shape, generator=self.generator, dtype=self.backend.dtype(dtype), device=self.backend.device
        )
        return u * (high - low) + low if (low, high) != (0.0, 1.0) else u

    def permutation(self, n: int) -> Any:
        return self.backend.lib.randperm(n, generator=self.generator, device=self.backend.device)


def _no_gpu(torch: Any) -> str:
    """Why this PyTorch sees no CUDA GPU: a CPU-only build, or a CUDA build with none visible (hidden by
    CUDA_VISIBLE_DEVICES, as the cupy probe says too)."""
    if torch.version.cuda is None:
        return "this PyTorch is a CPU-only build (no CUDA)"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hidden = "" if visible is None else f' (CUDA_VISIBLE_DEVICES="{visible}")'
    return f"this PyTorch (CUDA {torch.version.cuda}) sees no GPU{hidden}"


class TorchBackend(Backend):
    """``torch`` through ``array_api_compat.torch``; ``torch:cuda:N`` for a GPU."""

    name = "torch"
    #: what ``auto`` asks for: PyTorch only when it has a CUDA GPU (never its CPU build over NumPy)
    auto_device = "cuda"
    low_precision = ("bfloat16", "float16")  # mixed precision's compute dtypes

    def __init__(self, xp: ModuleType, device: Any, lib: ModuleType, ops: Ops | None = None) -> None:
        super().__init__(xp, device, ops)
        self.lib = lib
        self.is_gpu = device.type == "cuda"

    @classmethod
    def unavailable(cls) -> str:
        return import_torch()[1]

    @classmethod
    def gpu_unavailable(cls) -> str:
        torch, reason = import_torch()
        if torch is None:
            return reason
        if not torch.cuda.is_available():
            return _no_gpu(torch)
        return ""

    @classmethod
    def create(cls, device: str | None) -> TorchBackend:
        torch = import_torch()[0]
        import array_api_compat.torch as xp

        name = device or "cpu"
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise ValueError(f"a torch device is cpu, cuda or cuda:N; got {name!r}") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendError(f"cannot use torch:{name}: {_no_gpu(torch)}; use torch:cpu")
            count = torch.cuda.device_count()
            dev = torch.device("cuda", dev.index if dev.index is not None else 0)
            if dev.index >= count:
                raise BackendError(f"GPU {dev.index} does not exist; this machine has {count}")
        elif dev.type != "cpu":
            raise ValueError(f"a torch device is cpu, cuda or cuda:N; got {name!r}")
        return cls(xp, dev, torch, _ops(torch, xp))

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.lib.Tensor) and x.device == self.device

    def asarray(self, host_array: Any, dtype: Any = None) -> Any:
        """As :meth:`Backend.asarray`; a tensor that requires grad (an ``nn.Parameter``) is detached first:
        dlcore computes its own gradients, and updates on a tracked tensor grew an autograd graph that
        held every step's activations (memory without bound)."""
        if isinstance(host_array, self.lib.Tensor) and host_array.requires_grad:
            host_array = host_array.detach()
        return super().asarray(host_array, dtype)

    def from_host(self, host: np.ndarray) -> Any:
        # torch cannot hold a read-only array's memory (np.load(mmap_mode="r")) nor negative strides
        # (X[:, ::-1]): copy those, without a warning
        if any(stride < 0 for stride in host.strides):
            host = np.ascontiguousarray(host)
        return self.lib.asarray(host, device=self.device, copy=None if host.flags.writeable else True)

    def synchronize(self) -> None:
        if self.is_gpu:
            self.lib.cuda.synchronize(self.device)

    def activate(self) -> contextlib.AbstractContextManager:
        return self.lib.cuda.device(self.device) if self.is_gpu else contextlib.nullcontext()

    def rng(self, seed: int | None = None, *, on_device: bool = False) -> Any:
        """torch's generator on a GPU; on the CPU, where the host is the device, the host draws (the same
        as every CPU backend's, as :meth:`Backend.rng` says)."""
        return TorchDeviceRNG(self, seed) if on_device and self.is_gpu else HostRNG(self, seed)

    @contextlib.contextmanager
    def tf32(self) -> Iterator[None]:
        """cuBLAS float32 products in TF32 (``fp32_precision = "tf32"``; ``allow_tf32`` before PyTorch
        2.9), then put back; CUDA only."""
        if not self.is_gpu:
            super().tf32()  # raises: TF32 is a GPU's
        require_tf32_cores(self.device_name(), self.lib.cuda.get_device_capability(self.device)[0])
        matmul = self.lib.backends.cuda.matmul
        new_api = hasattr(matmul, "fp32_precision")
        name, value = ("fp32_precision", "tf32") if new_api else ("allow_tf32", True)
        before = getattr(matmul, name)
        setattr(matmul, name, value)
        try:
            yield
        finally:
            setattr(matmul, name, before)

    def device_spec(self) -> str | None:
        return str(self.device)  # "cpu", "cuda:0"

    def device_name(self) -> str:
        if self.is_gpu:
            return f"{self.lib.cuda.get_device_name(self.device)} (GPU {self.device.index}, torch)"
        return "CPU (torch)"

    def memory_info(self) -> dict[str, int] | None:
        if not self.is_gpu:
            return None
        free, total = self.lib.cuda.mem_get_info(self.device)
        return {"free": free, "total": total, "pool_used": self.lib.cuda.memory_allocated(self.device)}
