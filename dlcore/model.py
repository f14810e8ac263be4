"""The public model object: :class:`Network`, an L-layer network with an output head.

It owns a backend, a parameter dict, a list of activations and the head the output activation implies
(binary or categorical cross-entropy, or mean squared error for regression), and calls the functional
layer (:mod:`dlcore.propagation`) and the one training loop (:mod:`dlcore.training`) for everything.

>>> net = Network([2, 4, 1], hidden_activation="tanh", init="small", backend="numpy", seed=1)
>>> history = net.fit(X, Y, learning_rate=1.2, iterations=10_000)   # X: (2, m), Y: (1, m)
>>> net.accuracy(X, Y)
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from dlcore import persistence
from dlcore import propagation as prop
from dlcore.activations import Activation, get_activation
from dlcore.backends import Backend, get_backend
from dlcore.backends.comm import as_communicator
from dlcore.data import Normalization
from dlcore.distributed import DataParallel
from dlcore.heads import head_for
from dlcore.initializers import check_layer_dims, initialize_parameters
from dlcore.memory import STATE_SLOTS, check_network_fits, check_training_fits
from dlcore.minibatch import train_validation_split
from dlcore.optimizers import Optimizer, get_optimizer
from dlcore.precision import MixedPrecision, train_mixed
from dlcore.regularization import check_keep_prob
from dlcore.training import (
    DIVERGENCE_FACTOR,
    MIXED_AS_OPTIMIZER,
    History,
    Plan,
    TrainingDiverged,
    check_divergence_factor,
    check_duration,
    train,
)
from dlcore.validation import (
    check_callable,
    check_features,
    check_learning_rate,
    check_number,
    check_positive_int,
    check_seed,
    check_targets,
    count_non_finite,
)

Array = Any
OUTPUTS = {"sigmoid": "binary cross-entropy", "softmax": "several classes", "linear": "regression"}

__all__ = ["History", "Network", "TrainingDiverged"]


class Network:
    """A fully connected network: a binary or multi-class classifier, or a regressor.

    Args:
        layer_dims: ``[n_x, n[1], ..., n[L]]``; ``[n_x, 1]`` is logistic regression.
        hidden_activation: g for layers 1 .. L-1 (``"relu"``, ``"tanh"``, ``"sigmoid"``,
            ``"leaky_relu"``, ``"leaky_relu:0.2"``, ``"linear"``).
        output_activation: g[L], which picks the head: ``"sigmoid"`` for binary cross-entropy,
            ``"softmax"`` for C classes (``layer_dims[-1] = C``, categorical cross-entropy; Y as integer
            labels (1, m) or one-hot (C, m)), ``"linear"`` for regression (mean squared error, Y (n[L], m)).
        activations: one activation per layer, overriding the two above.
        init: ``"small"``, ``"he"``, ``"xavier"``, ``"glorot"`` or ``"zeros"``.
        backend: a backend name (``"auto"``, ``"numpy"``, ``"cupy"``, ``"torch"``,
            ``"array_api_strict"``, each with an optional ``":device"``) or a
            :class:`dlcore.backends.Backend`; ``None`` reads ``$DLCORE_BACKEND`` (default ``auto``).
        seed: seeds the initial weights; the same seed gives identical weights on every backend.
        dtype: ``"float64"`` or ``"float32"``.
    """

    _normalization: Any = None
    _target_normalization: Any = None
    #: fits run on the network's own seed: each later one draws its shuffles and masks from a new stream
    _fits: int = 0
    #: free-form metadata saved with the model (training settings, class names); set by :meth:`load`, and
    #: written again by :meth:`save`
    info: dict | None = None

    def __init__(
        self,
        layer_dims: Sequence[int],
        hidden_activation: str | Activation = "relu",
        output_activation: str | Activation = "sigmoid",
        *,
        activations: Sequence[str | Activation] | None = None,
        init: str = "he",
        backend: str | Backend | None = None,
        seed: int | None = 1,
        dtype: str = "float64",
    ) -> None:
        self.layer_dims = check_layer_dims(layer_dims)
        L = len(self.layer_dims) - 1
        if activations is None:
            if isinstance(hidden_activation, (list, tuple)):
                raise ValueError(
                    "hidden_activation is one activation for every hidden layer; give one per layer as "
                    f"activations={list(hidden_activation)!r}"
                )
            activations = [hidden_activation] * (L - 1) + [output_activation]
        if len(activations) != L:
            raise ValueError(f"activations needs one entry per layer ({L}); got {len(activations)}")
        self.activations = [get_activation(a) for a in activations]
        if self.activations[-1].name not in OUTPUTS:
            raise ValueError(
                "output_activation must be 'sigmoid' for binary cross-entropy ('softmax' for several "
                f"classes, 'linear' for regression); got {self.activations[-1].name!r}"
            )
        hidden_softmax = [l for l, g in enumerate(self.activations[:-1], start=1) if g.name == "softmax"]
        if hidden_softmax:
            raise ValueError(
                f"softmax is an output activation only (with categorical cross-entropy); layer "
                f"{hidden_softmax[0]} is hidden: choose 'relu', 'tanh', 'sigmoid', 'leaky_relu' or 'linear'"
            )
        self.head = head_for(self.activations[-1])
        if self.activations[-1].name == "sigmoid" and self.layer_dims[-1] != 1:
            raise ValueError(
                f"a sigmoid output is one unit (binary cross-entropy); got layer_dims[-1] = "
                f"{self.layer_dims[-1]}: use output_activation='softmax' for {self.layer_dims[-1]} classes"
            )
        if self.activations[-1].name == "softmax" and self.layer_dims[-1] < 2:
            raise ValueError(
                f"softmax needs at least 2 output units (one per class); got layer_dims[-1] = "
                f"{self.layer_dims[-1]}: use a sigmoid output for two classes, or n_classes units"
            )
        self.backend = get_backend(backend)
        self.dtype = self.backend.float_dtype(dtype)
        self.init = init
        self.seed = check_seed(seed)
        check_network_fits(self.layer_dims, self.itemsize, self.backend)
        with self.backend.activate():
            self.params = initialize_parameters(self.layer_dims, init, self.backend, seed, self.dtype)

    @classmethod
    def for_data(
        cls,
        X: Any,
        Y: Any,
        layer_dims: Sequence[int] | None = None,
        hidden_activation: str | Activation = "tanh",
        *,
        task: str | None = None,
        **options: Any,
    ) -> Network:
        """A network shaped for X: (n_x, m) and Y: its input size, output head and output size.

        ``task``: ``"binary"`` (Y 0/1, one sigmoid unit), ``"multiclass"`` (integer labels 0 .. C-1 or
        one-hot (C, m): C softmax units) or ``"regression"`` (real Y (n_y, m): n_y linear units); by
        default inferred from Y (0/1 -> binary, other non-negative integers -> multiclass, anything else
        -> regression). ``layer_dims`` default: ``[n_x, 4, n_out]`` (``[n_x, 64, C]`` for multiclass);
        given, its ends must match the data. ``options`` go to the constructor (``init``, ``backend``,
        ``seed``, ``dtype``).
        """
        backend = get_backend(options.pop("backend", None))
        X, Y = backend.asarray(X), backend.asarray(Y)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_x, m), one example per column; got shape {tuple(X.shape)}")
        if Y.ndim == 2 and Y.shape[1] != X.shape[1]:  # else a (m, 1) Y made a network of m outputs
            m, hint = X.shape[1], ""
            if Y.shape[0] == m:
                hint = ": Y holds one example per row, pass Y.T"
            elif X.shape[0] == Y.shape[1]:
                hint = ": X holds one example per row, pass X.T"
            raise ValueError(f"X has m = {m} examples (columns) but Y has {Y.shape[1]}{hint}")
        if X.shape[1] == 0:  # a task is inferred from the labels: none to infer it from
            raise ValueError(f"X has no examples (shape {tuple(X.shape)}, m = 0); pass at least one column")
        if backend.xp.isdtype(Y.dtype, "real floating") and count_non_finite(Y, backend.xp):
            raise ValueError("Y contains NaN or inf; clean or impute them first")  # inf was a class count
        task, n_out = infer_task(Y, backend, task)
        n_x = X.shape[0]
        dims = list(layer_dims) if layer_dims else [n_x, 64 if task == "multiclass" else 4, n_out]
        if dims[0] != n_x:
            fix = ",".join(map(str, [n_x, *dims[1:]]))
            raise ValueError(f"layers start with {dims[0]} but the data has n_x = {n_x} features; use {fix}")
        if dims[-1] != n_out:
            what = {
                "binary": "one sigmoid output for binary labels",
                "multiclass": f"one softmax output per class: the labels are 0 .. {n_out - 1}",
                "regression": f"one linear output per target: Y has {n_out} rows",
            }[task]
            raise ValueError(f"layers must end with {n_out} ({what}); got {dims[-1]}")
        output = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]
        return cls(dims, hidden_activation, output, backend=backend, **options)

    # -- conveniences ---------------------------------------------------------------------------
    @property
    def xp(self) -> Any:
        """The array namespace the network computes with."""
        return self.backend.xp

    @property
    def dtype_name(self) -> str:
        return self.backend.dtype_name(self.dtype)

    @property
    def itemsize(self) -> int:
        """Bytes per parameter entry (4 for float32, 8 for float64)."""
        return 4 if self.dtype_name == "float32" else 8

    def __repr__(self) -> str:
        acts = ", ".join(a.spec for a in self.activations)
        return (
            f"Network({self.layer_dims}, activations=[{acts}], backend={self.backend.name!r}, "
            f"dtype={self.dtype_name!r})"
        )

    # -- pickle and copy ------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The backend by name (:meth:`Backend.spec`, rebuilt by :meth:`__setstate__`), the parameters
        as host (NumPy) arrays: a pickle or a deep copy holds no module and no device memory."""
        state = dict(self.__dict__)
        state["backend"] = self.backend.spec()
        state["dtype"] = self.dtype_name
        state["params"] = self.parameters_numpy()
        state.pop("head", None)  # follows from the output activation
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "normalization" in state:  # pickled before it became a property
            state["_normalization"] = state.pop("normalization")
        backend = get_backend(state.pop("backend"))
        dtype = backend.dtype(state.pop("dtype"))
        params = state.pop("params")
        self.__dict__.update(state, backend=backend, dtype=dtype)
        self.head = head_for(self.activations[-1])
        with backend.activate():
            self.params = {k: backend.asarray(v, dtype=dtype) for k, v in params.items()}

    @property
    def normalization(self) -> Any:
        """Input normalization (a :class:`dlcore.data.Normalization` of X's n_x rows) saved with the model
        and applied to every X that enters fit/predict/predict_proba/cost/accuracy, so raw data goes in;
        set by the CLI and by :meth:`load`."""
        return self._normalization

    @normalization.setter
    def normalization(self, norm: Any) -> None:
        self._normalization = self._checked_normalization(norm)

    def _checked_normalization(self, norm: Any) -> Any:
        _check_is_normalization(norm, "normalization")
        if norm is not None and norm.n_x != self.layer_dims[0]:
            raise ValueError(
                f"the normalization has {norm.n_x} features but the network takes {self.layer_dims[0]}"
            )
        return self._representable(norm, "normalization")

    def _representable(self, norm: Any, of: str) -> Any:
        """``norm`` if the network's dtype holds its means and stds (else every value would be inf)."""
        limits = self.backend.xp.finfo(self.dtype)
        i = None if norm is None else norm.unrepresentable(float(limits.max), float(limits.smallest_normal))
        if i is not None:
            row = "target" if of.startswith("target") else "feature"
            raise ValueError(
                f"the {of} holds values {self.dtype_name} cannot represent ({row} {i + 1}: mean "
                f"{norm.mean[i]:.6g}, std {norm.std[i]:.6g}): use dtype='float64' or rescale that {row}"
            )
        return norm

    @property
    def target_normalization(self) -> Any:
        """Regression only: target standardization (a :class:`dlcore.data.Normalization` of Y's rows),
        saved with the model; every Y entering fit/cost is standardized with it and predictions come back
        in Y's units (predict, predict_proba, score). The CLI sets it, :meth:`load` restores it."""
        return self._target_normalization

    @target_normalization.setter
    def target_normalization(self, norm: Any) -> None:
        n_out = self.layer_dims[-1]
        _check_is_normalization(norm, "target_normalization")
        if norm is not None and self.task != "regression":
            raise ValueError(f"target_normalization is for regression networks; this one is {self.task}")
        if norm is not None and len(norm.mean) != n_out:
            raise ValueError(
                f"target_normalization has {len(norm.mean)} targets; the network predicts {n_out}"
            )
        self._target_normalization = self._representable(norm, "target normalization")

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, normalization: Any = None, info: dict | None = None) -> None:
        """Write parameters and config to ``path`` (``.npz``, atomically); see :mod:`dlcore.persistence`.
        ``normalization`` and ``info`` default to the network's own (a loaded model keeps its class names)."""
        norm = self.normalization if normalization is None else self._checked_normalization(normalization)
        targets = self.target_normalization
        config = persistence.model_config(
            self.layer_dims,
            [a.spec for a in self.activations],
            self.dtype_name,
            None if norm is None else norm.to_dict(),
            info if info is not None else self.info,
            None if targets is None else targets.to_dict(),
        )
        persistence.save_model(path, self.parameters_numpy(), config)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | Backend | None = None) -> Network:
        """A network saved with :meth:`save`, rebuilt on ``backend`` (any backend); ValueError if bad file.

        The network carries the saved ``normalization`` (or ``None``) and ``info``.
        """
        backend = get_backend(backend)
        config, arrays = persistence.read_model(path)
        try:
            net = cls(
                config["layer_dims"],
                activations=[get_activation(a) for a in config["activations"]],
                init="zeros",
                backend=backend,  # and a fresh network's seed: a fit of it is as reproducible
                dtype=config["dtype"],
            )
            net.set_parameters(arrays)
            norm, targets = config.get("normalization"), config.get("target_normalization")
            net.normalization = None if norm is None else Normalization.from_dict(norm)
            net.target_normalization = None if targets is None else Normalization.from_dict(targets)
        except ValueError as exc:
            raise ValueError(f"{path} is corrupt: {exc}") from None
        net.info = dict(config.get("info") or {})
        return net

    def parameters_numpy(self) -> dict[str, Any]:
        """A host (NumPy) copy of the parameters, e.g. for saving or inspection."""
        return {k: self.backend.to_numpy(v).copy() for k, v in self.params.items()}

    def set_parameters(self, params: dict[str, Any]) -> None:
        """Replace the parameters with copies of ``params`` (any array type; shapes must match
        ``layer_dims``, and no other layer's: W3 for a two-layer network is another network's; other keys,
        such as a model file's ``__meta__`` in ``np.load(path)``, are not parameters):
        training updates the network's arrays in place, never the caller's."""
        mine = {f"{p}{l}" for l in range(1, len(self.layer_dims)) for p in "Wb"}
        extra = {k for k in params if k not in mine and re.fullmatch(r"[Wb][0-9]+", str(k))}  # np.load's
        if extra:  # __meta__ of a model file is no parameter
            raise ValueError(
                f"unexpected arrays {sorted(extra)} for a network of layers {self.layer_dims}: pass its "
                "W1, b1, ..., WL, bL only"
            )
        new = {}
        for l in range(1, len(self.layer_dims)):
            for name, shape in (
                (f"W{l}", (self.layer_dims[l], self.layer_dims[l - 1])),
                (f"b{l}", (self.layer_dims[l], 1)),
            ):
                if name not in params:
                    raise ValueError(f"parameters lack {name!r}")
                value = self.backend.asarray(params[name], dtype=self.dtype)
                if tuple(value.shape) != shape:
                    raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
                new[name] = value
        with self.backend.activate():
            self.params = prop.copy_params(new)

    # -- training -------------------------------------------------------------------------------
    def check_X(self, X: Any) -> Array:
        """X as a validated (n_x, m) array on this network's backend and dtype, normalized with
        :attr:`normalization` when the network carries one."""
        return check_features(X, self.layer_dims[0], self.backend, self.dtype, self.normalization)

    @property
    def n_classes(self) -> int | None:
        """C for a softmax output, ``None`` for a binary (sigmoid) one."""
        return self.layer_dims[-1] if self.activations[-1].name == "softmax" else None

    @property
    def task(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"regression"``."""
        return {"sigmoid": "binary", "softmax": "multiclass"}.get(self.head.activation.name, "regression")

    def check_XY(self, X: Any, Y: Any) -> tuple[Array, Array]:
        """X: (n_x, m) and the head's targets: Y (1, m) 0/1 labels; softmax: Y one-hot (C, m) from labels
        or one-hot; regression: Y (n[L], m) real values."""
        X = self.check_X(X)
        if self.target_normalization is None:
            Y = self.head.check_targets(Y, self.layer_dims[-1], X.shape[1], self.backend, self.dtype)
        else:  # a regression network's: standardized before the cast, as X is
            Y = check_targets(
                Y, self.layer_dims[-1], X.shape[1], self.backend, self.dtype, self.target_normalization
            )
        return X, Y

    def fit(
        self,
        X: Any,
        Y: Any,
        learning_rate: float = 0.0075,
        iterations: int | None = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        optimizer: str | Optimizer | None = None,
        decay_rate: float = 0.0,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None,
        seed: int | None = None,
        cost_every: int | None = None,
        callback: Callable[[int, float], None] | None = None,
        device_rng: bool = False,
        divergence_factor: float = DIVERGENCE_FACTOR,
        verbose: bool = False,
        progress: Callable[[int], None] | None = None,
        comm: Any = None,
        precision: str | MixedPrecision | None = None,
    ) -> History:
        """Train on X: (n_x, m), Y: (1, m) (softmax: integer labels (1, m) or one-hot (C, m)).

        By default batch gradient descent for ``iterations`` steps (3000). Options:
        ``batch_size`` (mini-batches, reshuffled every epoch; ``None`` = full batch), ``epochs``
        (passes over the data, instead of ``iterations``, which count updates), ``optimizer``
        (``"gd"``, the default, ``"momentum"``, ``"rmsprop"``, ``"adam"`` or an
        :class:`~dlcore.optimizers.Optimizer`),
        ``decay_rate`` (alpha = alpha0 / (1 + decay_rate * epoch)), ``l2`` (lambda), ``keep_prob``
        (inverted dropout on hidden layers), ``validation_split`` or ``validation_data`` with
        ``patience`` (early stopping, best parameters restored), ``seed`` (shuffles, split, dropout;
        default the network's seed, the same split in every fit but new shuffles and dropout masks in
        each later one: not the bits of one longer fit). An Optimizer object brings its own learning rate
        and decay (``learning_rate`` and ``decay_rate`` are then not used); its state (moments, step
        count, the decay's epoch) carries on into a later fit it is given to.

        The cost is brought to the host only every ``cost_every`` iterations (epochs when any option
        is used; default 100, or 1 with mini-batches) and after the last, so a GPU is never stalled by
        a per-iteration sync. At each of those checks a cost that is NaN or inf, or above
        ``divergence_factor`` (default 1000; 0 = off) times the first recorded cost, stops training: the
        parameters are rolled back to the last ones that passed and :class:`TrainingDiverged` is raised.
        Labels of a single class train, with a one-line ``UserWarning``.
        ``callback(iteration, cost)`` runs at each check. ``device_rng=True`` draws the shuffles and
        dropout masks on the device (faster on a GPU; reproducible there, but not bit-identical to the
        host draws every backend shares by default; the same as the default on CPU backends).
        ``verbose=True`` shows progress as the CLI does (a tqdm bar per mini-batch with rate and ETA on a
        terminal, plain lines every few seconds otherwise, and the cost every ``cost_every``);
        ``progress(iteration)`` runs after every update (a count: it adds no host sync).
        ``comm`` (a communicator from :func:`dlcore.backends.comm.get_communicator`, an mpi4py
        communicator, or a :class:`~dlcore.distributed.DataParallel`): data-parallel training, this
        process being one rank (start N of them with ``mpiexec -n N``); every rank passes the same X and
        Y, rank 0's parameters and seed are used, each rank computes on its share of every batch and the
        gradients are summed over the ranks (:mod:`dlcore.distributed`); only rank 0 is ``verbose``.
        ``precision`` (``"mixed"``: the backend's first low dtype, bfloat16 on torch and float16 on numpy;
        ``"bfloat16"``, ``"float16"``, or a :class:`~dlcore.precision.MixedPrecision`): compute in that
        dtype with float32 master weights (a ``dtype="float32"`` network), the cost in float32; float16
        scales the loss dynamically on the device (no host sync). A MixedPrecision object, like an
        Optimizer object, is used as it is: its own optimizer runs (``optimizer``, ``learning_rate`` and
        ``decay_rate`` are not used) and its state, the loss scale included, carries on into the next
        fit (as ``partial_fit``'s stream wants); pass a new one for a fresh start. A backend without that
        dtype raises a :class:`~dlcore.backends.BackendError` naming the fix.

        Returns the cost :class:`History`.
        """
        parallel = None
        if comm is not None:  # every rank: the same data, rank 0's seed and parameters
            parallel = comm if isinstance(comm, DataParallel) else DataParallel(as_communicator(comm))
        # data-parallel: a check that fails on one rank fails on all (none waits in a collective for it)
        agreed = parallel.agreement if parallel is not None else contextlib.nullcontext
        with self.backend.activate(), self.backend.quiet_floating_point():
            with agreed():
                X, Y = self.check_XY(X, Y)
                lr = check_learning_rate(learning_rate)
                if iterations is None and epochs is None:
                    iterations = 3000
                iterations, epochs = check_duration(iterations, epochs)
                if isinstance(optimizer, MixedPrecision):
                    raise ValueError(MIXED_AS_OPTIMIZER)
                inner = precision.optimizer if isinstance(precision, MixedPrecision) else None
                if inner is not None and optimizer is not None and optimizer is not inner:
                    raise ValueError(
                        f"precision={precision!r} wraps its own optimizer; give that one to MixedPrecision, "
                        "or pass precision='mixed' (or the dtype's name) to wrap optimizer="
                    )
                opt = get_optimizer("gd" if optimizer is None else optimizer, lr, decay_rate)
                mixed = None if precision is None else MixedPrecision.of(precision, opt)
                if mixed is not None and self.dtype_name != "float32":
                    raise ValueError(
                        f"precision={precision!r} keeps float32 master weights: create the network with "
                        "dtype='float32'"
                    )
                l2 = check_number(l2, "l2")
                if mixed is not None:  # what prepare and train_mixed would refuse, before a seed is drawn
                    mixed.check(self.backend, l2)
                (opt if mixed is None else mixed.optimizer).check_state(self.params)  # another network's?
                keep_prob = check_keep_prob(keep_prob)
                check_callable(callback, "callback")
                check_callable(progress, "progress")
                if keep_prob < 1.0 and len(self.layer_dims) == 2:
                    raise ValueError(
                        f"keep_prob={keep_prob:g} drops hidden units, and this network has no hidden layer: "
                        "add one (layer_dims [n_x, n_h, 1]) or pass keep_prob=1 (l2 regularizes any network)"
                    )
                factor = check_divergence_factor(divergence_factor)
                own_seed = seed is None
                seed = self.seed if own_seed else check_seed(seed)
                validation = None if validation_data is None else self._validation_pair(validation_data)
                if validation is not None and validation_split:
                    raise ValueError("give validation_split or validation_data, not both")
                patience = None if patience is None else check_positive_int(patience, "patience")
            if parallel is not None:  # collectives
                parallel.check_same_options(
                    layers=self.layer_dims,
                    activations=[a.spec for a in self.activations],
                    dtype=self.dtype_name,
                    # a wrapped optimizer's own settings, and the scaler's (each rank scaled by its own S)
                    optimizer=_settings(opt if mixed is None else mixed.optimizer),
                    precision=None if mixed is None else (repr(mixed), _settings(mixed)),
                    plan=(iterations, epochs, batch_size, cost_every, patience, validation_split),
                    regularization=(l2, keep_prob),
                    divergence_factor=factor,
                    device_rng=device_rng,
                )
                held_out = {} if validation is None else {"X_val": validation[0], "Y_val": validation[1]}
                parallel.check_same_data(X=X, Y=Y, **held_out)
                seed = parallel.agree_seed(seed)
                parallel.broadcast_params(self.params)
                verbose = verbose and parallel.rank == 0
            with agreed():
                rng = self.backend.rng(seed, on_device=device_rng)
                if validation is None and validation_split:  # the same split in every fit of a seed
                    X, Y, Xv, Yv = train_validation_split(X, Y, validation_split, rng)
                    validation = (Xv, Yv)
                if patience is not None and validation is None:
                    raise ValueError(
                        "patience needs validation_split > 0 (e.g. 0.1) or validation_data=(X_val, Y_val)"
                    )
                m = X.shape[1]
                plan = Plan.of(m, batch_size, iterations, epochs)
                slots = STATE_SLOTS.get(getattr(mixed or opt, "name", "adam"), 2)
                check_training_fits(self.layer_dims, m, plan.batch_size, self.itemsize, slots, self.backend)
                self._warn_single_class(Y)
                every = 1 if plan.batch_size < m else 100  # default: every epoch, or every 100 updates
                every = check_positive_int(every if cost_every is None else cost_every, "cost_every")
                if own_seed and seed is not None:  # fit after fit: new shuffles and dropout masks
                    if self._fits:  # (counted once every check passed: a refused fit drew nothing)
                        rng = self.backend.rng(_stream_seed(seed, self._fits), on_device=device_rng)
                    self._fits += 1
            run, how = train, {"optimizer": opt}
            if mixed is not None:  # the loop computes in the low dtype; self.params stay the masters
                run, how = train_mixed, {"precision": mixed, "backend": self.backend}
            return run(
                self.params,
                self.activations,
                X,
                Y,
                **how,
                plan=plan,
                cost_every=every,
                l2=l2,
                keep_prob=keep_prob,
                validation=validation,
                patience=patience,
                callback=callback,
                rng=rng,
                head=self.head,
                ops=self.backend.ops,
                divergence_factor=factor,
                progress=progress,
                verbose=verbose,
                parallel=parallel,
            )

    def _validation_pair(self, validation_data: Any) -> tuple[Array, Array]:
        """``validation_data`` checked: a pair (X_val, Y_val) shaped as X and Y are."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError(
                f"validation_data must be a pair (X_val, Y_val); got a {type(validation_data).__name__}"
                + (f" of {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else "")
            )
        try:
            return self.check_XY(*validation_data)
        except ValueError as exc:  # "X contains NaN" of clean training data named the wrong X
            raise ValueError(f"validation_data=(X_val, Y_val), as X and Y: {exc}") from None

    def _warn_single_class(self, Y: Array) -> None:
        """One-line UserWarning when classification labels hold a single class (training then reaches a
        meaningless 100%)."""
        if self.task == "regression":
            return
        xp = self.xp
        if Y.shape[0] == 1:
            lo, hi = float(xp.min(Y)), float(xp.max(Y))
            if lo != hi:
                return
            only = f"label {lo:g}"
        else:
            present = xp.max(Y, axis=1) > 0
            if int(xp.sum(xp.astype(present, xp.int64))) != 1:
                return
            only = f"class {int(xp.argmax(xp.astype(present, xp.int64)))}"
        warnings.warn(
            f"only one class ({only}) is present in the training labels: the network will learn to "
            "predict it always, and its accuracy says nothing; check the labels",
            UserWarning,
            stacklevel=3,
        )

    # -- inference ------------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> Array:
        """A[L] for each column of X: (n_x, m) -> (1, m) P(y = 1 | x) on the network's backend; softmax:
        the class probabilities (C, m), each column summing to 1; regression: the predicted values."""
        with self.backend.activate():
            A = prop.predict_proba(self.check_X(X), self.params, self.activations)
            targets = self.target_normalization
            return A if targets is None else targets.invert(A, self.backend)

    def predict(self, X: Any) -> Array:
        """The head's predictions (1, m): 0/1 (int64) where the probability exceeds 0.5; softmax: class
        indices; regression: the values (n[L], m)."""
        with self.backend.activate():
            return self.head.predict(self.predict_proba(X))

    def cost(self, X: Any, Y: Any) -> float:
        """The cost J on (X, Y): the head's loss (binary or categorical cross-entropy, or for regression
        J = 1/(2m) sum over the m examples of ||a - y||^2, every output summed)."""
        with self.backend.activate(), self.backend.quiet_floating_point():
            X, Y = self.check_XY(X, Y)
            _, caches = prop.forward(X, self.params, self.activations, ops=self.backend.ops)
            return float(prop.cost(caches, Y, self.activations, self.head))

    def score(self, X: Any, Y: Any) -> float:
        """The head's metric on (X, Y): accuracy in [0, 1] for classifiers, R^2 for regression."""
        A = self.predict_proba(X)  # in Y's units
        with self.backend.activate():
            Y = self.head.check_targets(Y, self.layer_dims[-1], A.shape[1], self.backend, self.dtype)
            return self.head.score(A, Y)

    def accuracy(self, X: Any, Y: Any) -> float:
        """Fraction of examples classified correctly, in [0, 1] (classifiers only)."""
        if self.task == "regression":
            raise ValueError("accuracy is for classifiers; a regression network reports score() (R^2)")
        return self.score(X, Y)


def _stream_seed(seed: int, k: int) -> int:
    """The seed of the k-th later fit on ``seed``'s network (k >= 1): apart from ``seed`` and each other."""
    return (seed * 0x9E3779B97F4A7C15 + k * 0xBF58476D1CE4E5B9) % 2**63


def _settings(optimizer: Any) -> tuple:
    """An optimizer's kind and its number and text settings (learning rate, betas, step count, ...); not
    its private bookkeeping (``_checked``, the id of the last parameter dict: another on every rank)."""
    plain = (int, float, str, bool)
    return type(optimizer).__name__, sorted(
        (k, v) for k, v in vars(optimizer).items() if type(v) in plain and not k.startswith("_")
    )


def infer_task(Y: Any, backend: Any, task: str | None = None) -> tuple[str, int]:
    """``(task, output units)`` for labels or targets Y on ``backend`` (see :meth:`Network.for_data`)."""
    xp = backend.xp
    if Y.ndim != 2:
        raise ValueError(f"Y must be 2-D, (1, m) labels or (n_y, m) targets; got shape {tuple(Y.shape)}")
    tasks = ("binary", "multiclass", "regression")
    if task is not None and task not in tasks:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(tasks)}")
    if task == "regression":
        return task, Y.shape[0]
    Yf = xp.astype(Y, backend.dtype("float64"))
    integral = bool(xp.all(Yf == xp.round(Yf))) and bool(xp.all(Yf >= 0))
    if Y.shape[0] > 1:  # one-hot columns, or several regression targets
        hot = integral and bool(xp.all(xp.sum(Yf, axis=0) == 1)) and bool(xp.max(Yf) <= 1)
        if task is None:
            task = "multiclass" if hot else "regression"
        if task != "regression" and not hot:
            raise ValueError(
                f"Y of shape {tuple(Y.shape)} is not one-hot; pass integer labels of shape (1, m)"
            )
        return task, Y.shape[0]
    inferred = task is None
    if inferred:
        task = "regression" if not integral else ("binary" if bool(xp.max(Yf) <= 1) else "multiclass")
        if task == "regression" and bool(xp.all(xp.abs(Yf) == 1)):  # SVM-style labels
            warnings.warn(
                "the labels are -1 and +1, so they are taken as regression targets; for a classifier give "
                "0/1 labels, (Y + 1) / 2, or pass task='regression' to say so",
                UserWarning,
                stacklevel=3,
            )
    if task == "binary":
        return task, 1
    if task == "regression":
        return task, 1
    if not integral:
        raise ValueError("multiclass labels must be integers 0 .. C-1; use task='regression' for real values")
    n_classes = int(xp.max(Yf)) + 1
    if n_classes < 2:
        raise ValueError("multiclass needs at least two classes in Y")
    m = Y.shape[1]
    if inferred and n_classes > max(10 * m, 1 << 16):  # a label of 1e15 asked for 968,575,477 GiB
        raise ValueError(
            f"the labels are integers up to {n_classes - 1:.6g}: as classes, {n_classes:.3g} outputs for "
            f"{m} examples; pass task='regression' if they are numeric targets"
        )
    lowest = int(xp.min(Yf))
    if inferred and lowest > 0:  # R's and MATLAB's labels count from 1
        warnings.warn(
            f"the labels start at {lowest}, so class{'es 0..' if lowest > 1 else ' '}{lowest - 1} "
            f"{'have' if lowest > 1 else 'has'} no example and the model gets {n_classes} outputs; labels "
            f"counted from {lowest}? relabel them from 0 (Y - {lowest}), or use class names",
            UserWarning,
            stacklevel=3,
        )
    if inferred and n_classes > 10 and m < 2 * n_classes:  # whole-number targets (prices, scores), likely
        warnings.warn(
            f"the labels are integers up to {n_classes - 1}, taken as {n_classes} classes for {m} examples "
            "(fewer than 2 per class); if they are numeric targets, pass task='regression' (task="
            "'multiclass' says they are classes)",
            UserWarning,
            stacklevel=3,
        )
    return task, n_classes


def _check_is_normalization(norm: Any, name: str) -> None:
    """A TypeError unless ``norm`` is a :class:`Normalization` or None (a dict failed as "'dict' object has
    no attribute 'n_x'")."""
    if norm is not None and not isinstance(norm, Normalization):
        hint = ": Normalization.from_dict(d) makes one of a dict" if isinstance(norm, dict) else ""
        raise TypeError(
            f"{name} must be a dlcore.data.Normalization (Normalization.fit(X, backend)) or None; got "
            f"{type(norm).__name__}{hint}"
        )
