"""User data: CSV and ``.npz`` loading, feature normalization, train/test split, image flattening.

Everything returns the course's column layout, ``X: (n_x, m)`` and ``Y: (1, m)``, on the backend
asked for. File reading that needs NumPy lives in :mod:`dlcore.backends`: ``.npz`` in ``storage``, CSV in
``csv_reader`` (NumPy's C parser, and a cell-by-cell pass that reports a bad cell's file, line and column).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcore._namespace import check_dense
from dlcore.backends import backend_of, csv_reader, get_backend, storage
from dlcore.datasets import DATASETS
from dlcore.minibatch import split_columns
from dlcore.validation import as_float, check_seed, count_non_finite

Array = Any


# ----------------------------------------------------------------------------------------------
# Normalization
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Normalization:
    """Per-feature standardization x -> (x - mean) / std, fitted on the training split.

    ``mean`` and ``std`` are host lists of n_x floats, so they travel in a model file's JSON and
    apply on any backend. Constant features get std 1 (they are only centred).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        """One mean and one std per feature, finite, std > 0 (a std of 0 divides by 0): ValueError."""
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean and std must have one entry per feature; got {len(self.mean)} and {len(self.std)}"
            )
        if not all(math.isfinite(v) for v in self.mean):
            raise ValueError("the mean must be finite")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError("each std must be finite and > 0 (use 1 for a constant feature)")

    @classmethod
    def fit(cls, X: Array, backend: Any, parallel: Any = None, rows: str = "feature") -> Normalization:
        """Mean and standard deviation of each row of X: (n_x, m), computed in float64 whatever X's dtype
        (float32 squares of values near 1e20 would overflow to an infinite std). ``rows`` names a row in
        the messages (``"target"`` for regression targets Y: (n[L], m)).

        ``parallel`` (a :class:`~dlcore.distributed.DataParallel`; every rank holds the same X): each
        rank sums its own columns and the sums are allreduced, first of x (the global mean), then of
        (x - mean)^2: the global statistics, computed as one process would (two passes).

        Raises:
            ValueError: when the statistics are not finite, or the standardized X cannot be represented
                in X's dtype; before any training.
        """
        backend = get_backend(backend)
        xp = backend.xp
        check_dense(X, "X")
        X = backend.asarray(X)
        float64 = backend.dtype("float64")
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValueError(f"the {rows}s to standardize must be (n, m) with m > 0; got {tuple(X.shape)}")
        _check_real(X, xp, f"the {rows}s to standardize")
        if xp.isdtype(X.dtype, "real floating"):
            bad = count_non_finite(X, xp)
            if bad:
                raise ValueError(
                    f"the {rows}s contain NaN or inf ({bad} entries); clean or impute them first"
                )
        else:  # integers and booleans (finite): standardized as the float64 they become
            X = xp.astype(X, float64)
        with backend.quiet_floating_point():  # an overflow is refused below, in one sentence
            if parallel is None:
                X64 = xp.astype(X, float64, copy=False)
                mu, sigma = xp.mean(X64, axis=1), xp.std(X64, axis=1)
            else:
                m = X.shape[1]
                lo, hi = parallel.columns(m)
                mine = xp.astype(X[:, lo:hi], float64)  # only this rank's columns: no float64 copy of all X
                mu = parallel.comm.allreduce(xp.sum(mine, axis=1)) / m
                sigma = xp.sqrt(parallel.comm.allreduce(xp.sum((mine - mu[:, None]) ** 2, axis=1)) / m)
        mean = [float(v) for v in backend.to_numpy(mu).tolist()]
        std = [float(v) for v in backend.to_numpy(sigma).tolist()]
        for i, (mu, sigma) in enumerate(zip(mean, std, strict=True)):
            if not (math.isfinite(mu) and math.isfinite(sigma)):
                raise ValueError(
                    f"{rows} {i + 1} is too large to standardize (mean {mu:.6g}, std {sigma:.6g}); "
                    "rescale it first"
                )
        # a constant row (a std within rounding of its mean, as scikit-learn's StandardScaler judges it)
        # keeps std 1; a real spread of 1e-13 (farads) is standardized like any other
        m, eps = X.shape[1], 2.0**-52
        norm = cls(
            tuple(mean), tuple(1.0 if s <= m * eps * abs(mu) else s for mu, s in zip(mean, std, strict=True))
        )
        with backend.quiet_floating_point():
            scaled = norm.apply(X, backend)
        if not bool(xp.all(xp.isfinite(scaled))):
            dtype = backend.dtype_name(X.dtype)
            raise ValueError(
                f"the standardized {rows}s cannot be represented in {dtype} (a value overflows to inf); "
                f"use float64 (dtype='float64') or rescale the {rows}s"
            )
        return norm

    @property
    def n_x(self) -> int:
        return len(self.mean)

    def apply(self, X: Array, backend: Any) -> Array:
        """(X - mean) / std for X: (n_x, m), on ``backend`` (a Backend or its name); X's dtype (a float)."""
        backend, X = self._on(backend, X, "X", "n_x, m")
        if X.shape[0] != self.n_x:
            raise ValueError(
                f"the data has {X.shape[0]} features but the normalization was fitted on {self.n_x}"
            )
        mean, std = self._columns(backend, X.dtype)
        return (X - mean) / std

    def unrepresentable(self, largest: float, smallest: float) -> int | None:
        """The first row whose mean or std a dtype whose finite values reach ``largest`` (normals down to
        ``smallest``) cannot hold (a std that would round to 0 or inf would make every standardized value
        inf), or None."""
        for i, (mu, sigma) in enumerate(zip(self.mean, self.std, strict=True)):
            if abs(mu) > largest or not smallest <= sigma <= largest:
                return i
        return None

    def invert(self, A: Array, backend: Any) -> Array:
        """A * std + mean for A: (n, m) in standardized units (a regression network's outputs), on
        ``backend`` (a Backend or its name)."""
        backend, A = self._on(backend, A, "A", "n, m")
        if A.shape[0] != self.n_x:
            raise ValueError(
                f"A has {A.shape[0]} rows (outputs) but the normalization was fitted on {self.n_x} targets; "
                "invert the outputs of the network whose targets it standardized"
            )
        mean, std = self._columns(backend, A.dtype)
        return A * std + mean

    @staticmethod
    def _on(backend: Any, A: Array, name: str, shape: str) -> tuple[Any, Array]:
        """The Backend, and ``A`` on it, or a ValueError unless A is 2-D (a rank-1 A broadcast against
        the (n, 1) columns into an (n, n) array)."""
        backend = get_backend(backend)
        A = backend.asarray(A)
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D ({shape}); got shape {tuple(A.shape)}")
        _check_real(A, backend.xp, name)
        if not backend.xp.isdtype(A.dtype, "real floating"):  # as fit: the mean and std cast to int64 were
            A = backend.xp.astype(A, backend.dtype("float64"))  # 2.5 -> 2 (array_api_strict: a TypeError)
        return backend, A

    def _columns(self, backend: Any, dtype: Any) -> tuple[Array, Array]:
        """mean and std as (n, 1) arrays on ``backend`` in ``dtype``."""
        return tuple(backend.asarray([[v] for v in values], dtype=dtype) for values in (self.mean, self.std))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        try:
            mean, std = [float(v) for v in d["mean"]], [float(v) for v in d["std"]]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # (float(10**400) overflows)
            raise ValueError(f"bad normalization record ({exc!r})") from None
        try:
            return cls(tuple(mean), tuple(std))
        except ValueError as exc:
            raise ValueError(f"bad normalization record: {exc}") from None


