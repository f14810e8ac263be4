"""A replayable step as a CUDA graph: ``TorchOps.capture(step, replay=True)`` on CUDA tensors.

PyTorch's ``torch.cuda.graph`` captures a whole training step, cuBLAS included (CuPy 14 cannot:
cupy/cupy#6290), and replays it as one launch. The policy, per signature (NumpyOps records at the
second call in a row; a graph needs a warm-up first):

    call 1 with new arguments    eager (its signature remembered)
    call 2 with the same ones    eager on a side stream (the warm-up PyTorch asks for before a capture)
    call 3                       captured (recording runs nothing), then replayed once: this call's work
    calls 4, 5, ...              one graph replay each, while the arguments stay the same

The calls of one signature need not follow each other: an epoch of two full mini-batches and a partial
one (A A P A A P ...) captures A at its third call and P at its third. At most two graphs are held (a
full batch and the last, partial one); a third signature takes the place of a held graph only if that
graph has not replayed since the new signature first came (new arguments for good: a new learning
rate), so steps cycling over three fixed batches capture two and never churn. Signatures not yet
captured are counted for the last few only.

"The same arguments": the same tensors (by identity; their shapes, dtypes and devices too), and the
same other values by ``==`` (a Python learning rate is baked into the graph: a new one is a new
signature). Only steps whose tensors are all on one CUDA device, handed this very ops object, are
captured. A step that cannot be (a host sync inside it, an operation capture forbids) runs eagerly for
those arguments from then on. Mini-batches, new tensors every step, are the caller's ``inputs``: each is
copied into a static tensor of its shape (a device-to-device copy), which the graph reads.
The step's return value (a cost) lives in the graph's memory, which the next replay overwrites: it is
returned as a copy.

On by default since its first GPU run (an H200, 2026-11-22: the same bits as the eager steps; a step
0.09-0.22x of eager on the planar and deep nets, 0.90x on the product-bound wide net, 1.18x its
matrix-product floor: benchmarks/torch_graphs.py, BENCHMARKS.md "On a GPU"); ``DLCORE_TORCH_GRAPHS=0`` or
``TorchOps(graphs=False)`` turns it off. The policy is tested on the CPU through a stand-in for the graph
mechanics (tests/test_torch_graphs.py); the CUDA tests skip without a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlcore.backends.base import equal

ENV_VAR = "DLCORE_TORCH_GRAPHS"
#: graphs held at once (each holds its step's memory), and signatures counted towards a capture
MAX_GRAPHS, MAX_COUNTED = 2, 8


class CudaGraphs:
    """The graph mechanics on CUDA devices (the part a CPU test replaces)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        #: per device, the side stream of its warm-ups and captures (one: cuBLAS sets up per stream)
        self._sides: dict[Any, Any] = {}

    def accepts(self, found: list[Any]) -> bool:
        """Whether a step over the tensors ``found`` can be a graph: all on one CUDA device."""
        device = found[0].device
        return device.type == "cuda" and all(t.device == device for t in found)

    def _stream(self, device: Any) -> Any:
        side = self._sides.get(device)
        if side is None:
            side = self._sides[device] = self.torch.cuda.Stream(device=device)
        return side

    def warm_up(self, fn: Callable[[], Any], device: Any) -> Any:
        """``fn()`` eagerly on ``device``'s side stream, ordered after and before its current stream."""
        cuda = self.torch.cuda
        with cuda.device(device):
            side, current = self._stream(device), cuda.current_stream(device)
            side.wait_stream(current)
            with cuda.stream(side):
                result = fn()
            current.wait_stream(side)
        return result

    def capture(self, fn: Callable[[], Any], device: Any) -> Callable[[], Any]:
        """``fn``'s kernels on ``device`` recorded (not run) as a graph; returns what replays it (on the
        device's current stream) and gives its result."""
        cuda = self.torch.cuda
        graph = cuda.CUDAGraph()
        with cuda.device(device):
            current = cuda.current_stream(device)
            try:
                with cuda.graph(graph, stream=self._stream(device)):
                    out = fn()
            except BaseException:
                # a capture that fails to end leaves the side stream current (torch.cuda.graph ends the
                # capture before it restores the stream): restore it and let the queued work finish
                cuda.set_stream(current)
                cuda.synchronize(device)
                raise

        def replay() -> Any:  # holds the graph, and so its memory pool
            with cuda.device(device):
                graph.replay()
            return out

        return replay


def signature(x: Any, tensor_type: type) -> Any:
    """What a replay must find again: tensors by identity, shape, dtype and device; dicts, lists and
    tuples item by item; anything else by value."""
    if isinstance(x, tensor_type):
        return (id(x), tuple(x.shape), x.dtype, x.device)
    if type(x) is dict:
        return (dict, tuple((k, signature(v, tensor_type)) for k, v in x.items()))
    if type(x) in (list, tuple):
        return (type(x), tuple(signature(v, tensor_type) for v in x))
    return x


