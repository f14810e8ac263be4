"""scikit-learn estimators around :class:`dlcore.Network`: :class:`DLClassifier` and :class:`DLRegressor`.

They take data as scikit-learn users pass it, ``X: (m, n)`` and ``y: (m,)`` (class labels of any type,
strings too; regression targets ``(m,)`` or ``(m, k)``), and hand the core its column layout
(``X: (n, m)``) inside. Every training option of :meth:`Network.fit` is a constructor parameter, so
``get_params``/``set_params``, ``clone``, ``Pipeline`` and ``GridSearchCV`` work as usual; a fitted
estimator pickles (its network keeps the backend by name and the parameters on the host).

>>> from dlcore.sklearn import DLClassifier
>>> clf = DLClassifier(hidden_layer_sizes=(16,), random_state=0).fit(X_train, y_train)
>>> clf.predict_proba(X_test)        # (m, C), columns in the order of clf.classes_

scikit-learn is an optional extra (``pip install "dlcore[sklearn]"``): ``import dlcore`` never needs it,
only ``import dlcore.sklearn`` does.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
    from sklearn.utils.validation import validate_data as _validate_data  # scikit-learn >= 1.6
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    from dlcore.backends.sklearn_data import SKLEARN_FIX

    raise ImportError(f"dlcore.sklearn needs scikit-learn, which is not installed; {SKLEARN_FIX}") from exc

from dlcore.backends import sklearn_data as host
from dlcore.model import Network
from dlcore.optimizers import get_optimizer
from dlcore.precision import MixedPrecision
from dlcore.training import DIVERGENCE_FACTOR, MIXED_AS_OPTIMIZER_FIX, History, TrainingDiverged

__all__ = ["DLClassifier", "DLRegressor"]

#: the training options handed to :meth:`Network.fit` unchanged, by the same names
FIT_OPTIONS = (
    "learning_rate",
    "epochs",
    "batch_size",
    "optimizer",
    "decay_rate",
    "l2",
    "keep_prob",
    "validation_split",
    "patience",
    "cost_every",
    "callback",
    "device_rng",
    "divergence_factor",
    "verbose",
    "progress",
    "precision",
)


#: the core's words in a refusal, as an estimator's parameters say them
ESTIMATOR_WORDS = {
    " or validation_data=(X_val, Y_val)": "",
    "(layer_dims [n_x, n_h, 1])": "(hidden_layer_sizes=(n_h,))",
    MIXED_AS_OPTIMIZER_FIX: " (e.g. precision=MixedPrecision(Adam(0.001)), dtype='float32')",
}


class _DLEstimator(BaseEstimator):
    """What both estimators share: the constructor, validation, the network and the training call."""

    _task: str = ""

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (64,),
        hidden_activation: str = "relu",
        *,
        init: str = "he",
        backend: Any = None,
        dtype: str = "float64",
        random_state: Any = None,
        learning_rate: float = 0.01,
        iterations: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        optimizer: Any = "adam",
        decay_rate: float = 0.0,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        validation_split: float = 0.0,
        patience: int | None = None,
        cost_every: int | None = None,
        callback: Callable[[int, float], None] | None = None,
        device_rng: bool = False,
        divergence_factor: float = DIVERGENCE_FACTOR,
        verbose: bool = False,
        progress: Callable[[int], None] | None = None,
        precision: Any = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.hidden_activation = hidden_activation
        self.init = init
        self.backend = backend
        self.dtype = dtype
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.iterations = iterations
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.decay_rate = decay_rate
        self.l2 = l2
        self.keep_prob = keep_prob
        self.validation_split = validation_split
        self.patience = patience
        self.cost_every = cost_every
        self.callback = callback
        self.device_rng = device_rng
        self.divergence_factor = divergence_factor
        self.verbose = verbose
        self.progress = progress
        self.precision = precision

    # -- pieces ---------------------------------------------------------------------------------
    def _seed(self) -> int | None:
        """An int seed for the network from ``random_state`` (None, an int or a RandomState), or a
        ValueError in its name (the core's said "seed", no parameter of the estimator)."""
        state = self.random_state
        if state is None:
            return None
        wrong = ValueError(
            f"random_state must be None, an integer in [0, 2**32 - 1] or a RandomState; got {state!r}"
        )
        if isinstance(state, numbers.Integral) and not isinstance(state, bool):
            if not 0 <= state <= 2**32 - 1:  # scikit-learn's range
                raise wrong
            return int(state)  # NumPy's integers too (a grid made with np.arange): the same seed
        try:
            return int(check_random_state(state).randint(2**31 - 1))
        except ValueError:  # "... cannot be used to seed a numpy.random.RandomState instance"
            raise wrong from None

    def _layer_dims(self, n_x: int, n_out: int) -> list[int]:
        sizes = self.hidden_layer_sizes  # one size (an int, or NumPy's) or a sequence (np.arange's too)
        if isinstance(sizes, (str, bytes)):  # iterable, but its characters are no sizes
            raise ValueError(
                f"hidden_layer_sizes must be an integer or a sequence of integers; got {sizes!r}"
            )
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]  # check_layer_dims checks each
        return [n_x, *sizes, n_out]

    def _new_network(self, n_x: int, n_out: int, output: str) -> Network:
        return Network(
            self._layer_dims(n_x, n_out),
            self.hidden_activation,
            output,
            init=self.init,
            backend=self.backend,
            seed=self._seed(),
            dtype=self.dtype,
        )

    def _check_X(self, X: Any, *, reset: bool) -> Any:
        X = _validate_data(self, X, reset=reset, dtype=("float64", "float32"))
        return host.rows_to_columns(X, self.network_.dtype_name)

    def _fresh_optimizer(self) -> tuple[Any, Any]:
        """(optimizer, MixedPrecision or None) made from the parameters: an Optimizer or MixedPrecision
        object given is a template, copied, so fit never steps (mutates) it; a MixedPrecision's own
        optimizer is the one that runs."""
        optimizer = get_optimizer(copy.deepcopy(self.optimizer), self.learning_rate, self.decay_rate)
        optimizer.restart()  # a template stepped before (on a Network) starts over in each fit
        if self.precision is None:
            return optimizer, None
        mixed = MixedPrecision.of(copy.deepcopy(self.precision), optimizer)
        mixed.restart()
        return mixed.optimizer, mixed

    @contextlib.contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """A fit that raises, or a partial_fit refused before it trains, leaves the estimator as it was (a
        bad option once left a new, untrained network in place of the fitted one; the attributes are put
        back, not partial_fit's network and optimizer, which train in place), except when training
        diverged: the network then holds its last good parameters, as the error says, and the attributes
        describe them."""
        before = dict(self.__dict__)
        try:
            yield
        except TrainingDiverged:
            raise
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _train(self, X: Any, Y: Any, *, one_epoch: bool = False) -> None:
        """fit (``one_epoch=False``: a fresh optimizer) or partial_fit (one pass, the stream's optimizer
        :attr:`optimizer_` carrying on: Adam's moments and step count, the loss scale, the decay's epoch;
        fit's optimizer starts the stream, as scikit-learn's MLP continues after fit)."""
        options = {name: getattr(self, name) for name in FIT_OPTIONS}
        if self.precision is not None and self.network_.dtype_name != "float32":  # Network's says "create"
            raise ValueError(
                f"precision={self.precision!r} keeps float32 master weights: pass dtype='float32' to "
                f"{type(self).__name__}"
            )
        if not one_epoch or self.optimizer_ is None:
            self.optimizer_, self.precision_ = self._fresh_optimizer()
        options["optimizer"], options["precision"] = self.optimizer_, self.precision_
        if one_epoch:  # partial_fit: one pass over the data it is given
            options["epochs"] = 1
            iterations = None
            options["validation_split"], options["patience"] = 0.0, None
            if self.random_state is not None:  # a new shuffle each call, still reproducible
                options["seed"] = (self._seed() or 0) + self.n_iter_
        else:
            iterations = self.iterations
            if iterations is None and self.epochs is None:
                iterations = 1000
        with warnings.catch_warnings():
            if one_epoch:  # a stream's batch may well hold one class: classes_ came from classes=
                warnings.filterwarnings("ignore", "only one class", UserWarning)
            try:
                history = self.network_.fit(X, Y, iterations=iterations, **options)
            except ValueError as exc:  # a refusal in the core's words, where they are no parameter here
                text = str(exc)
                for core, ours in ESTIMATOR_WORDS.items():
                    text = text.replace(core, ours)
                if text == str(exc):
                    raise
                raise ValueError(text) from None
            except TrainingDiverged as exc:  # rolled back to its last recorded parameters: describe those
                kept = exc.history.iterations[-1] if exc.history.iterations else 0
                before = self.n_iter_
                self._record(exc.history, kept, one_epoch)
                if not (one_epoch and before):
                    raise
                raise TrainingDiverged(  # its counts are this call's, not n_iter_'s
                    f"{exc} (The iterations are counted from the start of this partial_fit call, after "
                    f"{before} earlier updates; n_iter_ is {self.n_iter_}.)",
                    exc.iteration,
                    exc.learning_rate,
                    exc.history,
                    exc.cost,
                ) from None
            except KeyboardInterrupt as exc:  # the network holds its last whole update: describe it
                if getattr(exc, "history", None) is not None:
                    self._record(exc.history, exc.history.updates, one_epoch)
                raise
        self._record(history, history.updates, one_epoch)

    def _record(self, history: History, updates: int, one_epoch: bool) -> None:
        """The fitted attributes after a fit (or one more partial_fit) that made ``updates`` updates."""
        curve = [float(c) for c in history.costs]
        if one_epoch:  # one entry a call, the cost after it (its first record is the last call's final one)
            self.loss_curve_ = [*self.loss_curve_, *curve[-1:]]
            self.n_iter_ += updates
        else:
            self.loss_curve_, self.n_iter_ = curve, updates
        self.history_ = history

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class DLClassifier(ClassifierMixin, _DLEstimator):
    """A dlcore network as a scikit-learn classifier: sigmoid output for two classes, softmax for more.

    Args:
        hidden_layer_sizes: units of each hidden layer (``(64,)``; ``()`` is logistic regression).
        hidden_activation, init, dtype: as for :class:`dlcore.Network`.
        backend: a backend name (``"numpy"``, ``"torch"``, ``"cupy:1"``, ...) or ``None`` for
            ``$DLCORE_BACKEND`` / ``auto``.
        random_state: ``None`` (a different initialization each fit), an int or a ``RandomState``;
            seeds the weights, the shuffles and dropout.
        iterations, epochs: how long to train (updates, or passes over the data; not both); neither:
            1000 iterations.
        learning_rate, batch_size, optimizer, decay_rate, l2, keep_prob, validation_split, patience,
            cost_every, callback, device_rng, divergence_factor, verbose, progress, precision: the
            options of :meth:`Network.fit` (``precision`` needs ``dtype="float32"``: the master weights)
            (defaults as there, except ``optimizer="adam"`` and ``learning_rate=0.01``). An Optimizer or
            MixedPrecision object is a template, copied by each fit (a MixedPrecision's own optimizer
            then replaces ``optimizer``); fit makes a new copy, and partial_fit carries on with it.

    Attributes (after fit): ``classes_``, ``n_features_in_`` (and ``feature_names_in_``),
    ``network_`` (the :class:`dlcore.Network`), ``loss_curve_`` (the recorded costs; one per
    partial_fit call), ``n_iter_`` (updates made; with float16's dynamic loss scale, skipped steps
    too), ``optimizer_`` (the optimizer in use, Adam's moments and step count included; that count
    leaves skipped steps out), ``history_``
    (the :class:`dlcore.History` of the last fit). A fit that raises, or a partial_fit refused before it
    trains, leaves them as they were, except after :class:`~dlcore.TrainingDiverged`: the network then
    holds the parameters the error names and the attributes describe them. An interrupted fit (Ctrl-C)
    leaves ``network_`` at its last whole update, and ``n_iter_``, ``loss_curve_`` and ``history_``
    describe it.
    """

    def fit(self, X: Any, y: Any) -> DLClassifier:
        """Train a new network on ``X: (m, n)`` and labels ``y: (m,)``."""
        with self._unchanged_on_error():
            X, y = _validate_data(self, X, y, dtype=("float64", "float32"))
            check_classification_targets(y)
            self.classes_, Y = host.encode_labels(y)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"a classifier needs at least 2 classes in y; got only one class ({self.classes_[0]!r})"
                )
            self._start(X.shape[1])
            self._train(host.rows_to_columns(X, self.network_.dtype_name), Y)
        return self

    def _start(self, n_x: int) -> None:
        C = len(self.classes_)
        self.network_ = self._new_network(n_x, 1 if C == 2 else C, "sigmoid" if C == 2 else "softmax")
        self.n_iter_, self.loss_curve_ = 0, []
        self.optimizer_ = self.precision_ = None  # made by _train

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> DLClassifier:
        """One epoch over ``(X, y)`` (mini-batches of ``batch_size``), continuing from the current
        parameters. The first call needs ``classes`` (every label y will ever hold) unless ``y`` already
        holds them all. The optimizer (:attr:`optimizer_`) and its state (Adam's moments and step count)
        carry on from one call to the next, as scikit-learn's MLP does."""
        with self._unchanged_on_error():
            first = not hasattr(self, "network_")
            X, y = _validate_data(self, X, y, reset=first, dtype=("float64", "float32"))
            check_classification_targets(y)
            if classes is not None:  # as y: 0.5 among them made a class no label could ever train
                classes = column_or_1d(classes)
                check_classification_targets(classes)
            if first:
                self.classes_, _ = host.encode_labels(y if classes is None else classes)
                if len(self.classes_) < 2:
                    raise ValueError("the first partial_fit needs classes=... with at least 2 classes")
                self._start(X.shape[1])
            elif classes is not None and list(host.encode_labels(classes)[0]) != list(self.classes_):
                raise ValueError(f"classes changed: fitted with {self.classes_.tolist()}")
            Y = host.label_indices(y, self.classes_)
            self._train(host.rows_to_columns(X, self.network_.dtype_name), Y, one_epoch=True)
        return self

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities ``(m, C)``, columns in the order of :attr:`classes_`, rows summing to 1."""
        check_is_fitted(self)
        return host.probabilities_to_rows(self.network_.predict_proba(self._check_X(X, reset=False)))

    def predict(self, X: Any) -> Any:
        """The most probable class of each row, as labels from :attr:`classes_`."""
        check_is_fitted(self)
        return host.most_probable(self.classes_, self.predict_proba(X))


class DLRegressor(RegressorMixin, _DLEstimator):
    """A dlcore network as a scikit-learn regressor (linear output, mean squared error).

    ``y`` is ``(m,)`` or ``(m, k)`` (k targets); ``predict`` returns the same shape. The parameters are
    those of :class:`DLClassifier`. Scale the targets (e.g. ``TransformedTargetRegressor`` with a
    ``StandardScaler``) when they are far from unit size.
    """

    def fit(self, X: Any, y: Any) -> DLRegressor:
        """Train a new network on ``X: (m, n)`` and targets ``y: (m,)`` or ``(m, k)``."""
        with self._unchanged_on_error():
            X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=("float64", "float32"))
            self._start(X.shape[1], y)
            self._train(
                host.rows_to_columns(X, self.network_.dtype_name),
                host.targets_to_columns(y, self.network_.dtype_name),
            )
        return self

    def _start(self, n_x: int, y: Any) -> None:
        self._one_target = y.ndim == 1
        self.network_ = self._new_network(n_x, 1 if y.ndim == 1 else y.shape[1], "linear")
        self.n_iter_, self.loss_curve_ = 0, []
        self.optimizer_ = self.precision_ = None  # made by _train

    def partial_fit(self, X: Any, y: Any) -> DLRegressor:
        """One epoch over ``(X, y)``, continuing from the current parameters (see
        :meth:`DLClassifier.partial_fit`)."""
        with self._unchanged_on_error():
            first = not hasattr(self, "network_")
            X, y = _validate_data(
                self, X, y, reset=first, multi_output=True, y_numeric=True, dtype=("float64", "float32")
            )
            if first:
                self._start(X.shape[1], y)
            else:  # in the user's terms: the core's was "Y must have shape (n_y, m) = (1, 80) ..."
                targets, fitted = 1 if y.ndim == 1 else y.shape[1], self.network_.layer_dims[-1]
                if targets != fitted:
                    raise ValueError(f"y has {targets} target(s); this regressor was fitted on {fitted}")
            Y = host.targets_to_columns(y, self.network_.dtype_name)
            self._train(host.rows_to_columns(X, self.network_.dtype_name), Y, one_epoch=True)
        return self

    def predict(self, X: Any) -> Any:
        """Predicted targets, ``(m,)`` (or ``(m, k)`` when fitted on k targets), in X's floating dtype
        (float32 or float64, as scikit-learn's regressors; not the network's ``dtype``)."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=("float64", "float32"))
        out = self.network_.predict_proba(host.rows_to_columns(X, self.network_.dtype_name))
        return host.columns_to_rows(out, squeeze=self._one_target).astype(X.dtype, copy=False)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