def _on(backend: Any, dtype: Any) -> tuple[Any, Any]:
    """The Backend for ``backend`` (one or its name) and its float32 or float64 for ``dtype``."""
    backend = get_backend(backend)
    return backend, backend.float_dtype(dtype)


# ----------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------
def read_csv_rows(path: str | Path, header: bool | None = None) -> tuple[list[list[float]], list[str] | None]:
    """The numeric rows of a comma-separated file and its header (``None`` if it has none).

    The first non-empty row is a header when ``header=True``, or by default (``None``) when none of its
    cells is a number. Every other cell must be a finite number; rows must all have the same length.

    Raises:
        ValueError: naming the file, line and column of the first bad cell.
    """
    data, names = csv_reader.read_csv(path, header)
    return data.tolist(), names


def load_csv(
    path: str | Path,
    backend: Any,
    dtype: Any = "float64",
    n_features: int | None = None,
    task: str | None = None,
    classes: list[str] | None = None,
    with_classes: bool = False,
    header: bool | None = None,
) -> Any:
    """X: (n_x, m) and Y: (1, m) from a CSV with one example per row and the label (or target) last.

    The label may be a number or a class name (text): names become the indices 0 .. C-1 of their
    sorted list (or of ``classes``, a model's names); ``with_classes=True`` returns
    ``(X, Y, class names or None)``.

    With ``n_features`` given (predicting), a file with exactly ``n_features`` columns has no label
    column and Y is ``None``. With ``task="binary"`` every label must be 0 or 1 (the first one that is
    not is named by its row); otherwise the network's head checks the labels. ``header``: whether the
    first line names the columns (``None``: decided from it, see :mod:`dlcore.backends.csv_reader`).
    """
    backend, dtype = _on(backend, dtype)
    # (m, width) float64 on the host, parsed by NumPy's C reader when it can
    data, columns, names = csv_reader.read_labeled_csv(path, classes, n_features, header)
    csv_reader.check_no_index_column(data, columns, path)
    m, width = data.shape
    has_labels = n_features is None or width != n_features  # read_labeled_csv checked the width
    if has_labels:
        if width < 2:
            raise ValueError(
                f"{path} has one column; expected features then the label (or target) in the last column"
            )
        if names is not None:  # class names: refused where they cannot be labels, by name
            _check_names(names, path, task, numeric_model=n_features is not None and not classes)
        binary = task == "binary" and names is None  # names were encoded as 0 .. C-1, C checked
        bad = csv_reader.first_outside(data[:, -1], (0.0, 1.0)) if binary else None
        if bad is not None and n_features is not None:  # predicting: maybe one feature column too many
            raise ValueError(
                f"{path} has {width} columns: the model expects {n_features} features, so the last column "
                f"would be the 0/1 label, but data row {bad + 1} has {data[bad, -1]:g} there; give "
                f"{n_features} feature columns (then optionally the 0/1 label), not {width}"
            )
        if bad is not None:
            raise ValueError(
                f"{path}: data row {bad + 1}, column {width} (the label) is {data[bad, -1]:g}; "
                "labels must be 0 or 1"
            )
    csv_reader.check_range(data, backend.dtype_name(backend.dtype(dtype)), path)
    features = data[:, :-1] if has_labels else data
    X = backend.asarray(features.T, dtype=dtype)  # rows are examples: (m, n_x) -> (n_x, m)
    Y = backend.asarray(data[:, -1:].T, dtype=dtype) if has_labels else None
    return (X, Y, names if has_labels else None) if with_classes else (X, Y)


