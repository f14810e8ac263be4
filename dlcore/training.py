"""The general training loop: mini-batches, any optimizer, L2, dropout, early stopping.

:meth:`dlcore.Network.fit` uses it whenever one of those is asked for; plain full-batch gradient
descent keeps its own lean loop. One epoch:

    shuffle the columns (backend RNG) -> for each mini-batch X{t}, Y{t}:
        A[L] = forward(X{t})            (with dropout masks D[l] when keep_prob < 1)
        grads = backward(A[L], Y{t})    (+ lambd / m_t W[l] when l2 > 0)
        optimizer.step(params, grads)   (in place)

Every ``cost_every`` epochs (and after the last) the epoch's mean mini-batch cost is brought to the
host (it was summed on the device), checked for NaN/inf, and the validation cost is measured.
Randomness, all from ``backend.rng(seed)`` in this order: the validation split, then per epoch the
shuffle followed by that epoch's dropout masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlcore import propagation as prop
from dlcore.early_stopping import EarlyStopping
from dlcore.minibatch import mini_batches
from dlcore.optimizers import Optimizer
from dlcore.regularization import add_l2_gradients, forward_with_dropout, l2_cost

Array = Any


def run_epochs(
    net: Any,
    X: Array,
    Y: Array,
    *,
    optimizer: Optimizer,
    epochs: int,
    max_iterations: int | None,
    batch_size: int,
    l2: float,
    keep_prob: float,
    validation: tuple[Array, Array] | None,
    patience: int | None,
    cost_every: int,
    callback: Callable[[int, float], None] | None,
    rng: Any,
) -> Any:
    """Train ``net.params`` in place on X: (n_x, m), Y: (n[L], m); returns the History.

    Stops after ``epochs`` epochs, after ``max_iterations`` updates when given, or when the validation
    cost has not improved for ``patience`` checks (the best parameters are then restored).
    """
    from dlcore.model import History, TrainingDiverged  # the model module imports this one

    acts, params = net.activations, net.params
    history = History()
    stopper = EarlyStopping(patience) if patience else None
    # rollback target: the parameters at the start of the last recorded epoch whose cost was finite
    iteration, last_good, good_iteration = 0, None, 0
    for epoch in range(epochs):
        optimizer.start_epoch(epoch)
        record = epoch % cost_every == 0 or epoch == epochs - 1
        total, seen = 0.0, 0
        if record:  # the cost of these parameters is part of this epoch's J (all of it with full batches)
            candidate, candidate_iteration = prop.copy_params(params), iteration
        for Xb, Yb in mini_batches(X, Y, batch_size, rng):
            mb = Xb.shape[1]
            if keep_prob < 1.0:
                AL, caches, masks = forward_with_dropout(Xb, params, acts, keep_prob, rng)
            else:
                (AL, caches), masks = prop.forward(Xb, params, acts), None
            if record:  # summed on the device; one host transfer per recorded epoch
                J_b = prop.cost(caches, Yb, acts)
                if l2:
                    J_b = J_b + l2_cost(params, l2, mb)
                total, seen = total + J_b * mb, seen + mb
            grads = prop.backward(AL, Yb, caches, acts, masks)
            if l2:
                add_l2_gradients(grads, params, l2, mb)
            optimizer.step(params, grads)
            iteration += 1
            if max_iterations is not None and iteration >= max_iterations:
                break  # the last epoch always records (epochs = ceil(max_iterations / T))
        if not record:
            continue
        J = float(total) / seen
        if not math.isfinite(J):
            if last_good is None:
                last_good, good_iteration = candidate, candidate_iteration
            net.params = last_good
            raise TrainingDiverged(
                f"training diverged: the cost became {J} in epoch {epoch} (iteration {iteration}) with "
                f"{optimizer!r}; the parameters from iteration {good_iteration} were kept. "
                "Lower the learning rate.",
                iteration,
                optimizer.learning_rate,
                history,
            )
        history.append(iteration, J)
        history.epochs.append(epoch)
        if callback is not None:
            callback(iteration, J)
        last_good, good_iteration = candidate, candidate_iteration
        if validation is not None:
            Xv, Yv = validation
            _, val_caches = prop.forward(Xv, params, acts)
            J_val = float(prop.cost(val_caches, Yv, acts))
            history.val_costs.append(J_val)
            if stopper is not None and stopper.check(J_val, params):
                history.stopped_early = True
                break
        if max_iterations is not None and iteration >= max_iterations:
            break
    if stopper is not None and stopper.best_params is not None:
        net.params = stopper.best_params
        history.best_epoch = history.epochs[stopper.best_index]
    return history
