"""The one training loop: full batch or mini-batches, any optimizer, L2, dropout, early stopping and
divergence checks. :meth:`dlcore.Network.fit`, the CLI and the benchmarks all call :func:`train`.

One epoch:

    shuffle the columns (backend RNG; not for a single full batch) -> for each mini-batch X{t}, Y{t}:
        A[L] = forward(X{t})                          (with dropout masks D[l] when keep_prob < 1)
        grads = backward(A[L], Y{t}, scale=s)         (+ s lambd / m_t W[l] when l2 > 0)
        optimizer.step(params, grads)                 (in place; s = alpha for gradient descent, whose
                                                       update is then one subtraction, else 1)

What :class:`History` means, on every path: ``costs[i]`` is the cost measured with the parameters after
``iterations[i]`` updates, at the start of each recorded epoch (every ``cost_every`` epochs: the
mean of that epoch's mini-batch costs, summed on the device, which with a full batch is exactly J
before the step), and last the full-data cost after the final update. Only those records bring a
number to the host, so a GPU is never stalled by a per-step sync. A record that is not finite, or
above ``divergence_factor`` (default 1000) times the first record, stops training: the parameters
roll back to the last recorded ones that passed and :class:`TrainingDiverged` is raised.
Randomness, all from ``rng`` in this order: per epoch the shuffle, then that epoch's dropout masks.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlcore import propagation as prop
from dlcore._namespace import namespace
from dlcore.activations import Activation
from dlcore.distributed import DataParallel
from dlcore.early_stopping import EarlyStopping
from dlcore.heads import Head, check_head, head_for
from dlcore.interrupts import between_updates
from dlcore.minibatch import check_batch_size, mini_batches, num_batches
from dlcore.ops import Ops, ops_of
from dlcore.optimizers import GradientDescent, Optimizer
from dlcore.regularization import add_l2_gradients, check_keep_prob, forward_with_dropout, l2_cost
from dlcore.validation import check_callable, check_positive_int

Array = Any
Params = dict[str, Array]


@dataclass
class History:
    """Costs recorded by :func:`train`: ``costs[i]`` is J with the parameters after ``iterations[i]``
    updates (the last entry: after the final update, unless early stopping restored earlier parameters:
    then none is measured, and ``best_epoch`` says which were kept); ``epochs[i]`` is the number of
    epochs done then."""

    iterations: list[int] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    #: the epoch of each record, the validation cost (the head's loss alone: no L2 term, no dropout)
    #: measured after each recorded epoch (val_costs[i]:
    #: the parameters after epochs[i] + 1 epochs; then the final parameters', when their epoch was not
    #: recorded and no early stopping restored others), whether early stopping ended training, and the epochs
    #: done when the restored parameters were made (a fit of that many epochs ends on them)
    epochs: list[int] = field(default_factory=list)
    val_costs: list[float] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    #: the updates made (with early stopping or a divergence, more than the restored parameters had seen)
    updates: int = 0

    def append(self, iteration: int, cost: float, epoch: int | None = None) -> None:
        self.iterations.append(iteration)
        self.costs.append(cost)
        self.epochs.append(iteration if epoch is None else epoch)

    def __len__(self) -> int:
        return len(self.costs)

    def __iter__(self):
        return iter(self.costs)

    def __getitem__(self, i: int) -> float:
        return self.costs[i]


#: the default ``divergence_factor``: a recorded cost above this many times the first recorded one
#: counts as divergence (0.69 -> 690 for a binary classifier); 0 turns the check off
DIVERGENCE_FACTOR = 1000.0


class TrainingDiverged(ArithmeticError):
    """The cost became NaN or inf, or rose above ``divergence_factor`` times its first recorded value;
    the network was rolled back to the last parameters whose recorded cost was fine."""

    def __init__(
        self, message: str, iteration: int, learning_rate: float, history: History, cost: float = math.nan
    ):
        super().__init__(message)
        self.iteration = iteration
        self.learning_rate = learning_rate
        self.history = history
        self.cost = cost

    def __reduce__(self) -> tuple:
        """Pickled with every argument (the default passes the message alone, and unpickling failed: a
        multiprocessing pool whose worker diverged hung, joblib's broke)."""
        return type(self), (str(self), self.iteration, self.learning_rate, self.history, self.cost)


#: a MixedPrecision given where an optimizer goes (it failed at its first step, or stepped another network),
#: and the fix in the core's terms (the scikit-learn wrapper says it in its own)
MIXED_AS_OPTIMIZER_FIX = (
    " (Network.fit(..., precision=MixedPrecision(Adam(0.001))); dlcore.precision.train_mixed for the "
    "functional train)"
)
MIXED_AS_OPTIMIZER = "a MixedPrecision is passed as precision=, not optimizer=" + MIXED_AS_OPTIMIZER_FIX


def check_divergence_factor(factor: Any) -> float:
    """``factor`` as a float: 0 (the check is off) or a finite number > 1; else a ValueError."""
    try:
        value = float(factor)
    except (TypeError, ValueError):
        raise ValueError(f"divergence_factor must be a number (0 = off); got {factor!r}") from None
    if not (value == 0 or (math.isfinite(value) and value > 1)):
        raise ValueError(
            f"divergence_factor must be 0 (off) or a finite number > 1, e.g. 1000; got {factor!r}"
        )
    return value


def check_duration(iterations: Any, epochs: Any) -> tuple[int | None, int | None]:
    """``(iterations, None)`` or ``(None, epochs)``, each an integer >= 1: exactly one of them is given,
    else a ValueError."""
    if iterations is not None and epochs is not None:
        raise ValueError("give epochs or iterations, not both (an iteration is one mini-batch update)")
    if epochs is not None:
        return None, check_positive_int(epochs, "epochs")
    if iterations is None:
        raise ValueError("give epochs or iterations (an iteration is one mini-batch update)")
    return check_positive_int(iterations, "iterations"), None


@dataclass(frozen=True)
class Plan:
    """How long training runs: ``epochs`` passes of ``batches_per_epoch`` updates over m columns,
    stopping after ``max_iterations`` updates when given (the last epoch may end early)."""

    m: int
    batch_size: int
    epochs: int
    max_iterations: int | None

    @classmethod
    def of(cls, m: int, batch_size: int | None, iterations: int | None, epochs: int | None) -> Plan:
        """Given ``epochs``, that many full passes; given ``iterations`` (updates), ceil(iterations / T)
        epochs, the last stopping after update number ``iterations``. ``batch_size=None``: the full batch
        (one larger than m: m). A ValueError for anything else (see :func:`check_duration`)."""
        m = check_positive_int(m, "m")
        bs = check_batch_size(batch_size, m)
        iterations, epochs = check_duration(iterations, epochs)
        if epochs is not None:
            return cls(m, bs, epochs, None)
        return cls(m, bs, math.ceil(iterations / num_batches(m, bs)), iterations)

    @property
    def batches_per_epoch(self) -> int:
        return num_batches(self.m, self.batch_size)

    @property
    def total_iterations(self) -> int:
        return self.max_iterations or self.epochs * self.batches_per_epoch


def format_cost(J: float) -> str:
    """A cost for people: 6 decimals as usual, 6 significant digits once huge (2.6e+11, not 200 digits)."""
    return f"{J:.6f}" if math.isfinite(J) and abs(J) < 1e6 else f"{J:.6g}"


def _diverged(
    J: float,
    epoch: int,
    iteration: int,
    kept: int,
    optimizer: Optimizer,
    history: History,
    why: str = "",
    reset: bool = False,
):
    where = f"iteration {iteration}" if epoch == iteration else f"epoch {epoch} (by iteration {iteration})"
    # with decay, the rate the user gave (the one to lower): the current one is already the next epoch's
    lr = optimizer.learning_rate0 if optimizer.decay_rate else optimizer.learning_rate
    decay = f" (decay_rate={optimizer.decay_rate:g})" if optimizer.decay_rate else ""
    state = f" and the {optimizer.name} optimizer's state was reset" if reset else ""
    if iteration == 0:  # no learning rate played a part yet: a lower one cannot help
        message = (
            f"training cannot start: the cost is {format_cost(J)} before any update, with the initial "
            "parameters: X, Y or the network's values overflow the compute dtype; standardize X (and "
            "regression targets) or compute in a wider dtype"
        )
    else:
        message = (
            f"training diverged: the cost became {format_cost(J)}{why} at {where} with learning_rate="
            f"{lr:g}{decay}; the parameters from iteration {kept} were kept{state}. "
            + optimizer.divergence_advice(lr)
        )
    return TrainingDiverged(
        message,
        iteration,
        lr,
        history,
        J,
    )


def _outside_dlcore() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller name the first line outside dlcore:
    the user's fit, DLClassifier.fit or dlcore.train call, whichever path led there."""
    frame, level = sys._getframe(2), 2  # the frame of the function calling warnings.warn is level 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "dlcore":
        frame, level = frame.f_back, level + 1
    return level


def _check_validation(
    validation: Any, params: Params, activations: Sequence[Activation], W1: Array, low: bool
) -> None:
    """A ValueError unless ``validation`` is a pair (X_val, Y_val) of at least one example that the
    network could train on as it does on (X, Y)."""
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError(f"validation must be a pair (X_val, Y_val); got {type(validation).__name__}")
    X_val, Y_val = validation
    try:
        prop.check_network_shapes(X_val, params, activations)
        n_out = params[f"W{prop.num_layers(params)}"].shape[0]
        prop.check_targets_for(Y_val, (n_out, X_val.shape[1]), W1, "W1", activations, same_dtype=not low)
    except ValueError as exc:
        raise ValueError(f"validation=(X_val, Y_val), as X and Y: {exc}") from None
    if not X_val.shape[1]:
        raise ValueError("validation=(X_val, Y_val) holds no examples (m = 0): give some, or no validation")


def train(
    params: Params,
    activations: Sequence[Activation],
    X: Array,
    Y: Array,
    *,
    optimizer: Optimizer,
    plan: Plan,
    cost_every: int = 1,
    l2: float = 0.0,
    keep_prob: float = 1.0,
    validation: tuple[Array, Array] | None = None,
    patience: int | None = None,
    callback: Callable[[int, float], None] | None = None,
    rng: Any = None,
    head: Head | None = None,
    ops: Ops | None = None,
    divergence_factor: float = DIVERGENCE_FACTOR,
    progress: Callable[[int], None] | None = None,
    verbose: bool = False,
    parallel: DataParallel | None = None,
) -> History:
    """Train ``params`` in place on X: (n_x, m), Y: (n[L], m) (checked already); returns the History.

    Stops after ``plan``'s epochs or updates, or when the validation cost has not improved for
    ``patience`` recorded epochs (the best parameters are then restored; a run that ends without stopping
    keeps the best of its checked parameters and its final ones). ``cost_every`` counts epochs
    (with a full batch an epoch is one update). ``rng`` shuffles mini-batches (None: in order) and draws
    dropout masks (needed for ``keep_prob`` < 1).
    A recorded cost that is NaN or inf, or above ``divergence_factor`` times the first recorded cost
    (0: no such check), rolls the parameters back and raises :class:`TrainingDiverged`.
    The shapes are checked once here (ValueError), not per step.

    ``progress(iteration)`` runs after every update with the number of updates done: it is handed a
    count, never a cost, so it adds no host sync. Ctrl-C and a SIGTERM with a Python handler act there,
    once the update under way is done (:func:`~dlcore.interrupts.between_updates`, in the main thread);
    the KeyboardInterrupt carries ``history`` (``history.updates``: the updates the parameters hold). A
    second signal before that update ends acts at once: its exception has ``mid_update = True`` when it
    landed while the parameters were being written (some took the update, others not).
    ``verbose=True`` reports to the console with :class:`ConsoleProgress` (a tqdm bar on a terminal,
    plain lines every few seconds otherwise).

    ``parallel`` (a :class:`~dlcore.distributed.DataParallel`): this process is one rank of
    data-parallel training; X and Y are the whole data (the same on every rank), each rank computes on
    its columns of each batch and the gradients and costs are summed over the ranks (see
    :mod:`dlcore.distributed`). The parameters must already be equal on every rank.
    """
    check_callable(callback, "callback")  # before they are wrapped (the reporter's chain, the signals')
    check_callable(progress, "progress")
    reporter = None
    if verbose:
        step = cost_every * plan.batches_per_epoch  # updates between two recorded costs
        every = step * max(1, plan.total_iterations // (10 * step))  # about 10 cost lines
        reporter = ConsoleProgress(plan.total_iterations, every, steps_per_epoch=plan.batches_per_epoch)
        callback, progress = _chain(callback, reporter), _chain(progress, reporter.update)
    closed = contextlib.closing(reporter) if reporter is not None else contextlib.nullcontext()
    # a signal acts between two updates (data-parallel: DataParallel stops every rank after the same one)
    # the activations as given: a callback that changes the network's list mid-fit reached the recorded
    # steps on numpy only (the replay kept the old ones), so each backend trained something else
    activations = tuple(activations)
    deferred = between_updates(progress) if parallel is None else parallel.interrupts(progress)
    history = History()
    with closed, _described(history), deferred as progress:
        if not optimizer.prepared_for(params):
            raise ValueError(MIXED_AS_OPTIMIZER)
        optimizer.check_state(params)  # once per fit: its steps check a new dict only (by id, reusable)
        prop.check_network_shapes(X, params, activations)
        n_out = params[f"W{prop.num_layers(params)}"].shape[0]
        W1 = params["W1"]  # mixed precision trains float16 / bfloat16 copies on float32 targets
        low = namespace(W1).finfo(W1.dtype).bits < 32
        prop.check_targets_for(Y, (n_out, X.shape[1]), W1, "W1", activations, same_dtype=not low)
        if plan.m != X.shape[1]:  # its batches would cover other columns than X has
            raise ValueError(
                f"plan is for m = {plan.m} examples but X has {X.shape[1]}: make it with Plan.of(m, ...)"
            )
        factor = check_divergence_factor(divergence_factor)
        cost_every = check_positive_int(cost_every, "cost_every")
        keep_prob = check_keep_prob(keep_prob)
        if keep_prob < 1.0 and rng is None:
            raise ValueError("dropout (keep_prob < 1) draws its masks from rng: pass rng=backend.rng(seed)")
        if patience is not None and validation is None:
            raise ValueError(
                "patience stops on the validation cost: pass validation=(X_val, Y_val), or no patience"
            )
        if validation is not None:  # as X and Y: else a backend's own error at the first record, or NaN
            _check_validation(validation, params, activations, W1, low)
        ops = ops or ops_of(X)
        check_head(head)
        head = head or head_for(activations[-1])
        stopper = EarlyStopping(patience, snapshot=optimizer.snapshot) if patience else None
        single = (
            plan.batch_size >= plan.m
        )  # one batch per epoch: its cost is J itself, checked before the step
        good: list[Any] = [None, 0]  # the last recorded parameters whose cost was finite, and their iteration
        validated = -1  # the update after which the validation cost was last measured

        def check(J_device: Any, start: int, epoch: int, candidate: Params | None, at: int) -> None:
            """Bring J to the host (at update ``at``); roll back and raise if not finite, else record it."""
            J = float(J_device)
            first = history.costs[0] if history.costs else J
            runaway = factor and first > 0 and J > factor * first
            if not math.isfinite(J) or runaway:
                target, kept = (good[0], good[1]) if good[0] is not None else (candidate, start)
                if target is not None:
                    optimizer.restore(params, target)
                reset = optimizer.reset_state()  # its moments hold what blew up: a retry starts afresh
                history.updates = at  # the updates made, as documented (it stayed 0); kept: the message's
                why = f", more than {factor:g} times its first value {first:.6g}," if runaway else ""
                raise _diverged(J, epoch, at, kept, optimizer, history, why, reset)
            history.append(start, J, epoch)
            say_nan_validation()
            if callback is not None:
                callback(start, J)
            good[:] = candidate, start

        def forward_and_cost(
            Xb: Array, Yb: Array, record: bool, columns: tuple[int, int, int] | None = None
        ) -> tuple[Any, Any, Any, Any]:
            """A[L], the caches, the dropout masks and (when recording) the batch's cost J_b
            (data-parallel: this rank's columns ``columns``, its cost without L2)."""
            if keep_prob < 1.0:
                AL, caches, masks = forward_with_dropout(
                    Xb, params, activations, keep_prob, rng, ops, columns
                )
            else:
                (AL, caches), masks = prop._forward(Xb, params, activations, ops=ops), None
            J_b = None
            if record:
                J_b = prop._cost(caches, Yb, activations, head, ops)
                if l2 and parallel is None:
                    J_b = J_b + l2_cost(params, l2, Xb.shape[1])
            return AL, caches, masks, J_b

        #: the parameters are being written: a signal acting now (a second one, at once) leaves some
        #: updated and others not
        writing = [False]

        def update(grads: Params, m: int, scale: float) -> None:
            """L2's gradient (of a batch of m columns) added to ``grads``, then the optimizer's step."""
            if l2:
                add_l2_gradients(grads, params, l2, m, scale)
            writing[0] = True
            optimizer.step(params, grads, ops, scale)
            writing[0] = False

        def backward_and_update(AL: Array, Yb: Array, caches: Any, masks: Any, scale: float) -> None:
            grads = prop._backward(AL, Yb, caches, activations, masks, scale, ops, head)
            update(grads, Yb.shape[1], scale)

        # captured (ops.capture): a backend may reuse each half's buffers from one batch to the next; the
        # caches of one forward live until the next forward, so the check (and the callback) runs between
        forward_and_cost, backward_and_update = (
            ops.capture(forward_and_cost),
            ops.capture(backward_and_update),
        )

        def whole_step(Xb: Array, Yb: Array, params: Params, scale: float, ops: Ops) -> None:
            """The two halves in one call: the gradient-descent step between two cost checks, captured
            with ``replay=True`` (a backend may record it once and replay its array work while the
            arguments stay the same: NumpyOps; X{t}, Y{t} are ``inputs`` it may copy into buffers of its
            own), as :func:`prop.train_step` is. Made of the captured halves,
            it computes in their buffers (NumpyOps): a plain fit holds one step's arrays, not two."""
            AL, caches, masks, _ = forward_and_cost(Xb, Yb, False)
            backward_and_update(AL, Yb, caches, masks, scale)

        # the plain course loop (gradient descent; no dropout, L2, decay or ranks): the steps between two
        # cost checks run as one replayable call each, mini-batches as inputs a backend may copy into
        # buffers of its own (so that each batch of one shape replays: with two full batches an epoch or
        # more, else the shapes alternate and nothing would); a recorded step keeps the two halves, with
        # the check (and the callback) between them, before its update
        plain = (
            (single or plan.m // plan.batch_size >= 2)
            and keep_prob == 1.0
            and not l2
            and parallel is None
            and type(optimizer) is GradientDescent
            and not optimizer.decay_rate
        )
        whole = ops.capture(whole_step, replay=True, inputs=() if single else (0, 1)) if plain else None

        nan_validation: list[int] = []  # the update after which a validation cost was NaN, then -1: said

        def full_cost(Xa: Array, Ya: Array) -> Array:
            """J of the current parameters on all of (Xa, Ya), without dropout or L2 (0-D, on the device);
            data-parallel: each rank's columns, weighted by their share and summed over the ranks."""
            w = 1.0
            if parallel is not None:
                Xa, Ya, w, _ = parallel.local(Xa, Ya)
                if Xa.shape[1] == 0:
                    return parallel.sum(zero_cost())
            _, caches = prop._forward(Xa, params, activations, ops=ops)
            J = prop._cost(caches, Ya, activations, head, ops)
            return J if parallel is None else parallel.sum(J * w)

        def validation_cost() -> float:
            """J on the validation pair as a float. A NaN one is said (once) after the next training cost
            check passes: right after a step that diverged, the rollback's TrainingDiverged says it all."""
            J_val = float(full_cost(*validation))
            if math.isnan(J_val) and not nan_validation:
                nan_validation.append(iteration)
            return J_val

        def say_nan_validation(diverged: bool = False) -> None:
            """The NaN validation cost's warning, once: X_val's values, or (``diverged``: the training cost
            after it was not finite either, and early stopping restored the best check) a divergence."""
            if len(nan_validation) != 1:
                return
            at = nan_validation[0]
            nan_validation.append(-1)  # said
            if diverged:
                why = (
                    "training diverged after the last cost check (the validation cost became nan after "
                    f"update {at}); early stopping restored the parameters of its best check: lower the "
                    "learning rate"
                )
            else:
                why = (
                    f"the validation cost is nan after update {at} while the training cost is finite: X_val "
                    "holds values the network cannot compute with (standardize it as the training X is)"
                )
            warnings.warn(why, UserWarning, stacklevel=_outside_dlcore())

        def zero_cost() -> Array:
            """The cost share of a rank whose slice is empty: 0, on the device, in the parameters' dtype."""
            return ops.xp.zeros((), dtype=params["W1"].dtype, device=params["W1"].device)

        local_backward = ops.capture(prop._backward) if parallel is not None else None

        def parallel_step(Xb: Array, Yb: Array, record: bool, scale: float, check_first: tuple | None) -> Any:
            """One data-parallel update (see :mod:`dlcore.distributed`): this rank's columns forward and
            backward, one allreduce, then the same update on every rank. Returns the global batch cost
            (with L2) when recording, after ``check(J, *check_first)`` when given (the single-batch check)."""
            mb = Xb.shape[1]
            Xl, Yl, w, (lo, hi) = parallel.local(Xb, Yb)
            J_r = None
            if hi > lo:
                AL, caches, masks, J_r = forward_and_cost(Xl, Yl, record, (mb, lo, hi))
                grads = local_backward(AL, Yl, caches, activations, masks, scale * w, ops, head)
                del AL, caches, masks
            else:  # an empty slice (a last batch narrower than the ranks): nothing to add, same draws
                if keep_prob < 1.0:
                    for l in range(1, len(activations)):
                        ops.dropout_mask((params[f"W{l}"].shape[0], mb), keep_prob, rng, params["W1"].dtype)
                grads = parallel.zero_gradients(params)
                if record:
                    J_r = zero_cost()
            grads, J = parallel.allreduce_gradients(grads, None if J_r is None else J_r * w)
            # agreed: every rank stops after the same update. Device flags (NCCL) are read here only
            # when the full-batch check syncs anyway; mini-batch epochs read them once, at their end
            if parallel.stop_requested(read=check_first is not None):
                raise parallel.stop_error()
            if J is not None and l2:
                J = J + l2_cost(params, l2, mb)
            if check_first is not None:
                check(J, *check_first)
            update(grads, mb, scale)
            return J

        iteration, epoch, updated = 0, 0, False  # updated: the last update is done
        try:
            for epoch in range(plan.epochs):
                optimizer.start_epoch(epoch)
                scale = optimizer.gradient_scale
                record = epoch % cost_every == 0
                total, seen, start = 0.0, 0, iteration
                candidate = optimizer.snapshot(params) if record else None  # the rollback target
                for Xb, Yb in mini_batches(X, Y, plan.batch_size, rng):
                    mb = Xb.shape[1]
                    if parallel is not None:
                        first = (start, epoch, candidate, start) if record and single else None
                        J_b = parallel_step(Xb, Yb, record, scale, first)
                        if record and not single:
                            total, seen = total + J_b * mb, seen + mb
                    elif whole is not None and not record:
                        t = optimizer.t
                        writing[0] = True  # a replay writes where it writes: the whole step counts
                        whole(Xb, Yb, params, scale, ops)
                        writing[0] = False
                        optimizer.t = t + 1  # a replayed step runs no Python (no step count): kept here
                    else:
                        AL, caches, masks, J_b = forward_and_cost(Xb, Yb, record)
                        if record:  # summed on the device; one host transfer per recorded epoch
                            if single:
                                check(J_b, start, epoch, candidate, start)
                            else:
                                total, seen = total + J_b * mb, seen + mb
                        backward_and_update(AL, Yb, caches, masks, scale)
                        del AL, caches, masks
                    iteration += 1
                    if progress is not None:  # a count, not a cost: no host sync
                        progress(iteration)  # where a Ctrl-C or SIGTERM received meanwhile acts
                    if plan.max_iterations is not None and iteration >= plan.max_iterations:
                        break
                if record and not single:
                    check(total / seen, start, epoch, candidate, iteration)
                if parallel is not None and not single and parallel.stop_requested():  # once per epoch
                    raise parallel.stop_error()
                if record and validation is not None:
                    J_val = validation_cost()
                    history.val_costs.append(J_val)
                    validated = iteration
                    if stopper is not None and stopper.check(J_val, params):
                        history.stopped_early = True
                        break
                if plan.max_iterations is not None and iteration >= plan.max_iterations:
                    break
            whole = None  # its recording's buffers: not held through the last cost on all of X
            history.updates, updated = iteration, True
            optimizer.advance_schedule(epoch + 1)  # an optimizer used again goes on with its decay
            if parallel is not None and parallel.stop_requested():  # device flags after unread full batches
                raise parallel.stop_error()
            unchecked = validated != iteration and not history.stopped_early  # updates since the last check
            if stopper is not None and validated == iteration:
                stopper.keeps_last_check()  # the final parameters, when they were the best checked
            if stopper is not None and stopper.best_params is not None and unchecked:
                J_val = validation_cost()
                if stopper.keeps_final(J_val):  # they did better: kept, and no restore
                    history.val_costs.append(J_val)  # beside the final cost, recorded below
            elif validation is not None and unchecked:  # the final parameters' too (no check was finite)
                history.val_costs.append(validation_cost())
            if stopper is not None and stopper.best_params is not None:  # restored: no final cost
                # a NaN check after the last training cost check: the final training cost says which it was
                late = len(nan_validation) == 1 and nan_validation[0] > good[1]
                diverged = late and not math.isfinite(float(full_cost(X, Y)))
                optimizer.restore(params, stopper.best_params)
                history.best_epoch = history.epochs[stopper.best_index] + 1  # measured after that epoch
                say_nan_validation(diverged)
                return history
            # the cost after the last update, on all of X (without dropout)
            J_final = full_cost(X, Y)
            if l2:
                J_final = J_final + recorded_l2_cost(params, l2, plan)
            check(J_final, iteration, epoch + 1, None, iteration)
        except TrainingDiverged:  # the same on every rank: no one is left waiting
            raise
        except KeyboardInterrupt as exc:  # the same on every rank, after a whole update (Ctrl-C, SIGTERM)
            exc.mid_update = writing[0]  # a second signal acted at once, in the middle of the writes
            if not updated:  # the epochs done so far (one stopped after its last update counts: it was
                optimizer.advance_schedule(iteration // plan.batches_per_epoch)  # left one epoch behind)
            history.updates = iteration
            raise
        except BaseException as exc:
            if parallel is not None:
                parallel.abort_on_error(exc)
            raise
        return history


def recorded_l2_cost(params: Params, l2: float, plan: Plan) -> Array:
    """L2's term of a cost on all m columns, as an epoch's record carries it: each of its T batches adds
    lambda / (2 m_b) ||W||^2 weighted by m_b / m, T lambda / (2 m) ||W||^2 in all (the final cost once
    added it a single time, and fell by (T - 1) lambda / (2 m) ||W||^2 below the others)."""
    return l2_cost(params, l2 * plan.batches_per_epoch, plan.m)


@contextlib.contextmanager
def _described(history: History) -> Iterator[None]:
    """A KeyboardInterrupt (Ctrl-C, SIGTERM) leaving training carries ``history``: what was recorded and
    the updates the parameters hold, also for a signal held until the block ended (after the last update)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        exc.history = history
        raise


def _chain(first: Callable | None, second: Callable) -> Callable:
    """Call ``first`` (if any) then ``second`` with the same arguments."""
    if first is None:
        return second

    def both(*args: Any) -> None:
        first(*args)
        second(*args)

    return both


def _tqdm(file: Any) -> Any:
    """tqdm's class when ``file`` is a terminal and tqdm (the ``progress`` extra) is installed, else None."""
    isatty = getattr(file, "isatty", None)
    if not (isatty and isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ConsoleProgress:
    """Feedback while :func:`train` runs: pass it as ``callback`` (the recorded costs) and its
    :meth:`update` as ``progress`` (every update, counted: no host sync).

    On a terminal with tqdm installed: a bar that advances per mini-batch with rate and ETA, and a cost
    line every ``every`` updates. Otherwise (a pipe, a log file): plain lines, a cost line every
    ``every`` updates and, when none came for ``interval`` seconds, a line with the rate and the ETA.
    ``quiet`` prints nothing. ``steps_per_epoch`` (mini-batches) names the epoch in the cost lines.
    """

    def __init__(
        self,
        total: int,
        every: int | None = None,
        *,
        quiet: bool = False,
        steps_per_epoch: int | None = None,
        interval: float = 3.0,
        file: Any = None,
        out: Any = None,
    ) -> None:
        self.total, self.quiet, self.interval = total, quiet, interval
        self.every = every or max(1, total // 10)
        self.steps_per_epoch = steps_per_epoch if steps_per_epoch and steps_per_epoch > 1 else None
        self.file = file or sys.stderr  # bar and rate lines
        self.out = out or sys.stdout  # cost lines
        self.last = 0  # the last update whose cost was recorded
        self.done = 0  # updates done
        self.start = self.printed = time.monotonic()
        tqdm = None if quiet else _tqdm(self.file)
        self.bar = (
            tqdm(total=total, unit="it", file=self.file, leave=False, mininterval=0.2) if tqdm else None
        )

    def update(self, iteration: int) -> None:
        """After update number ``iteration``: advance the bar, or print a rate line when due."""
        if self.bar is not None:
            self.bar.update(iteration - self.done)
        self.done = iteration
        if self.bar is None and not self.quiet and iteration < self.total:
            now = time.monotonic()
            if now - self.printed >= self.interval:
                self.printed = now
                rate = iteration / max(now - self.start, 1e-9)
                eta = (self.total - iteration) / rate if rate > 0 else 0.0
                print(
                    f"iteration {iteration}/{self.total} ({100 * iteration / self.total:.0f}%), "
                    f"{rate:,.0f} it/s, ETA {_duration(eta)}",
                    file=self.out,
                    flush=True,
                )

    def __call__(self, i: int, J: float) -> None:
        """A recorded cost J after ``i`` updates: a cost line every ``every`` updates and at the end."""
        self.last = i
        if self.bar is not None:
            self.bar.set_postfix(cost=f"{J:.4f}", refresh=False)
        if self.quiet or not (i % self.every == 0 or i >= self.total):
            return
        line = f"iteration {i:>6}: cost {format_cost(J)}"
        if self.steps_per_epoch:  # the cost measured from update i on: epochs done by then
            line = f"epoch {math.ceil(i / self.steps_per_epoch):>4}, {line}"
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)
            self.printed = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