def _check_names(names: list[str], path: Any, task: str | None, numeric_model: bool) -> None:
    """A ValueError when a CSV's class names cannot be its labels: regression targets, a model trained
    on numeric labels (predicting), or more than two names for a binary task."""
    listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    if task == "regression":
        raise ValueError(f"{path}: the last column holds class names ({listed}), not values")
    if numeric_model:  # the CLI passes a model's names; from Python, classes= may just be missing
        raise ValueError(
            f"{path}: the last column holds class names ({listed}), but no classes were given (the model "
            "holds none): leave the label column out, give numeric labels, or pass classes= the names it "
            "was trained with (load_dataset(..., with_classes=True) returns them; save them in the model "
            "with net.save(path, info={'classes': classes}), as dlcore train does)"
        )
    if task == "binary" and len(names) > 2:
        raise ValueError(
            f"{path}: the last column holds {len(names)} class names ({listed}); a binary task has two"
        )


# ----------------------------------------------------------------------------------------------
# .npz
# ----------------------------------------------------------------------------------------------
def load_npz(path: str | Path, backend: Any, dtype: Any = "float64") -> tuple[Array, Array | None]:
    """X: (n_x, m) and Y: (1, m) (or ``None`` if absent) from an ``.npz`` holding ``X`` and ``Y``.

    ``X`` may also be images ``(m, h, w, c)``, which are flattened with :func:`flatten_images`;
    ``Y`` may be ``(1, m)`` or ``(m,)``.
    """
    backend, dtype = _on(backend, dtype)
    arrays = storage.load_npz(path, "data file")
    if "X" not in arrays:
        raise ValueError(f"{path} has no array named 'X' (found: {', '.join(sorted(arrays)) or 'none'})")
    X = arrays["X"]
    _check_kind(X, "X", path)
    if X.ndim == 4:  # on the host, in the network's dtype: _numeric checks and moves it like any X
        try:
            X = flatten_images(X, dtype=backend.dtype_name(backend.dtype(dtype)))
        except ValueError:  # its advice (scale=) is for Python: no loader takes it
            raise ValueError(
                f"X in {path} holds images (m, h, w, c) with values outside 0-255, which dlcore reads as "
                "8-bit pixels: store X as (n_x, m), scaled as you want (dlcore.flatten_images(images, "
                "scale=...) flattens images in Python)"
            ) from None
    elif X.ndim != 2:
        raise ValueError(
            f"X in {path} must be 2-D (n_x, m), one example per column, or images (m, h, w, c); "
            f"got shape {tuple(X.shape)}"
        )
    X = _numeric(X, "X", path, backend, dtype)
    if X.shape[1] == 0:
        raise ValueError(f"X in {path} has no examples (shape {tuple(X.shape)}, m = 0)")
    if X.shape[0] == 0:  # it was "layer sizes must be positive integers; got [0, 4, 1]"
        raise ValueError(f"X in {path} has no features (shape {tuple(X.shape)}, n_x = 0)")
    if "Y" not in arrays:
        return X, None
    Y = arrays["Y"]
    m = X.shape[1]
    if Y.ndim == 1 and Y.shape[0] == m:
        Y = Y.reshape(1, m)
    if tuple(Y.shape) != (1, m):
        hint = " (store X as (n_x, m), one example per column: X.T)" if m != Y.size == X.shape[0] else ""
        raise ValueError(f"Y in {path} must have shape (1, m) = (1, {m}); got {tuple(Y.shape)}{hint}")
    return X, _numeric(Y, "Y", path, backend, dtype)


