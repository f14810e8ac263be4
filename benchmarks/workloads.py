"""The benchmark cases: inputs on a backend, contestants to time, and a check that they agree.

A :class:`Case` holds zero-argument callables (``contestants``), keyed by role:

- ``loop`` / ``one_loop``: the explicit-loop reference from :mod:`dlcore.reference`;
- ``vectorized``: the same computation with the vectorized core (for a training step, the step);
- ``floor``: only the matrix products the step needs (forward ``W A``, backward ``dZ A^T`` and
  ``W^T dZ``), with the same library;
- ``pytorch`` / ``pytorch_tensors``: the same step in PyTorch eager mode with autograd, written with
  ``nn.Linear`` + ``torch.optim.SGD`` / with raw tensors (when PyTorch is installed).

``case.check()`` raises ``AssertionError`` unless the contestants compute the same result; the suite
and the report call it before timing anything. Loop sizes are chosen per device so that a loop
finishes in seconds (a GPU launches a kernel per element); vectorized contestants run at the same
size, so ``loop / vectorized`` is a ratio at equal size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from dlcore.backends import Backend
from dlcore.backends.torch_backend import import_torch
from dlcore.benchmarks.handwritten import handwritten_step

import dlcore
from dlcore import reference
from dlcore.activations import get_activation
from dlcore.propagation import backward, copy_params, cost, forward, train_step

LEARNING_RATE = 1e-5  # tiny: repeated steps keep the parameters (and the timings) stable
THREADS: int | None = None  # set by ``dlcore bench --threads N``; see cpu_threads()
USE_TORCH = True  # ``dlcore bench --no-torch`` leaves the PyTorch peers out

# Training-step networks of the issue: (layer_dims, hidden activation, m).
NETWORKS: dict[str, tuple[list[int], str, int]] = {
    "planar": ([2, 4, 1], "tanh", 400),
    "deep": ([12288, 20, 7, 5, 1], "relu", 209),
    "wide": ([784, 1024, 1024, 1], "relu", 2048),
}


@dataclass
class Case:
    """One benchmark at one size on one backend and dtype."""

    group: str  # "primitive", "logistic", "network" or "train_step"
    name: str
    size: str  # human-readable size, e.g. "n=1000000" or "[2, 4, 1] m=400"
    elements: int  # what "per element" divides by (vector length, n_x * m, examples)
    contestants: dict[str, Callable[[], Any]]
    check: Callable[[], None]
    rounds: int = 5  # timing rounds for each contestant
    info: dict[str, Any] = field(default_factory=dict)


# -- sizes ------------------------------------------------------------------------------------
def loop_sizes(backend: Backend, quick: bool) -> dict[str, Any]:
    """Sizes at which the loop contestants finish in seconds on this device."""
    if backend.is_gpu or backend.name == "torch":  # a kernel launch (or a tensor op) per element
        full = {"dot": 10_000, "exp": 5_000, "matvec": 40, "logistic": (100, 50), "network_m": 100}
        small = {"dot": 2_000, "exp": 1_000, "matvec": 20, "logistic": (30, 30), "network_m": 20}
    else:
        full = {"dot": 1_000_000, "exp": 300_000, "matvec": 400, "logistic": (1000, 500), "network_m": 209}
        small = {"dot": 100_000, "exp": 30_000, "matvec": 120, "logistic": (200, 100), "network_m": 64}
    return small if quick else full


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def seeded_data(n_x: int, m: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The benchmarks' training inputs: X: (n_x, m) standard normal and Y: (1, m) 0/1 labels, float64
    NumPy arrays from one seeded generator (cast or moved by the caller)."""
    rng = _rng(seed)
    return rng.standard_normal((n_x, m)), (rng.random((1, m)) > 0.5).astype("float64")


def _close(a: Any, b: Any, backend: Backend, dtype: str, what: str, rtol: float | None = None) -> None:
    rtol = rtol or {"float64": 1e-9, "float32": 2e-3}[dtype]
    a, b = np.asarray(backend.to_numpy(a), dtype="float64"), np.asarray(backend.to_numpy(b), dtype="float64")
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(a - b), initial=0.0)) / scale
    assert err <= rtol, f"{what}: loop and vectorized disagree (relative error {err:.2e} > {rtol:.0e})"