def tensors(x: Any, tensor_type: type) -> list[Any]:
    """The tensors in ``x`` (one level of containers after another)."""
    if isinstance(x, tensor_type):
        return [x]
    if type(x) is dict:
        x = list(x.values())
    if type(x) in (list, tuple):
        return [t for v in x for t in tensors(v, tensor_type)]
    return []


@dataclass(eq=False)  # compared by identity (a signature or tensors have no plain ==)
class _Held:
    """A captured graph: its signature, what replays it, the tensors it read (held, so that the ids in
    the signature keep meaning them) and the call that last replayed it."""

    signature: Any
    replay: Callable[[], Any]
    tensors: list[Any]
    last: int


@dataclass(eq=False)  # compared by identity (a signature or tensors have no plain ==)
class _Counted:
    """A signature not captured yet: its eager calls so far and the call that first had it."""

    signature: Any
    calls: int
    first: int


class GraphedStep:
    """``step`` run eagerly, warmed up, captured and replayed as the module's docstring says."""

    def __init__(
        self, step: Callable[..., Any], ops: Any, graphs: Any, tensor_type: type, inputs: tuple[int, ...] = ()
    ) -> None:
        self.step, self.ops, self.graphs, self.tensor_type = step, ops, graphs, tensor_type
        self.inputs = inputs  # read-only arguments (mini-batches): copied into static tensors
        self.static: dict[tuple[Any, ...], Any] = {}
        self.counted: list[_Counted] = []  # the most recent first (at most MAX_COUNTED)
        self.held: list[_Held] = []  # at most MAX_GRAPHS
        self.calls = 0
        self.refused: Any = None  # a signature whose capture failed

    def __call__(self, *args: Any) -> Any:
        if self.inputs:
            if not self.held and self.refused is not None:  # its capture failed: eager, uncopied
                return self.step(*args)
            args = self._stage(args)
        sig = signature(args, self.tensor_type)
        self.calls += 1
        for held in self.held:
            if equal(sig, held.signature):
                held.last = self.calls
                return _fresh(held.replay())
        found = tensors(args, self.tensor_type)
        if not self._capturable(args, sig, found):
            return self.step(*args)
        device = found[0].device
        counted = self._count(sig)
        if counted.calls == 1:
            return self.step(*args)
        if counted.calls == 2:
            return self.graphs.warm_up(lambda: self.step(*args), device)
        stale = [h for h in self.held if h.last < counted.first]  # not replayed since this one came
        if len(self.held) >= MAX_GRAPHS and not stale:  # both graphs in use: no churn
            return self.step(*args)
        self.counted.remove(counted)
        try:
            replay = self.graphs.capture(lambda: self.step(*args), device)
        except Exception as exc:  # noqa: BLE001 - a host sync, an op capture forbids: eager from now on
            self.refused = sig
            warnings.warn(
                f"dlcore: this step cannot be captured as a CUDA graph ({type(exc).__name__}: {exc}); "
                "it runs eagerly",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.step(*args)
        if len(self.held) >= MAX_GRAPHS:
            self.held.remove(min(stale, key=lambda h: h.last))
        self.held.append(_Held(sig, replay, found, self.calls))
        return _fresh(replay())

    def _count(self, sig: Any) -> _Counted:
        """This call counted with the earlier eager calls of its signature (moved to the front)."""
        for i, entry in enumerate(self.counted):
            if equal(entry.signature, sig):
                entry.calls += 1
                self.counted.insert(0, self.counted.pop(i))
                return entry
        entry = _Counted(sig, 1, self.calls)
        self.counted = [entry, *self.counted][:MAX_COUNTED]
        return entry

    def _stage(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """A new input tensor (another mini-batch) copied into the static tensor of its position, shape,
        dtype and device (a device-to-device copy), so that a graph reading the static one replays."""
        args = list(args)
        for i in self.inputs:
            a = args[i]
            if not (isinstance(a, self.tensor_type) and self.graphs.accepts([a])):
                continue
            key = (i, tuple(a.shape), a.dtype, a.device)
            buffer = self.static.get(key)
            if buffer is None:
                buffer = self.static[key] = a.clone()
            else:
                buffer.copy_(a)
            args[i] = buffer
        return tuple(args)

    def _capturable(self, args: tuple[Any, ...], sig: Any, found: list[Any]) -> bool:
        return (
            bool(found)
            and any(a is self.ops for a in args)
            and not equal(sig, self.refused)
            and self.graphs.accepts(found)
        )


def _fresh(result: Any) -> Any:
    """The graph's output as a tensor of its own (the next replay overwrites the graph's)."""
    return None if result is None else result.clone()