def _check_kind(A: Any, name: str, path: Any) -> None:
    kind = getattr(getattr(A, "dtype", None), "kind", "")
    if kind not in ("f", "i", "u", "b"):
        raise ValueError(
            f"{name} in {path} must hold numbers (real: not complex, text or dates); it holds {A.dtype}"
        )


def _numeric(A: Any, name: str, path: Any, backend: Any, dtype: Any) -> Array:
    """A host array from a data file as finite numbers of ``dtype`` on ``backend``, or a ValueError.

    Only real numbers (float, integer, boolean) are accepted, as by the Python API: complex, strings,
    dates and other kinds are refused, not converted; values beyond ``dtype``'s range are refused too."""
    _check_kind(A, name, path)
    if A.dtype.kind == "f":
        csv_reader.check_range(A, backend.dtype_name(backend.dtype(dtype)), f"{name} in {path}")
    try:
        A = backend.asarray(A, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} in {path} must hold numbers; it holds {A.dtype}") from None
    bad = count_non_finite(A, backend.xp)
    if bad:
        raise ValueError(f"{name} in {path} contains NaN or inf ({bad} entries); clean or impute them first")
    return A


# ----------------------------------------------------------------------------------------------
# One entry point
# ----------------------------------------------------------------------------------------------
def load_dataset(
    spec: str,
    backend: Any,
    *,
    seed: int = 1,
    dtype: Any = "float64",
    m: int = 400,
    n_features: int | None = None,
    task: str | None = None,
    classes: list[str] | None = None,
    with_classes: bool = False,
    header: bool | None = None,
) -> Any:
    """X: (n_x, m), Y: (1, m) from a built-in name (:data:`dlcore.datasets.DATASETS`: planar, moons,
    circles, xor, digits) or a .csv/.npz path. ``task="binary"`` checks CSV labels row by row.

    ``with_classes=True`` returns ``(X, Y, class names)``: a CSV's text labels (see :func:`load_csv`;
    ``classes``, a model's names, fixes their order), else ``None``. ``header``: a CSV's, as for
    :func:`load_csv`."""
    backend, dtype = _on(backend, dtype)
    if spec in DATASETS:
        X, Y = DATASETS[spec](backend, m=m, seed=seed, dtype=dtype)
        return (X, Y, None) if with_classes else (X, Y)
    path = Path(spec)
    suffix = path.suffix.lower()
    choices = f"{', '.join(DATASETS)} or a path to a .csv or .npz file"
    if suffix not in (".csv", ".npz"):
        if not path.exists():
            raise ValueError(f"unknown dataset {spec!r}; use {choices}")
        raise ValueError(f"cannot read {spec!r}: data files must end in .csv or .npz")
    storage.check_readable(path, "data file")
    if suffix == ".csv":
        return load_csv(path, backend, dtype, n_features, task, classes, with_classes, header)
    X, Y = load_npz(path, backend, dtype)
    return (X, Y, None) if with_classes else (X, Y)


