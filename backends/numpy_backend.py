"""NumPy on the CPU: the reference backend, with a few ops done in place through NumPy's ``out=``."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from functools import partial
from operator import attrgetter, is_
from types import SimpleNamespace
from typing import Any

import array_api_compat.numpy as xp
import numpy as np
from dlcore.backends.base import Backend, equal, switched_on
from dlcore.backends.host_memory import keep_freed_host_memory

from dlcore.ops import Ops, register_ops

Array = Any


#: arrays of fewer elements are allocated afresh even in a captured step: malloc serves them from its
#: free lists faster than the workspace's bookkeeping (measured: ~0.15 us against ~0.4 us), and they
#: stay in the caches either way
SMALL = 4096

#: a replayable step is recorded only while every array it is handed has at most this many elements (the
#: deep net's X, 12288 x 209, is 2.6M): the recording keeps those arrays alive (as the workspace keeps the
#: step's own), and above this size the Python it saves (~15-50 us a step) is well below 1% of a step
REPLAY_MAX_ELEMENTS = 1 << 22

#: a replayable step's read-only inputs (mini-batches) up to this size are copied into buffers of the step
#: so that the next batch replays: [2, 4, 1] and [2, 16, 8, 1] with batches of 64, ~2x faster a step; a
#: [784, 64, 64, 1] batch of 128 (100k elements), 1.08x slower (the copy costs more than the replay saves)
STAGE_MAX_ELEMENTS = 1 << 15

#: the fused ReLU kernels (numba) serve layers of at least this many elements; below, NumPy's calls cost
#: about as much as the kernel's and there is nothing to compile
FUSED_MIN_ELEMENTS = 1 << 15


# -- fused kernels (the optional ``numba`` extra) ---------------------------------------------------
# Plain Python over 2-D arrays, compiled by numba when it is installed (``DLCORE_NUMBA=0`` turns them
# off). Each does exactly NumPy's arithmetic per element (the same IEEE operations, in the same order, no
# fast-math), in one pass over memory instead of two or three: the same bits (tests/test_perf_kernels.py
# runs this very source uncompiled against NumPy, and compiled where numba is present).
def _bias_relu(Z, b, A, zero):  # Z += b; A = maximum(Z, 0) (NaN stays NaN, -0.0 gives +0.0)
    n, m = Z.shape
    for i in range(n):
        bi = b[i, 0]
        for j in range(m):
            z = Z[i, j] + bi
            Z[i, j] = z
            A[i, j] = z if z > zero else (z if z != z else zero)


def _relu_backward(dA, Z, zero):  # dA *= (Z > 0) as a float mask: dA * 1 = dA, else dA * 0
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            if not Z[i, j] > zero:
                dA[i, j] = dA[i, j] * zero


def _tanh_backward(dA, A, one):  # dA *= 1 - A * A
    n, m = A.shape
    for i in range(n):
        for j in range(m):
            a = A[i, j]
            dA[i, j] = dA[i, j] * (one - a * a)


_KERNELS: list[Any] = []  # [] not tried yet, [None] unavailable, [namespace] compiled on first call


def fused_kernels() -> Any:
    """The compiled kernels (``.bias_relu``, ``.relu_backward``, ``.tanh_backward``), or ``None``
    without numba or with ``DLCORE_NUMBA=0``. Asked for on the first layer of ``FUSED_MIN_ELEMENTS`` that
    one serves: numba is imported and every kernel compiled for float32 and float64 then (~1.2 s the
    first time, ~0.3 s from numba's cache on disk); a kernel that does not compile turns them all off with
    one warning."""
    if not _KERNELS:
        kernels = None
        if switched_on("DLCORE_NUMBA"):
            try:
                import numba
            except Exception:  # not installed, or failing to import (an llvmlite without its library, a
                pass  # NumPy newer than it supports): NumPy's own passes, as dlcore info says
            else:
                try:
                    jit = numba.njit(cache=True, nogil=True)
                    kernels = SimpleNamespace(
                        bias_relu=jit(_bias_relu),
                        relu_backward=jit(_relu_backward),
                        tanh_backward=jit(_tanh_backward),
                    )
                    for dtype in (np.float32, np.float64):
                        x = np.ones((2, 2), dtype)
                        kernels.bias_relu(x, x[:, :1].copy(), np.empty_like(x), dtype(0))
                        kernels.relu_backward(x, x, dtype(0))
                        kernels.tanh_backward(x, x, dtype(1))
                except Exception as error:  # noqa: BLE001 - any compile failure: NumPy's path instead
                    warnings.warn(f"dlcore: numba's fused kernels are off ({error})", stacklevel=2)
                    kernels = None
        _KERNELS.append(kernels)
    return _KERNELS[0]


def _kernels_for(*arrays: np.ndarray) -> Any:
    """The fused kernels (:func:`fused_kernels`) when they serve these arrays: the first of at least
    ``FUSED_MIN_ELEMENTS``, all C-contiguous 2-D float32 or float64 of one dtype (what they are compiled
    for); else ``None``."""
    dtype = arrays[0].dtype
    if arrays[0].size < FUSED_MIN_ELEMENTS or not (dtype == np.float32 or dtype == np.float64):
        return None
    if not all(a.ndim == 2 and a.dtype == dtype and a.flags.c_contiguous for a in arrays):
        return None
    return fused_kernels()


#: the NumPy functions the primitives call, by name. They call them through ``_Running.np``: this namespace
#: (direct calls, no cost over ``np.tanh``) or, while a replayable step is recorded, a :class:`_Recorder`
#: with the same names, which also appends each call to the step's tape
_NUMPY = SimpleNamespace(
    matmul=np.matmul,
    add=np.add,
    subtract=np.subtract,
    multiply=np.multiply,
    divide=np.divide,
    negative=np.negative,
    abs=np.abs,
    exp=np.exp,
    log1p=np.log1p,
    tanh=np.tanh,
    maximum=np.maximum,
    greater=np.greater,
    greater_equal=np.greater_equal,
    add_reduce=np.add.reduce,
    call=lambda f, *args: f(*args),
)


class _Running:
    """What the captured step running in one thread uses (one per thread: :class:`_PerThread`)."""

    __slots__ = ("workspace", "next", "scratch", "np", "exp_neg_abs")

    def __init__(self) -> None:
        self.workspace: list[np.ndarray] | None = None  # the running captured step's buffers
        self.next = 0
        #: the running captured step's scratch buffers, one per (shape, dtype): see NumpyOps._scratch; and
        #: its workspace buffers of other batch widths, per (index, shape, dtype): see NumpyOps._empty
        self.scratch: dict[tuple[Any, ...], np.ndarray] = {}
        self.np: Any = _NUMPY  # a _Recorder while a replayable step is recorded
        #: (Z, exp(-|Z|)) of the output sigmoid in the running captured step: the binary cost reuses it
        self.exp_neg_abs: tuple[np.ndarray, np.ndarray] | None = None


class _PerThread(threading.local):
    """``step``: this thread's :class:`_Running`. NumPy releases the GIL inside its calls, so networks
    trained in threads at once (one NumpyOps serves them all) must not take each other's buffers or
    record into each other's tapes. (One thread-local lookup, then plain slots: a thread-local attribute
    read costs ~3x a slot's, and the primitives read these ~40 times a step.)"""

    def __init__(self) -> None:
        self.step = _Running()


class _Recorder:
    """``_NUMPY``'s names, recording: every call runs at once and is appended to ``tape`` as a
    ``partial`` over the same arguments, so that replaying the tape repeats the step's NumPy calls and
    nothing else. A call with no ``out=`` would hand the replay a stale array, so it spoils the recording
    (``ok = False``), as does any primitive that computes outside these names (:meth:`NumpyOps._untaped`)."""

    def __init__(self) -> None:
        self.tape: list[Callable[[], Any]] = []
        self.results: list[tuple[Any, list[Any]]] = []  # (value, cell): ``call``'s results, for the return
        self.ok = True
        for name, f in vars(_NUMPY).items():
            if name != "call":
                setattr(self, name, self._wrap(f))

    def _wrap(self, f: Any) -> Callable[..., Any]:
        tape = self.tape
        nin = getattr(f, "nin", None)  # a ufunc
        positional_out = nin is not None and f is not np.maximum  # faster to replay than out=

        def record(*args: Any, **kwargs: Any) -> Any:
            result = f(*args, **kwargs)
            if positional_out and len(args) == nin and set(kwargs) == {"out"}:
                args, kwargs = (*args, kwargs["out"]), {}
            if nin is not None:
                args = _typed_scalars(args, nin)
            if not ((nin is not None and len(args) > nin) or "out" in kwargs):
                self.ok = False
            tape.append(partial(f, *args, **kwargs) if kwargs else partial(f, *args))
            return result

        return record

    def call(self, f: Callable[..., Any], *args: Any) -> Any:
        """``f(*args)``, a Python function over arrays the step owns (a cost's last reduction): replayed as
        it is, its latest result kept in a cell (the step may return it)."""
        cell = [None]

        def run() -> None:
            cell[0] = f(*args)

        run()
        self.tape.append(run)
        self.results.append((cell[0], cell))
        return cell[0]


_ARRAY = object()  # where an array sits in a signature
_META = attrgetter("shape", "dtype")


#: Python numbers in recorded calls become 0-D arrays only on arrays smaller than this: it saves per-call
#: overhead (~0.6 us a call in float32), and on large arrays NumPy's loop with a Python scalar was as fast
#: or faster (planar m = 400,000: 4% slower with 0-D arrays, one paired run)
TYPED_SCALARS_BELOW = 1 << 15


def _typed_scalars(args: tuple[Any, ...], nin: int) -> tuple[Any, ...]:
    """A ufunc's Python-number inputs as 0-D arrays of its floating array inputs' one dtype: the value NumPy
    computes with anyway (a Python scalar is cast to the array's dtype, NEP 50), without the promotion
    logic per call (float32, (1, 400): 1.06 us a call with 1.0, 0.45 us with a float32 0-D array)."""
    inputs = args[:nin]
    if not any(type(a) is float or type(a) is int for a in inputs):
        return args
    arrays = [a for a in inputs if type(a) is np.ndarray]
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1 or max(a.size for a in arrays) >= TYPED_SCALARS_BELOW:
        return args
    dtype = dtypes.pop()
    if dtype.kind != "f":
        return args
    typed = tuple(np.asarray(a, dtype) if type(a) is float or type(a) is int else a for a in inputs)
    return typed + args[nin:]


def _product_order(a: np.ndarray) -> str:
    """The layout a copy of ``a`` needs for a matrix product to round as it does on ``a``: "F" when its
    first axis is the one with unit stride (a transposed array, ``rows.T``: BLAS reads it transposed),
    else "C"."""
    unit = a.itemsize
    return "F" if a.ndim == 2 and a.strides[0] == unit and a.strides[1] != unit else "C"


def _same_signature(a: list[Any] | None, b: list[Any] | None) -> bool:
    """``a == b``, and False where an item's ``==`` cannot say (another library's array, say)."""
    return a is not None and b is not None and equal(a, b)


def _signature(args: tuple[Any, ...] | list[Any]) -> tuple[list[Any], list[np.ndarray]]:
    """What a replay must find again in a captured step's arguments, and the arrays among them: each array
    by identity, shape and dtype (a replay reads the very arrays it was recorded with), dicts by their keys
    then values, lists and tuples by length then items, anything else by type and value (0.5 and
    ``np.float32(0.5)`` are equal but round differently)."""
    sig: list[Any] = []
    arrays: list[np.ndarray] = []
    for a in args:
        t = type(a)
        if t is np.ndarray or isinstance(a, np.ndarray):  # subclasses (memmap) by identity too
            sig.append(_ARRAY)
            arrays.append(a)
        elif t is dict or t is list or t is tuple:
            sig.append(tuple(a) if t is dict else len(a))
            for v in a.values() if t is dict else a:
                tv = type(v)
                if tv is np.ndarray or isinstance(v, np.ndarray):
                    sig.append(_ARRAY)
                    arrays.append(v)
                elif tv is dict or tv is list or tv is tuple:
                    inner, inner_arrays = _signature((v,))
                    sig.append(tuple(inner))
                    arrays += inner_arrays
                else:
                    sig.append((tv, v))
        else:
            sig.append((t, a))
    sig += map(id, arrays)  # the ids and metadata of all arrays at once, in C
    sig += map(_META, arrays)
    return sig, arrays


def _items(container: dict | list | tuple) -> Any:
    return container.values() if type(container) is dict else container


class _Tape:
    """One recorded call of a replayable step: its signature, its NumPy calls, where its result comes from.

    :meth:`same` is the fast test of a new call's arguments (~1 us where the full signature takes ~2.5 us
    on the planar step): the same objects at the top level, the same values (by identity) in its dicts and
    lists (one level: arguments with nested containers always take the full signature), and the recorded
    arrays still of their shapes and dtypes. A call it does not recognise is
    compared by its full signature (equal scalars that are other objects, e.g. a learning rate computed
    again)."""

    __slots__ = ("args", "calls", "containers", "nested", "arrays", "metas", "result", "signature")

    def __init__(
        self,
        args: tuple[Any, ...],
        signature: list[Any],
        arrays: list[np.ndarray],
        calls: list[Callable[[], Any]],
        result: list[Any] | None,
    ) -> None:
        self.args = args  # held: the arrays it reads stay alive, so their ids mean them
        self.signature = signature
        self.arrays = arrays
        self.metas = list(map(_META, arrays))
        self.containers = [
            (i, tuple(a), list(map(id, a.values()))) if type(a) is dict else (i, None, list(map(id, a)))
            for i, a in enumerate(args)
            if type(a) in (dict, list, tuple)
        ]
        # a container in a container: same() does not look inside it, the full signature does
        self.nested = any(
            type(v) in (dict, list, tuple) for a in args if type(a) in (dict, list, tuple) for v in _items(a)
        )
        self.calls = calls
        self.result = result  # None, or the cell of the ``call`` whose value the step returned

    def same(self, args: tuple[Any, ...]) -> bool:
        if self.nested or len(args) != len(self.args) or not all(map(is_, args, self.args)):
            return False
        for i, keys, ids in self.containers:
            a = args[i]
            if keys is None:
                if list(map(id, a)) != ids:
                    return False
            elif tuple(a) != keys or list(map(id, a.values())) != ids:
                return False
        return list(map(_META, self.arrays)) == self.metas

    def replay(self) -> Any:
        for call in self.calls:
            call()
        return None if self.result is None else self.result[0]


class NumpyOps(Ops):
    """NumPy's own versions of the hot primitives: ``out=`` buffers, in-place ufuncs, no wrappers.

    Inside a step made by :meth:`capture`, every (n, m) array the step needs (Z, A, dZ, dA, dW, the
    cost's terms) comes from a workspace allocated on the first call and reused by the next ones, as a
    hand-written NumPy step would preallocate them: no allocation, and the buffers stay warm in the
    caches. Outside a captured step every result is a fresh array. The arithmetic is the default's, in
    the same order: the same bits (tests/test_ops.py).

    A step captured with ``replay=True`` is also *recorded*: the primitives name every NumPy call they
    make through ``self._thread.step.np`` (this thread's), and a second call of the step with the same
    arguments (the same arrays, shapes, dtypes and scalars) replays those calls from a flat list, without
    the Python that chose them (the layer loop, the dict of parameters, the caches, the shape checks):
    NumPy's counterpart of a CUDA graph. Only the primitives in :attr:`TAPED` can be recorded; any other
    one, and any fallback to the default inside them, makes the step's recording unusable (it then runs
    as before).

    Measured and left to the default: ReLU' as ``np.multiply(dA, Z > 0, out=dA)`` (the boolean operand
    is cast inside the ufunc loop: 1.3x slower than multiplying by a float copy of the mask).
    """

    name = "numpy"
    #: the primitives that name all their NumPy calls through ``self._thread.step.np`` (or call
    #: :meth:`_untaped`); every other public method of :class:`Ops` spoils a recording (wrapped below)
    TAPED = frozenset(
        {
            "layer_forward",
            "activation_backward",
            "bias_gradient",
            "linear_backward",
            "output_gradient",
            "cost",
            "gd_update",
            "gd_update_all",  # Ops' own: gd_update for each parameter
        }
    )

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self._thread = _PerThread()

    # -- the workspace and the replay ---------------------------------------------------------------
    def capture(
        self, step: Callable[..., Any], replay: bool = False, inputs: tuple[int, ...] = ()
    ) -> Callable[..., Any]:
        """``step`` with its own workspace: the i-th buffer it asks for is the i-th of the last call
        (reallocated when the shape changes, e.g. the last, partial mini-batch). Called inside another
        captured step it still uses its own buffers, so a step made of captured parts shares theirs
        (the training loop's whole step is its two halves: one set of buffers, not two).

        ``replay=True`` (the caller vouches that ``step`` computes every array through the ops object it
        is handed as an argument, has no Python side effects, and returns ``None`` or what a primitive
        computed; :meth:`dlcore.ops.Ops.capture`): when a call finds the
        same arguments as the call before, that call is recorded, and every later call with those
        arguments replays the recording. A step not handed this very ops object (a wrapper's) is never
        recorded. ``inputs`` (read-only arguments, e.g. mini-batches): each small one (at most
        STAGE_MAX_ELEMENTS) is copied into a buffer of this step (one per position, shape and dtype), so
        each new batch of one shape replays; a step with inputs whose recording was refused runs as it is
        from then on, uncopied."""
        buffers: list[np.ndarray] = []
        scratch: dict[tuple[Any, ...], np.ndarray] = {}
        #: the tape, the previous call's signature, and a refused recording (a _Tape without calls: its
        #: cheap ``same`` spares a step that cannot be replayed the full signature on every call)
        state: list[Any] = [None, None, None]

        def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            r = self._thread.step
            outer = r.workspace, r.next, r.scratch, r.exp_neg_abs  # when nested
            r.workspace, r.next, r.scratch, r.exp_neg_abs = buffers, 0, scratch, None
            try:
                return step(*args, **kwargs)
            finally:
                r.workspace, r.next, r.scratch, r.exp_neg_abs = outer

        if not replay:
            return lambda *args, **kwargs: run(args, kwargs)
        staged: dict[tuple[int, tuple[int, ...], Any, str], np.ndarray] = {}

        def stage(args: tuple[Any, ...]) -> tuple[Any, ...]:
            args = list(args)
            for i in inputs:
                a = args[i]
                if type(a) is not np.ndarray or a.size > STAGE_MAX_ELEMENTS:
                    continue
                order = _product_order(a)
                key = (i, a.shape, a.dtype, order)
                buffer = staged.get(key)
                if buffer is None:
                    buffer = staged[key] = np.empty(a.shape, a.dtype, order=order)
                np.copyto(buffer, a)
                args[i] = buffer
            return tuple(args)

        def replayed(*args: Any) -> Any:
            if self._thread.step.workspace is not None:  # nested: the outer step records (its buffers)
                return run(args, {})
            tape, refused = state[0], state[2]
            if inputs:
                if tape is None and refused is not None:  # not replayable (its head, say): no copies
                    return run(args, {})
                args = stage(args)
            if tape is not None and tape.same(args):
                state[1] = None  # "the previous call": the tape's (a last partial batch is not recorded)
                return tape.replay()
            if refused is not None and refused.same(args):
                return run(args, {})
            signature, arrays = _signature(args)
            if tape is not None and _same_signature(signature, tape.signature):
                state[1] = None
                return tape.replay()
            if (
                not _same_signature(signature, state[1])
                or (refused is not None and _same_signature(signature, refused.signature))
                or not any(a is self for a in args)
                or any(a.size > REPLAY_MAX_ELEMENTS or a.ndim == 0 for a in arrays)  # a 0-D learning rate
            ):  # ... changed in place is the same array: what the recording made of its value would stay
                state[1] = signature
                return run(args, {})
            state[1] = None  # the second call with these arguments: recorded (once)
            recorder = self._thread.step.np = _Recorder()
            try:
                result = run(args, {})
            finally:
                self._thread.step.np = _NUMPY
            cell = None
            if result is not None:  # the value the step returns must be one a recorded call computed
                cell = next((cell for value, cell in recorder.results if value is result), None)
            if recorder.ok and (result is None or cell is not None):
                state[0] = _Tape(args, signature, arrays, recorder.tape, cell)
            else:  # not replayable: not recorded again while the arguments stay these
                state[1], state[2] = signature, _Tape(args, signature, arrays, [], None)
            return result

        return replayed

    def _untaped(self) -> None:
        """Called where a primitive computes outside ``self._thread.step.np``: a step recording now is not
        replayable."""
        n = self._thread.step.np
        if n is not _NUMPY:
            n.ok = False

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        r = self._thread.step
        workspace = r.workspace
        if workspace is None or shape[0] * shape[-1] < SMALL:  # small: np.empty is cheaper than a lookup
            return np.empty(shape, dtype)
        i = r.next
        r.next = i + 1
        if i < len(workspace):
            buffer = workspace[i]
            if buffer.shape == shape and buffer.dtype == dtype:
                return buffer
            # another batch width (a last, partial batch): each width keeps its own buffer, swapped in
            # and out, so the widths do not reallocate every epoch and a replay's recorded buffers (the
            # full batches') stay the ones the eager steps use, not a second set
            stash = r.scratch
            stash[(i, buffer.shape, buffer.dtype)] = buffer
            buffer = stash.pop((i, shape, dtype), None)
            workspace[i] = buffer = np.empty(shape, dtype) if buffer is None else buffer
            return buffer
        buffer = np.empty(shape, dtype)
        workspace.append(buffer)
        return buffer

    def _scratch(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A temporary that dies inside the primitive asking for it (a ReLU' mask, lr * dW): in a captured
        step, one buffer per shape and dtype serves every such use, so the masks of layers of one width
        share their memory instead of each holding its own (wide net: 8 MiB less in float32)."""
        r = self._thread.step
        if r.workspace is None or shape[0] * shape[-1] < SMALL:
            return np.empty(shape, dtype)
        key = (shape, dtype)
        buffer = r.scratch.get(key)
        if buffer is None:
            buffer = r.scratch[key] = np.empty(shape, dtype)
        return buffer

    # -- layers -------------------------------------------------------------------------------------
    def layer_forward(self, W: Array, A_prev: Array, b: Array, g: Any) -> tuple[Array, Array]:
        r = self._thread.step
        n = r.np
        dtype = A_prev.dtype if W.dtype == A_prev.dtype else np.result_type(W, A_prev)
        shape = (W.shape[0], A_prev.shape[1])
        Z = n.matmul(W, A_prev, out=self._empty(shape, dtype))
        kernels = _kernels_for(Z, b) if g.name == "relu" and b.shape == (shape[0], 1) else None
        if kernels is not None:
            A = self._empty(shape, dtype)
            n.call(kernels.bias_relu, Z, b, A, dtype.type(0))  # one pass instead of two
            return Z, A
        n.add(Z, b, out=Z)
        if g.name == "tanh":
            return Z, n.tanh(Z, out=self._empty(shape, dtype))
        if g.name == "relu":
            return Z, n.maximum(Z, 0.0, out=self._empty(shape, dtype))
        if g.name == "sigmoid":  # activations.sigmoid: where(Z >= 0, 1, E) / (1 + E), E = exp(-|Z|)
            E = n.abs(Z, out=self._empty(shape, dtype))
            n.negative(E, out=E)
            n.exp(E, out=E)
            A = n.greater_equal(Z, 0.0, out=self._empty(shape, dtype))
            n.maximum(A, E, out=A)  # 1 where Z >= 0 (E <= 1 there), else E (> 0): the where, mask-free
            if r.workspace is None:
                n.add(E, 1.0, out=E)
                return Z, n.divide(A, E, out=A)
            # in a captured step E is kept for the binary cost, log1p(E) (three passes fewer)
            n.divide(A, n.add(E, 1.0, out=self._scratch(shape, dtype)), out=A)
            r.exp_neg_abs = (Z, E)
            return Z, A
        self._untaped()
        return Z, g.forward(Z)

    def activation_backward(self, g: Any, dA: Array, Z: Array, A: Array) -> Array:
        n = self._thread.step.np
        if g.name == "tanh":  # g' = 1 - A^2
            kernels = _kernels_for(A, dA)
            if kernels is not None:
                n.call(kernels.tanh_backward, dA, A, dA.dtype.type(1))  # one pass instead of three
                return dA
            d = n.multiply(A, A, out=self._scratch(A.shape, A.dtype))
            n.subtract(1.0, d, out=d)
        elif g.name == "relu":  # g' = (Z > 0), as a float mask
            kernels = _kernels_for(Z, dA)
            if kernels is not None:
                n.call(kernels.relu_backward, dA, Z, dA.dtype.type(0))  # no mask, one pass
                return dA
            d = n.greater(Z, 0.0, out=self._scratch(Z.shape, Z.dtype))
        elif g.name == "sigmoid":  # g' = A (1 - A)
            d = n.subtract(1.0, A, out=self._scratch(A.shape, A.dtype))
            n.multiply(A, d, out=d)
        else:
            self._untaped()
            d = g.derivative(Z, A)
        n.multiply(dA, d, out=dA)
        return dA

    def bias_gradient(self, dZ: Array) -> Array:
        """db = sum(dZ, axis=1) by the ufunc itself: np.sum's Python wrappers cost ~1 us a call."""
        out = self._empty((dZ.shape[0], 1), dZ.dtype)
        return self._thread.step.np.add_reduce(dZ, axis=1, keepdims=True, out=out)

    def linear_backward(self, dZ: Array, A_prev: Array, W: Array, need_dA_prev: bool):
        n = self._thread.step.np
        dW = n.matmul(dZ, A_prev.T, out=self._empty(W.shape, dZ.dtype))
        db = self.bias_gradient(dZ)
        if not need_dA_prev:
            return None, dW, db
        dA = self._empty(A_prev.shape, dZ.dtype)
        if W.shape[0] == 1:  # the outer product as a broadcast multiply
            return n.multiply(W.T, dZ, out=dA), dW, db
        return n.matmul(W.T, dZ, out=dA), dW, db

    # -- the output layer ---------------------------------------------------------------------------
    def output_gradient(self, head: Any, Z: Array, A: Array, Y: Array, scale: float) -> Array:
        if not head.residual_gradient:
            self._untaped()
            return super().output_gradient(head, Z, A, Y, scale)
        n = self._thread.step.np
        dZ = n.subtract(A, Y, out=self._empty(A.shape, A.dtype))  # (A - Y) scale / m
        n.multiply(dZ, scale / A.shape[1], out=dZ)
        return dZ

    def cost(self, head: Any, Z: Array, A: Array, Y: Array) -> Array:
        """Binary cross-entropy from the logits in workspace buffers: max(Z, 0) - Y Z + log1p(e^-|Z|), the
        default's value (the same bits for 0/1 labels). Infinite logits make 0 * inf here: a cost that is
        not finite is computed again by the default, which gives the limits."""
        if not head.logit_cross_entropy:
            self._untaped()
            return super().cost(head, Z, A, Y)
        n = self._thread.step.np
        loss = n.maximum(Z, 0.0, out=self._empty(Z.shape, Z.dtype))
        t = n.multiply(Y, Z, out=self._empty(Z.shape, Z.dtype))
        n.subtract(loss, t, out=loss)
        shared = self._thread.step.exp_neg_abs
        if shared is not None and shared[0] is Z:  # this captured step's sigmoid computed exp(-|Z|)
            n.log1p(shared[1], out=t)
        else:
            n.abs(Z, out=t)
            n.negative(t, out=t)
            n.exp(t, out=t)
            n.log1p(t, out=t)
        n.add(loss, t, out=loss)
        return n.call(self._mean_loss, loss, head, Z, A, Y)

    def _mean_loss(self, loss: Array, head: Any, Z: Array, A: Array, Y: Array) -> Any:
        J = np.add.reduce(loss, axis=None) / Z.shape[1]
        return J if math.isfinite(J) else Ops.cost(self, head, Z, A, Y)

    # -- optimizers ---------------------------------------------------------------------------------
    def gd_update(self, W: Array, dW: Array, learning_rate: float) -> None:
        """W -= alpha dW (``learning_rate=1``: no temporary), as the default."""
        n = self._thread.step.np
        if learning_rate != 1.0:
            dW = n.multiply(learning_rate, dW, out=self._scratch(dW.shape, dW.dtype))
        n.subtract(W, dW, out=W)

    def adam_update(self, W, dW, v, s, learning_rate, beta1, beta2, epsilon, t) -> None:
        """The default's arithmetic in the same order (the same bits), two temporaries instead of six."""
        t = int(t)  # a step count kept as an array (mixed precision's) is on the host here: no sync
        v *= beta1
        v += (1.0 - beta1) * dW
        tmp = np.multiply(dW, dW)
        tmp *= 1.0 - beta2
        s *= beta2
        s += tmp
        np.multiply(s, 1.0 / (1.0 - beta2**t), out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += epsilon
        step = (learning_rate * (1.0 / (1.0 - beta1**t))) * v
        step /= tmp
        W -= step


def _spoils_a_recording(method: Callable[..., Any]) -> Callable[..., Any]:
    def untaped(self: NumpyOps, *args: Any, **kwargs: Any) -> Any:
        self._untaped()
        return method(self, *args, **kwargs)

    untaped.__name__, untaped.__doc__ = method.__name__, method.__doc__
    return untaped


for _name, _method in list(vars(Ops).items()):  # every primitive NumpyOps does not record (adam_update, ...)
    if callable(_method) and not _name.startswith("_") and _name not in NumpyOps.TAPED | {"capture"}:
        setattr(NumpyOps, _name, _spoils_a_recording(getattr(NumpyOps, _name)))


class NumpyBackend(Backend):
    """``numpy`` through ``array_api_compat.numpy``, on the CPU."""

    name = "numpy"
    low_precision = ("float16",)  # mixed precision's compute dtypes (NumPy has no bfloat16)

    @classmethod
    def create(cls, device: str | None) -> NumpyBackend:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on the CPU only; got device {device!r}")
        keep_freed_host_memory()  # the CPU's memory pool (host_memory.py)
        return cls(xp, "cpu", OPS)

    def owns(self, x: Any) -> bool:
        return type(x) is np.ndarray

    def from_host(self, host: np.ndarray) -> Any:
        return np.asarray(host)

    def quiet_floating_point(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")


OPS = NumpyOps(xp)
register_ops(np.ndarray, OPS)  # the functional API on plain NumPy arrays uses these ops too