# -- 1. primitives ----------------------------------------------------------------------------
SWEEP = {"dot": [10, 100, 1_000, 10_000, 100_000], "exp": [10, 100, 1_000, 10_000], "matvec": [4, 16, 64]}


#: rounds of a loop-against-vectorized case, --quick too: with one, the "median" was one sample, and a
#: load spike inverted the speedup (vectorized 70 ms against its steady 1.5 ms); the loops at --quick's
#: sizes take 10-70 ms, so two more rounds cost little
LOOP_ROUNDS = 3


def _dot(backend: Backend, dtype: str, n: int, rounds: int) -> Case:
    rng, xp = _rng(1), backend.xp
    a = backend.asarray(rng.standard_normal(n), dtype=dtype)
    b = backend.asarray(rng.standard_normal(n), dtype=dtype)
    return Case(
        "primitive",
        "dot",
        f"n={n}",
        n,
        {"loop": lambda: reference.dot_loop(a, b), "vectorized": lambda: xp.vecdot(a, b)},
        lambda: _close(reference.dot_loop(a, b), xp.vecdot(a, b), backend, dtype, "dot", 1e-3),
        rounds,
    )


def _exp(backend: Backend, dtype: str, n: int, rounds: int) -> Case:
    rng, xp = _rng(2), backend.xp
    v = backend.asarray(rng.standard_normal(n), dtype=dtype)
    return Case(
        "primitive",
        "exp",
        f"n={n}",
        n,
        {"loop": lambda: reference.exp_loop(v), "vectorized": lambda: xp.exp(v)},
        lambda: _close(reference.exp_loop(v), xp.exp(v), backend, dtype, "exp"),
        rounds,
    )


def _matvec(backend: Backend, dtype: str, k: int, rounds: int) -> Case:
    rng = _rng(3)
    A = backend.asarray(rng.standard_normal((k, k)), dtype=dtype)
    u = backend.asarray(rng.standard_normal((k, 1)), dtype=dtype)
    return Case(
        "primitive",
        "matvec",
        f"{k}x{k}",
        k * k,
        {"loop": lambda: reference.matvec_loop(A, u), "vectorized": lambda: A @ u},
        lambda: _close(reference.matvec_loop(A, u), A @ u, backend, dtype, "matvec", 1e-4),
        rounds,
    )


def primitive_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    """The course's primitives at the loop size of this device; without ``quick``, also at the smaller
    sizes of :data:`SWEEP` (speedup against size: where the per-call overhead of vectorized code shows)."""
    sizes, rounds = loop_sizes(backend, quick), LOOP_ROUNDS
    cases = []
    for name, build in {"dot": _dot, "exp": _exp, "matvec": _matvec}.items():
        smaller = [] if quick else [n for n in SWEEP[name] if n < sizes[name]]
        cases += [build(backend, dtype, n, rounds) for n in [*smaller, sizes[name]]]
    return cases


# -- 2. logistic regression gradient ------------------------------------------------------------
def logistic_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    n_x, m = loop_sizes(backend, quick)["logistic"]
    rng = _rng(2)
    X = backend.asarray(rng.standard_normal((n_x, m)), dtype=dtype)
    Y = backend.asarray((rng.random((1, m)) > 0.5).astype("float64"), dtype=dtype)
    w = backend.asarray(rng.standard_normal((n_x, 1)) * 0.01, dtype=dtype)
    params = {"W1": backend.xp.asarray(w.T, copy=True), "b1": backend.asarray([[0.1]], dtype=dtype)}
    acts = [get_activation("sigmoid")]

    def vectorized() -> tuple[Any, Any, Any]:
        AL, caches = forward(X, params, acts)
        grads = backward(AL, Y, caches, acts)
        return cost(caches, Y, acts), grads["dW1"], grads["db1"]

    def check() -> None:
        J, dW, db = vectorized()
        for name, fn in (("two loops", reference.logistic_gradients_two_loops),
                         ("one loop", reference.logistic_gradients_one_loop)):  # fmt: skip
            J_loop, dw_loop, db_loop = fn(w, 0.1, X, Y)
            _close(J, J_loop, backend, dtype, f"logistic {name} J", 1e-3)
            _close(dW, backend.xp.reshape(dw_loop, (1, n_x)), backend, dtype, f"logistic {name} dw", 1e-3)
            _close(db, db_loop, backend, dtype, f"logistic {name} db", 1e-3)

    contestants = {
        "loop": lambda: reference.logistic_gradients_two_loops(w, 0.1, X, Y),
        "one_loop": lambda: reference.logistic_gradients_one_loop(w, 0.1, X, Y),
        "vectorized": vectorized,
    }
    return [Case("logistic", "logistic gradient", f"n_x={n_x} m={m}", n_x * m, contestants, check,
                 LOOP_ROUNDS)]  # fmt: skip