def _check_real(A: Array, xp: Any, name: str) -> None:
    """A ValueError unless ``A`` holds real numbers (floats, integers, booleans): complex values lost
    their imaginary part without a word on numpy and torch, array_api_strict raised a TypeError."""
    if not xp.isdtype(A.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"{name} must hold real numbers; got dtype {A.dtype}")


def train_test_split(
    X: Array, Y: Array, test_fraction: float, backend: Any, seed: int = 1
) -> tuple[Array, Array, Array, Array]:
    """``X_train, Y_train, X_test, Y_test``: a seeded random split of the m columns.

    ``round(m * test_fraction)`` columns (at least one when the fraction is > 0) go to the test set;
    the permutation is drawn on the host, so a seed gives the same split on every backend.
    """
    fraction = as_float(test_fraction)  # a string or None was a TypeError of the comparison
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"test_fraction must be a number in [0, 1); got {test_fraction!r}")
    test_fraction = fraction
    seed = check_seed(seed)
    backend = get_backend(backend)
    X, Y = backend.asarray(X), backend.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or Y.shape[1] != X.shape[1]:  # a label shifted onto another example
        raise ValueError(
            f"X and Y must be 2-D with one example per column, as many in each: X: (n_x, m), Y: (1, m); "
            f"got X {tuple(X.shape)} and Y {tuple(Y.shape)}"
        )
    m = X.shape[1]
    if m == 0:
        raise ValueError(f"X has no examples to split (shape {tuple(X.shape)}, m = 0)")
    n_test = round(m * test_fraction)
    if test_fraction > 0:
        n_test = max(n_test, 1)
    if m - n_test < 1:
        raise ValueError(
            f"holding out {n_test} of {m} example{'s' if m > 1 else ''} for testing (test_fraction "
            f"{test_fraction:g}) leaves none to train on: use more examples or a smaller test_fraction"
        )
    return split_columns(X, Y, backend.rng(seed).permutation(m), n_test)


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------
def flatten_images(images: Any, backend: Any = None, dtype: Any = "float64", scale: float = 255.0) -> Array:
    """Images (m, h, w, c) -> X: (h*w*c, m), one image per column, divided by ``scale`` into [0, 1].

    The course's cat example: ``X = images.reshape(m, -1).T / 255``. Pass ``scale=1`` for images
    already in [0, 1]. With ``backend`` (a Backend or its name) the result lives there, else in the
    input's namespace.
    """
    if backend is None:  # the images' own
        try:
            backend = backend_of(images)
        except ValueError:
            raise ValueError(
                f"images must be an array of shape (m, h, w, c); got a {type(images).__name__} (pass "
                "backend= to convert it)"
            ) from None
    backend = get_backend(backend)
    scale_value = as_float(scale)
    if not (math.isfinite(scale_value) and scale_value > 0):  # 0 made every pixel NaN, inf every one 0
        raise ValueError(f"scale must be a finite number > 0 (the largest pixel value, 255); got {scale!r}")
    images, xp = backend.asarray(images), backend.xp
    _check_real(images, xp, "images")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (m, h, w, c); got shape {tuple(images.shape)}")
    m, h, w, c = images.shape
    try:  # by name, NumPy's type or the backend's own dtype object
        fdtype = backend.float_dtype(dtype)
    except ValueError:  # an integer dtype wrapped 255 to -1 in int8
        raise ValueError(
            f"dtype must be float32 or float64 (pixels become fractions); got {dtype!r}"
        ) from None
    X = xp.reshape(xp.astype(images, fdtype), (m, h * w * c)).T / scale_value  # -1 fails for m = 0
    if m and (bool(xp.any(X < 0)) or bool(xp.any(X > 1))):
        raise ValueError(
            f"pixel values must lie in [0, {scale_value:g}]; pass scale= the largest possible value"
        )
    return X
