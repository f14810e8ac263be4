"""One epoch of mini-batch gradient descent on the wide net: dlcore against scikit-learn's
MLPClassifier (solver="sgd", same layer sizes, batch size and learning rate, no momentum, no L2) and
PyTorch (when installed). Target: faster per epoch than MLPClassifier on CPU.

The group ``minibatch_epoch`` of :mod:`dlcore.benchmarks.workloads`; its check runs one dlcore epoch with
batch_size = m and compares it with one full-batch :func:`train_step`.
"""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Any

import numpy as np
from dlcore.backends import Backend
from dlcore.benchmarks import workloads

from dlcore import Network
from dlcore.optimizers import GradientDescent
from dlcore.propagation import train_step
from dlcore.training import Plan, train

DIMS, HIDDEN = [784, 1024, 1024, 1], "relu"  # the wide net of the training-step benchmark
BATCH_SIZE = 128


def _epoch(net: Network, X: Any, Y: Any, batch_size: int, rng: Any) -> Any:
    """One shuffled epoch through the one training loop (:func:`dlcore.training.train`), exactly what
    ``Network.fit(epochs=1, batch_size=...)`` runs after its checks, the cost recorded once."""
    return train(
        net.params,
        net.activations,
        X,
        Y,
        optimizer=GradientDescent(workloads.LEARNING_RATE),
        plan=Plan.of(X.shape[1], batch_size, None, 1),
        rng=rng,
        ops=net.backend.ops,
    )


def _sklearn_epoch(X: np.ndarray, Y: np.ndarray, batch_size: int) -> Any:
    """``MLPClassifier.partial_fit``: one pass of plain SGD over shuffled mini-batches (rows = examples)."""
    try:
        neural_network = importlib.import_module("sklearn.neural_network")
    except ImportError:
        return None
    clf = neural_network.MLPClassifier(
        hidden_layer_sizes=tuple(DIMS[1:-1]),
        activation=HIDDEN,
        solver="sgd",
        batch_size=batch_size,
        learning_rate_init=workloads.LEARNING_RATE,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        shuffle=True,
        random_state=0,
    )
    rows, labels = np.ascontiguousarray(X.T), Y[0].astype(np.int64)

    def epoch() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(rows, labels, classes=[0, 1])

    return epoch


def _torch_epoch(backend: Backend, X: np.ndarray, Y: np.ndarray, params: dict, batch_size: int) -> Any:
    peer = workloads.torch_device(backend)
    if peer is None:
        return None
    torch, device = peer
    tp = {
        k: torch.tensor(np.asarray(backend.to_numpy(v)), device=device, requires_grad=True)
        for k, v in params.items()
    }
    tX, tY = torch.tensor(X, device=device), torch.tensor(Y, device=device)
    opt = torch.optim.SGD(list(tp.values()), lr=workloads.LEARNING_RATE)
    gen = torch.Generator(device=device).manual_seed(0)
    L, m = len(tp) // 2, X.shape[1]

    def epoch() -> None:
        idx = torch.randperm(m, generator=gen, device=device)
        for start in range(0, m, batch_size):
            cols = idx[start : start + batch_size]
            A = tX[:, cols]
            for l in range(1, L + 1):
                Z = tp[f"W{l}"] @ A + tp[f"b{l}"]
                A = torch.relu(Z) if l < L else Z
            J = torch.nn.functional.binary_cross_entropy_with_logits(A, tY[:, cols])
            opt.zero_grad(set_to_none=True)
            J.backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()

    return epoch


def minibatch_cases(backend: Backend, dtype: str, quick: bool) -> list[workloads.Case]:
    m = 512 if quick else 2048
    Xh, Yh = (a.astype(dtype) for a in workloads.seeded_data(DIMS[0], m, seed=5))
    X, Y = backend.asarray(Xh), backend.asarray(Yh)
    net = Network(DIMS, HIDDEN, init="he", backend=backend, seed=5, dtype=dtype)
    shuffle = backend.rng(0)
    contestants = {"vectorized": lambda: _epoch(net, X, Y, BATCH_SIZE, shuffle)}
    if not backend.is_gpu:
        sk = _sklearn_epoch(Xh, Yh, BATCH_SIZE)
        if sk is not None:
            contestants["sklearn"] = sk
    peer = _torch_epoch(backend, Xh, Yh, net.params, BATCH_SIZE)
    if peer is not None:
        contestants["pytorch"] = peer

    def check() -> None:  # batch_size = m: one epoch is one full-batch step
        a = Network(DIMS, HIDDEN, init="he", backend=backend, seed=6, dtype=dtype)
        b = Network(DIMS, HIDDEN, init="he", backend=backend, seed=6, dtype=dtype)
        _epoch(a, X, Y, m, backend.rng(0))
        train_step(X, Y, b.params, b.activations, workloads.LEARNING_RATE)
        for k, v in a.params.items():
            workloads._close(v, b.params[k], backend, dtype, f"mini-batch epoch {k}")

    size = f"{DIMS} m={m} batch={BATCH_SIZE} ({math.ceil(m / BATCH_SIZE)} steps)"
    info = {"layer_dims": DIMS, "hidden": HIDDEN, "m": m, "batch_size": BATCH_SIZE}
    return [
        workloads.Case("minibatch_epoch", "epoch wide", size, m, contestants, check, 3 if quick else 5, info)
    ]