# -- 3. network forward + backward ------------------------------------------------------------
def _network(backend: Backend, dtype: str, name: str, m: int | None = None, seed: int = 3):
    """(dims, X, Y, params, activations) of the net ``name`` of NETWORKS (``m`` columns, default its own)."""
    dims, hidden, m_default = NETWORKS[name]
    return (dims, *_problem(backend, dtype, dims, hidden, m or m_default, seed))


def _problem(backend: Backend, dtype: str, dims: list[int], hidden: str, m: int, seed: int = 3):
    """X, Y (:func:`seeded_data`), the initial parameters (He for ReLU, else Xavier) and the activations
    (``hidden``, then a sigmoid output) of one benchmark training problem, on ``backend``."""
    X, Y = (backend.asarray(a, dtype=dtype) for a in seeded_data(dims[0], m, seed))
    acts = [get_activation(hidden)] * (len(dims) - 2) + [get_activation("sigmoid")]
    params = dlcore.initialize_parameters(dims, "he" if hidden == "relu" else "xavier", backend, seed, dtype)
    return X, Y, params, acts


def _vectorized_gradients(X, Y, params, acts):
    AL, caches = forward(X, params, acts)
    return cost(caches, Y, acts), backward(AL, Y, caches, acts)


def _check_gradients(backend, dtype, X, Y, params, acts, what: str) -> None:
    J, grads = _vectorized_gradients(X, Y, params, acts)
    J_loop, grads_loop = reference.network_gradients_loop(X, Y, params, acts)
    _close(J, J_loop, backend, dtype, f"{what} cost", 1e-3)
    for k, g in grads.items():
        _close(g, grads_loop[k], backend, dtype, f"{what} {k}", 1e-2 if dtype == "float32" else 1e-8)


def network_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    m_loop = loop_sizes(backend, quick)["network_m"]
    cases = []
    for name in ("planar", "deep"):
        m = min(m_loop, NETWORKS[name][2]) if name == "deep" else NETWORKS[name][2]
        dims, X, Y, params, acts = _network(backend, dtype, name, m)
        contestants = {
            "loop": lambda X=X, Y=Y, p=params, a=acts: reference.network_gradients_loop(X, Y, p, a),
            "vectorized": lambda X=X, Y=Y, p=params, a=acts: _vectorized_gradients(X, Y, p, a),
        }
        check = lambda X=X, Y=Y, p=params, a=acts, n=name: _check_gradients(backend, dtype, X, Y, p, a, n)  # noqa: E731
        cases.append(Case("network", f"forward+backward {name}", f"{dims} m={m}", m, contestants, check,
                          LOOP_ROUNDS))  # fmt: skip
    return cases


# -- 4. training step: dlcore, its matrix-product floor, PyTorch ---------------------------------
def ops_case(group: str, backend: Backend, dtype: str, name: str, sides: dict[str, Any], rounds: int):
    """``(Case, parameters by side)``: ``train_step`` of the net ``name`` once per ops object of ``sides``
    (each on its own copy of one start) and ``floor`` (the step's products), each side called three times
    first (a CUDA graph: eager, warm-up, captured). For the GPU scripts that pit ops against ops."""
    dims, X, Y, params, acts = _network(backend, dtype, name)
    own = {label: copy_params(params) for label in sides}

    def step(label: str) -> Callable[[], Any]:
        return lambda: train_step(X, Y, own[label], acts, 1e-5, compute_cost=False, ops=sides[label])

    contestants = {label: step(label) for label in sides} | {"floor": floor_products(X, params)}
    for _ in range(3):
        for label in sides:
            contestants[label]()
    size = f"{dims} m={X.shape[1]}"
    return Case(group, name, size, X.shape[1], contestants, lambda: None, rounds), own


