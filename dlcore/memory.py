"""Memory estimates made before allocating: a network too large for the device is refused in one sentence
(with the estimate and the memory available) instead of dying in a MemoryError half-way.

The estimates count the big arrays only, in the network's dtype: the parameters (W[l], b[l]); for training
also their gradients, a rollback copy and the optimizer's state; and the activations Z[l], A[l] of a
forward pass over all m examples (the final cost) plus backpropagation's temporaries for one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: optimizer state arrays per parameter
STATE_SLOTS = {"gd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def parameter_count(layer_dims: Sequence[int]) -> int:
    """Entries of W[1..L] and b[1..L]."""
    return sum(n * n_prev + n for n_prev, n in zip(layer_dims[:-1], layer_dims[1:], strict=False))


def check_fits(need: int, backend: Any, what: str, fix: str, where: str | None = None) -> None:
    """A ValueError when ``need`` bytes exceed what ``backend`` says is available (no check if unknown);
    ``where`` names the memory in the message (default: the backend and its device)."""
    available = backend.available_memory()
    if available is not None and need > available:
        where = where or f"{backend.name} ({backend.device_name()})"
        raise ValueError(
            f"{what} needs about {_gib(need)}, more than the {_gib(available)} of memory available on "
            f"{where}; {fix}"
        )


def check_network_fits(layer_dims: Sequence[int], itemsize: int, backend: Any) -> None:
    """Refuse (ValueError) a network whose parameters alone cannot be allocated: the host draws them in
    float64 before moving them, so count 8 bytes more per entry."""
    need = parameter_count(layer_dims) * (itemsize + 8)
    check_fits(need, backend, f"the network {list(layer_dims)}", "use fewer or smaller layers")


def training_bytes(layer_dims: Sequence[int], m: int, batch: int, itemsize: int, slots: int) -> int:
    """An estimate of the bytes :func:`dlcore.training.train` allocates beyond X and Y."""
    params = parameter_count(layer_dims) * (3 + slots)  # parameters, gradients, rollback copy, state
    hidden = layer_dims[1:]
    activations = 2 * sum(hidden) * m + 2 * max(hidden) * batch  # Z, A over all m; dA, dZ of one batch
    return (params + activations) * itemsize


def check_training_fits(
    layer_dims: Sequence[int], m: int, batch: int, itemsize: int, slots: int, backend: Any
) -> None:
    """Refuse (ValueError) training that cannot fit in the backend's memory, before it allocates."""
    need = training_bytes(layer_dims, m, batch, itemsize, slots)
    check_fits(
        need,
        backend,
        f"training the network {list(layer_dims)} on m = {m} examples",
        "use fewer or smaller layers, or fewer examples",
    )