def max_difference(backend: Backend, a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest |a - b| over every parameter, on the host."""
    return max(float(np.max(np.abs(backend.to_numpy(a[k]) - backend.to_numpy(b[k])))) for k in a)


def floor_products(X: Any, params: dict[str, Any]) -> Callable[[], None]:
    """Only the matrix products one training step needs, on arrays of the step's shapes.

    Forward ``W[l] A[l-1]``; backward ``dZ[l] A[l-1]^T`` and, for l > 1, ``W[l]^T dZ[l]`` (for a
    one-row W that is an outer product, computed as dlcore does it: a broadcast multiply, the
    fastest way the library has).
    """
    L = len(params) // 2
    Ws = [params[f"W{l}"] for l in range(1, L + 1)]
    xp = array_namespace(X)
    m = X.shape[1]
    As = [X] + [xp.ones((W.shape[0], m), dtype=X.dtype, device=X.device) for W in Ws]

    def products() -> None:
        for l, W in enumerate(Ws):
            W @ As[l]
        for l in range(L - 1, -1, -1):
            dZ = As[l + 1]
            dZ @ As[l].T
            if l > 0:
                Ws[l].T * dZ if Ws[l].shape[0] == 1 else Ws[l].T @ dZ

    return products


def torch_status() -> tuple[Any, str]:
    """``(torch, "")`` when PyTorch imports and is wanted, else ``(None, reason)``; never required."""
    if not USE_TORCH:
        return None, "PyTorch left out (--no-torch)"
    torch, reason = import_torch()  # a broken install (libtorch_cuda.so missing) leaves the peer out too
    return torch, reason and f"{reason} (an optional peer)"


def torch_device(backend: Backend) -> tuple[Any, str] | None:
    """``(torch, device)`` for a PyTorch peer on the backend's device, with :func:`cpu_threads` threads
    on CPU; ``None`` without PyTorch (or without CUDA in PyTorch for a GPU backend)."""
    torch, _ = torch_status()
    if torch is None:
        return None
    if backend.name == "torch":  # the torch backend's own device
        if not backend.is_gpu:
            torch.set_num_threads(cpu_threads())
        return torch, str(backend.device)
    if backend.is_gpu:
        return (torch, f"cuda:{backend.device.id}") if torch.cuda.is_available() else None
    torch.set_num_threads(cpu_threads())
    return torch, "cpu"


def torch_steps(backend: Backend, X, Y, params, hidden: str) -> dict[str, Any]:
    """The same training step in PyTorch eager mode with autograd, two ways (``{}`` when unavailable).

    - ``pytorch``: what a PyTorch user writes: ``nn.Sequential`` of ``nn.Linear`` layers (examples in
      rows, ``X^T``: (m, n_x)), ``nn.BCEWithLogitsLoss``, ``torch.optim.SGD`` with ``zero_grad()``.
    - ``pytorch_tensors``: the leanest eager code: raw tensors in dlcore's column layout,
      ``loss.backward()`` and a hand-written ``p -= lr * p.grad`` under ``no_grad``.

    Each value is ``(step, first_cost_and_grads)``: ``step()`` runs forward, cost, backward and update;
    ``first()`` returns the cost and the gradients (named like dlcore's) without updating.
    """
    peer = torch_device(backend)
    if peer is None:
        return {}
    torch, device = peer  # timed as dlcore's steps are: a device synchronize per N calls, not per call

    def tensor(a, grad=False):
        return torch.tensor(np.asarray(backend.to_numpy(a)), device=device, requires_grad=grad)

    L = len(params) // 2
    g = {"relu": torch.relu, "tanh": torch.tanh}[hidden]
    layer = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[hidden]

    # -- idiomatic: modules, a loss object and an optimizer ----------------------------------------
    modules: list[Any] = []
    for l in range(1, L + 1):
        W = params[f"W{l}"]
        dtype = getattr(torch, backend.dtype_name(W.dtype))
        linear = torch.nn.Linear(W.shape[1], W.shape[0], device=device, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(tensor(W))
            linear.bias.copy_(tensor(params[f"b{l}"])[:, 0])
        modules += [linear] + ([layer()] if l < L else [])
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rows_X, rows_Y = tensor(X).T.contiguous(), tensor(Y).T.contiguous()

    def module_step() -> None:
        optimizer.zero_grad()
        loss_fn(model(rows_X), rows_Y).backward()
        optimizer.step()

    def module_first() -> tuple[float, dict[str, np.ndarray]]:
        optimizer.zero_grad()
        J = loss_fn(model(rows_X), rows_Y)
        J.backward()
        linears = [mod for mod in model if isinstance(mod, torch.nn.Linear)]
        grads = {}
        for l, lin in enumerate(linears, start=1):
            grads[f"dW{l}"] = lin.weight.grad.detach().cpu().numpy().copy()
            grads[f"db{l}"] = lin.bias.grad.detach().cpu().numpy().copy()[:, None]
        optimizer.zero_grad()
        return float(J.detach()), grads

    # -- lean: raw tensors, manual update -----------------------------------------------------------
    tp = {k: tensor(v, grad=True) for k, v in params.items()}
    tX, tY = tensor(X), tensor(Y)

    def loss_and_backward():
        A = tX
        for l in range(1, L + 1):
            Z = tp[f"W{l}"] @ A + tp[f"b{l}"]
            A = g(Z) if l < L else Z
        J = torch.nn.functional.binary_cross_entropy_with_logits(A, tY)
        J.backward()
        return J

    def tensor_step() -> None:
        loss_and_backward()
        with torch.no_grad():
            for p in tp.values():
                p -= LEARNING_RATE * p.grad
                p.grad = None

    def tensor_first() -> tuple[float, dict[str, np.ndarray]]:
        J = loss_and_backward()
        grads = {f"d{k}": p.grad.detach().cpu().numpy().copy() for k, p in tp.items()}
        for p in tp.values():
            p.grad = None
        return float(J.detach()), grads

    return {"pytorch": (module_step, module_first), "pytorch_tensors": (tensor_step, tensor_first)}


def _step_case(
    backend: Backend, dtype: str, group: str, name: str, dims: list[int], hidden: str, m: int, rounds: int
) -> Case:
    """One training-step case: dlcore's step, its matrix-product floor, the PyTorch peers and, on NumPy,
    the hand-written step with preallocated buffers (:mod:`.handwritten`); checked against each other."""
    X, Y, params, acts = _problem(backend, dtype, dims, hidden, m)
    check_params = {k: backend.xp.asarray(v, copy=True) for k, v in params.items()}
    contestants: dict[str, Callable[[], Any]] = {
        "vectorized": lambda: train_step(X, Y, params, acts, LEARNING_RATE),
        "floor": floor_products(X, params),
    }
    hand_params = {k: backend.xp.asarray(v, copy=True) for k, v in params.items()}
    hand = handwritten_step(X, Y, hand_params, hidden, LEARNING_RATE)
    if hand is not None:
        contestants["handwritten"] = hand.step
    peers = torch_steps(backend, X, Y, check_params, hidden)
    contestants.update({role: step for role, (step, _) in peers.items()})

    # float32 peers: a ReLU unit whose Z rounds to the other side of 0 flips its gradient column; with
    # thousands of hidden units that happens (h = 2048: 1e-2), so the widest layers get a looser bound
    peer_rtol = 1e-3 if dtype == "float64" or max(dims[1:-1]) <= 1024 else 3e-2

    def check() -> None:
        k = min(8, X.shape[1])  # the loop reference on a few columns: cheap even for the wide net
        _check_gradients(backend, dtype, X[:, :k], Y[:, :k], check_params, acts, f"{name} step")
        J, grads = _vectorized_gradients(X, Y, check_params, acts)
        for role, (_, first) in peers.items():  # PyTorch on the whole batch
            J_torch, grads_torch = first()
            _close(J, J_torch, backend, dtype, f"{name} cost vs {role}", 1e-3)
            for key, g in grads.items():
                _close(g, grads_torch[key], backend, dtype, f"{name} {key} vs {role}", peer_rtol)
        if hand is not None:  # one step each from the same parameters: the same parameters after it
            mine = {k: backend.xp.asarray(v, copy=True) for k, v in check_params.items()}
            theirs = {k: backend.xp.asarray(v, copy=True) for k, v in check_params.items()}
            J_mine = train_step(X, Y, mine, acts, 0.1)
            J_hand = handwritten_step(X, Y, theirs, hidden, 0.1).step()
            _close(J_mine, J_hand, backend, dtype, f"{name} cost vs hand-written")
            for key, v in mine.items():
                _close(v, theirs[key], backend, dtype, f"{name} {key} vs hand-written")

    threads = cpu_threads() if peers else None
    info = {"layer_dims": dims, "hidden": hidden, "m": m, "torch_threads": threads}
    if backend.name == "numpy":  # the optional numba extra's fused kernels (NumpyOps), on or off
        from dlcore.backends.numpy_backend import fused_kernels

        info["numba_kernels"] = fused_kernels() is not None
    if group == "scaling" and hand is not None:  # memory per step next to time (NumPy: tracemalloc sees it)
        info["peak_bytes"] = {
            role: step_peak_bytes(contestants[role]) for role in ("vectorized", "handwritten")
        }
    return Case(group, f"{'train step' if group == 'train_step' else 'scaling'} {name}", f"{dims} m={m}", m,
                contestants, check, rounds, info)  # fmt: skip


def step_peak_bytes(step: Callable[[], Any]) -> int:
    """Peak bytes allocated during one call of ``step`` in its steady state, above what was held before:
    after two warm-up calls (NumpyOps records a replayable step on its second call with the same
    arguments, once: ~50-150 KiB of Python objects that every later call reuses)."""
    import tracemalloc

    step()
    step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def train_step_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    rounds = {"planar": 30, "deep": 25, "wide": 7} if not quick else {"planar": 15, "deep": 7, "wide": 3}
    return [
        _step_case(backend, dtype, "train_step", name, dims, hidden, m, rounds[name])
        for name, (dims, hidden, m) in NETWORKS.items()
    ]


#: the scaling series: the planar net as the batch grows, and [784, h, h, 1] as the layers widen
SCALING_PLANAR_M = (400, 4_000, 40_000, 400_000)
SCALING_HIDDEN = (64, 256, 1024, 2048)


def scaling_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    """The training step along the scaling series (quick: the two smaller points of each)."""
    planar_m = SCALING_PLANAR_M[:2] if quick else SCALING_PLANAR_M
    hidden = SCALING_HIDDEN[:2] if quick else SCALING_HIDDEN
    cases = [
        _step_case(backend, dtype, "scaling", f"planar m={m}", [2, 4, 1], "tanh", m, 3 if quick else 15)
        for m in planar_m
    ]
    cases += [
        _step_case(backend, dtype, "scaling", f"h={h}", [784, h, h, 1], "relu", 2048, 3 if quick else 7)
        for h in hidden
    ]
    return cases


def cpu_threads() -> int:
    """The threads every CPU contestant gets: ``dlcore bench --threads N`` (:data:`THREADS`), else one per
    core this process may use (what OpenBLAS and PyTorch pick by default)."""
    if THREADS:
        return THREADS
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def minibatch_epoch_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    """One mini-batch epoch of the wide net against MLPClassifier and PyTorch (see :mod:`.epoch`)."""
    from dlcore.benchmarks.epoch import minibatch_cases

    return minibatch_cases(backend, dtype, quick)


GROUPS: dict[str, Callable[[Backend, str, bool], list[Case]]] = {
    "primitive": primitive_cases,
    "logistic": logistic_cases,
    "network": network_cases,
    "train_step": train_step_cases,
    "scaling": scaling_cases,
    "minibatch_epoch": minibatch_epoch_cases,
}


#: the groups whose cases time an explicit loop against the vectorized code (what --plot draws)
LOOPED = ("primitive", "logistic", "network")


def all_cases(backend: Backend, dtype: str, quick: bool) -> list[Case]:
    return [c for build in GROUPS.values() for c in build(backend, dtype, quick)]


def inner_iterations(seconds_per_call: float, target: float = 0.02) -> int:
    """How many calls to group in one timed round so that a round lasts about ``target`` seconds."""
    return max(1, min(1000, math.ceil(target / max(seconds_per_call, 1e-9))))
