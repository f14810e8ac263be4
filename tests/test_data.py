"""Built-in datasets, CSV/.npz loading, normalization, the train/test split and image flattening."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from dlcore.backends import get_backend

import dlcore
from dlcore.data import Normalization, flatten_images, load_csv, load_dataset, train_test_split
from dlcore.datasets import DATASETS, GENERATED
from tests.conftest import to_host

NP = get_backend("numpy")


# -- built-in datasets -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(GENERATED))
def test_builtin_datasets_are_deterministic_and_identical_on_every_backend(backend, dtype, name):
    X, Y = DATASETS[name](backend, m=101, seed=3, dtype=dtype)
    assert X.shape == (2, 101) and Y.shape == (1, 101)
    assert X.dtype == backend.dtype(dtype) and X.device == backend.device == Y.device
    ref_X, ref_Y = DATASETS[name](NP, m=101, seed=3, dtype=dtype)
    np.testing.assert_array_equal(to_host(backend, X), ref_X)
    np.testing.assert_array_equal(to_host(backend, Y), ref_Y)
    other, _ = DATASETS[name](NP, m=101, seed=4, dtype=dtype)
    assert not np.array_equal(other, ref_X)
    assert set(np.unique(ref_Y)) == {0.0, 1.0}


def test_dataset_geometry():
    X, Y = DATASETS["xor"](NP, m=300)
    np.testing.assert_array_equal(Y[0], (X[0] * X[1] < 0).astype(float))  # the xor rule
    X, Y = DATASETS["circles"](NP, m=300)
    r = np.hypot(X[0], X[1])
    assert abs(r[Y[0] == 0].mean() - 1.0) < 0.05 and abs(r[Y[0] == 1].mean() - 0.5) < 0.05
    X, Y = DATASETS["moons"](NP, m=300)
    assert X[1, Y[0] == 0].mean() > X[1, Y[0] == 1].mean()  # upper moon is class 0
    X, Y = DATASETS["planar"](NP, m=300)
    assert Y.sum() == 150


# -- CSV -------------------------------------------------------------------------------------------
def _write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize("header", ["x1,x2,label\n", ""])
def test_csv_rows_become_columns(backend, tmp_path, header):
    path = _write(tmp_path / "d.csv", header + "1.5, 2,1\n\n-3,4e-1,0\n5,6,1\n")
    X, Y = load_dataset(str(path), backend)
    np.testing.assert_array_equal(to_host(backend, X), [[1.5, -3, 5], [2, 0.4, 6]])
    np.testing.assert_array_equal(to_host(backend, Y), [[1, 0, 1]])
    assert X.device == backend.device


def test_csv_without_labels_when_the_model_says_so(tmp_path):
    path = _write(tmp_path / "d.csv", "1,2\n3,4\n")
    X, Y = load_dataset(str(path), NP, n_features=2)
    assert Y is None and X.shape == (2, 2)
    X, Y = load_dataset(str(_write(tmp_path / "e.csv", "1,2,0\n3,4,1\n")), NP, n_features=2)
    assert Y.shape == (1, 2)
    # "the 0/1 label" was said to regression and multi-class models too
    with pytest.raises(ValueError, match=r"has 4 columns but the model expects 2 features \(or 3 columns "
                       r"with the label, or a single target, last\)$"):  # fmt: skip
        load_dataset(str(_write(tmp_path / "f.csv", "1,2,3,0\n")), NP, n_features=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,y\n1,2,1\n3,x,0\n", r"bad\.csv, line 3, column 2: 'x' is not a number"),
        ("1,2,1\n3,,0\n", r"bad\.csv, line 2, column 2: '' is not a number"),
        ("1,2,1\n3,4,0,9\n", r"bad\.csv, line 2: expected 3 columns .* got 4"),
        ("1,2,1\n3,nan,0\n", r"bad\.csv, line 2, column 2: 'nan' is not finite"),
        ("x,y\n\n", r"bad\.csv holds no data rows; expected one example per row, its label or target last$"),
        ("1\n0\n", r"bad\.csv has one column; expected features then the label \(or target\) in the last "),
    ],
)
def test_malformed_csv_names_file_line_and_column(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(path), NP)


def test_class_names_that_look_like_numbers_keep_their_text(tmp_path):
    """Once one label is a name all are, as written: 1234567 and 1234568 once both became '1.23457e+06'
    (one class), and 007 and 7 one class '7'."""
    path = _write(tmp_path / "n.csv", "x,y\n1,1234567\n2,1234568\n3,other\n4,007\n5,7\n")
    X, Y, classes = load_csv(str(path), NP, with_classes=True)
    assert classes == ["007", "1234567", "1234568", "7", "other"]
    assert Y.tolist() == [[1.0, 2.0, 4.0, 0.0, 3.0]]


def test_predicting_reads_labels_as_the_models_kind(tmp_path):
    """A model trained on names reads every label as a name, even a file whose labels all look like
    numbers (they were read as class indices: '2' came out as the third class); a model trained on
    numbers refuses names instead of mapping them to indices; a features-only file holds numbers."""
    path = _write(tmp_path / "sub.csv", "a,b,g\n0.1,0.4,2\n0.2,1.4,1\n")
    _, Y, classes = load_csv(str(path), NP, n_features=2, classes=["1", "2", "three"], with_classes=True)
    assert Y.tolist() == [[1.0, 0.0]] and classes == ["1", "2", "three"]
    named = _write(tmp_path / "named.csv", "0.1,0.4,cat\n0.2,1.4,dog\n")
    with pytest.raises(
        ValueError,
        match=r"holds class names \(cat, dog\), but no classes were given \(the model holds none\): "
        r"leave the label column out, give numeric labels, or pass classes= the names it was trained with "
        r"\(load_dataset\(\.\.\., with_classes=True\) returns them; save them in the model with "
        r"net\.save\(path, info=\{'classes': classes\}\), as dlcore train does\)$",
    ):
        load_csv(str(named), NP, n_features=2)
    with pytest.raises(
        ValueError, match=r"data row 2, column 2 is 'x', not a number \(the model's 2 features"
    ):
        load_csv(str(_write(tmp_path / "f.csv", "0.1,0.4\n0.2,x\n")), NP, n_features=2, classes=["a", "b"])
    wide = _write(tmp_path / "w.csv", "0.1,0.4,0.5,1\n")  # the width is checked first, names or not
    with pytest.raises(ValueError, match=r"has 4 columns but the model expects 2 features"):
        load_csv(str(wide), NP, n_features=2, classes=["a", "b"])


def test_underscores_are_not_digit_separators_in_csv(tmp_path):
    """Python's float reads '1_0' as 10; NumPy's reader (the fast path) refuses it, and so does the
    cell-by-cell pass, which once read it."""
    with pytest.raises(ValueError, match=r"u\.csv, line 2, column 1: '1_0' is not a number"):
        load_dataset(str(_write(tmp_path / "u.csv", "a,b,y\n1_0,2,1\n3,4,0\n")), NP)


def test_binary_csv_labels_are_checked_row_by_row(tmp_path):
    path = _write(tmp_path / "bad.csv", "1,2,1\n3,4,2\n")
    message = r"bad\.csv: data row 2, column 3 \(the label\) is 2; labels must be 0 or 1"
    with pytest.raises(ValueError, match=message):
        load_dataset(str(path), NP, task="binary")
    X, Y = load_dataset(str(path), NP)  # without a task, any label loads: the network's head checks it
    assert Y.tolist() == [[1.0, 2.0]]


def test_bad_dataset_specs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'spiral'; use planar, moons"):
        load_dataset("spiral", NP)
    with pytest.raises(ValueError, match=r"no such data file: .*missing\.csv"):
        load_dataset(str(tmp_path / "missing.csv"), NP)
    with pytest.raises(ValueError, match=r"must end in \.csv or \.npz"):
        load_dataset(str(_write(tmp_path / "d.txt", "1,2,0\n")), NP)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ValueError, match=r"is a directory"):
        load_dataset(str(tmp_path / "dir.csv"), NP)
    (tmp_path / "latin.csv").write_bytes(b"\xff\xfe1,2\n")
    with pytest.raises(ValueError, match=r"not a UTF-8 text CSV"):
        load_dataset(str(tmp_path / "latin.csv"), NP)


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_file_that_cannot_be_opened_says_why(tmp_path, suffix):
    """An .npz that could not be opened (a permission denied, here a socket: root reads any file) was
    "not a zip archive, or truncated"; a CSV raised the OSError's traceback."""
    import socket

    path = tmp_path / f"d{suffix}"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        with pytest.raises(ValueError, match=rf"^cannot read {re.escape(str(path))}: No such device"):
            load_dataset(str(path), NP)


# -- .npz ------------------------------------------------------------------------------------------
def test_npz_data(backend, tmp_path, host_rng):
    X = host_rng.standard_normal((3, 7))
    Y = (host_rng.random(7) > 0.5).astype(float)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)  # rank-1 Y is accepted from files
    gx, gy = load_dataset(str(tmp_path / "d.npz"), backend, dtype="float32")
    np.testing.assert_array_equal(to_host(backend, gx), X.astype(np.float32))
    np.testing.assert_array_equal(to_host(backend, gy), Y.reshape(1, 7))
    np.savez(tmp_path / "x.npz", X=X)
    assert load_dataset(str(tmp_path / "x.npz"), backend)[1] is None


def test_npz_images_are_flattened(backend, dtype, tmp_path, host_rng):
    """On every backend (torch and array_api_strict once refused the flattened images as not numbers)."""
    images = host_rng.integers(0, 256, (5, 4, 3, 3), dtype=np.uint8)
    np.savez(tmp_path / "cats.npz", X=images, Y=np.array([[1, 0, 1, 1, 0]]))
    X, Y = load_dataset(str(tmp_path / "cats.npz"), backend, dtype=dtype)
    assert X.device == backend.device and X.dtype == backend.dtype(dtype)
    want = images.reshape(5, -1).T.astype(dtype) / np.asarray(255, dtype)  # the course's reshape, in dtype
    np.testing.assert_array_equal(to_host(backend, X), want)


def test_npz_images_beyond_8_bits_name_the_file_and_a_fix_that_works_there(tmp_path, host_rng):
    """12-bit images said "pass scale= the largest possible value", which no loader or CLI option takes."""
    path = tmp_path / "img16.npz"
    np.savez(path, X=host_rng.integers(0, 4096, (30, 4, 4, 1), dtype=np.uint16), Y=np.zeros(30))
    with pytest.raises(ValueError, match=rf"^X in {re.escape(str(path))} holds images \(m, h, w, c\) with "):
        load_dataset(str(path), NP)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"A": np.ones((2, 3))}, r"has no array named 'X' \(found: A\)"),
        ({"X": np.ones(3)}, r"X in .* must be 2-D \(n_x, m\)"),
        ({"X": np.ones((2, 5)), "Y": np.ones((2, 5))}, r"Y in .* must have shape \(1, m\) = \(1, 5\)"),
        ({"X": np.ones((5, 2)), "Y": np.ones((1, 5))}, r"one example per column: X\.T"),
        ({"X": np.array([object(), 1], dtype=object)}, r"holds Python objects, which dlcore never unpickles"),
        # was "layer sizes must be positive integers; got [0, 4, 1]" from the CLI, whose --layers it names
        (
            {"X": np.zeros((0, 5)), "Y": np.zeros((1, 5))},
            r"X in .* has no features \(shape \(0, 5\), n_x = 0\)$",
        ),
    ],
)
def test_bad_npz_data(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(tmp_path / "d.npz"), NP)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Measurements of 2024\n1,2,0\n3,4,1\n", r"line 2: the header on line 1 names 1 column but "),
        (
            "x1,x2\n1,2,0\n3,4,1\n",
            r"line 2: the header on line 1 names 2 columns but this row has 3; name every column \(the "
            r"label's too\) or delete the header line$",
        ),
        ("x1,x2,y\n1,2,0\n3,4\n", r"line 3: expected 3 columns like the rows above, got 2$"),
        (  # wider: Excel's trailing comma; the header already names every column
            "x1,x2,y,\n1,2,0\n3,4,1\n",
            r"line 2: the header on line 1 names 4 columns but this row has 3; remove the extra names \(or a "
            r"trailing comma\), or add the missing columns$",
        ),
    ],
)
def test_a_header_narrower_than_the_rows_is_named_as_the_header(tmp_path, text, message):
    """It said "expected 2 columns like the rows above" of line 2, whose only row above was the header
    (a header without the label's name is common)."""
    _write(tmp_path / "d.csv", text)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(tmp_path / "d.csv"), NP)


def test_a_value_beyond_every_float_offers_no_wider_dtype(tmp_path):
    """A long double of 1e400 was "inf, beyond float64's range ...; use dtype='float64'", the dtype in use
    (and for float32, a float64 that cannot hold it either)."""
    X = np.ones((2, 3), dtype=np.longdouble)
    X[0, 1] = np.longdouble("1e400")
    if not np.isfinite(X[0, 1]):
        pytest.skip("this platform's long double is float64")
    np.savez(tmp_path / "d.npz", X=X, Y=np.zeros((1, 3)))
    for dtype in ("float64", "float32"):
        pattern = (
            rf"data row 1, column 2 is 1e\+400, beyond {dtype}'s range \(\+-[^)]*\); rescale the feature$"
        )
        with pytest.raises(ValueError, match=pattern):
            load_dataset(str(tmp_path / "d.npz"), NP, dtype=dtype)
    np.savez(tmp_path / "e.npz", X=np.full((2, 3), -1.5e39), Y=np.zeros((1, 3)))
    with pytest.raises(
        ValueError, match=r"is -1\.5e\+39, beyond float32's range .*; use dtype='float64', or"
    ):
        load_dataset(str(tmp_path / "e.npz"), NP, dtype="float32")


def test_a_text_file_called_npz_is_refused(tmp_path):
    _write(tmp_path / "d.npz", "not an archive")
    with pytest.raises(ValueError, match=r"d\.npz is not a data file in \.npz format"):
        load_dataset(str(tmp_path / "d.npz"), NP)


# -- normalization and split -----------------------------------------------------------------------
def test_normalization_against_numpy(backend, host_rng):
    host = host_rng.standard_normal((3, 50)) * [[1.0], [10.0], [0.0]] + [[5.0], [-2.0], [7.0]]
    X = backend.asarray(host)
    norm = Normalization.fit(X, backend)
    np.testing.assert_allclose(norm.mean, host.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(norm.std[:2], host.std(axis=1)[:2], rtol=1e-12)
    assert norm.std[2] == 1.0  # a constant feature is only centred
    Z = to_host(backend, norm.apply(X, backend))
    np.testing.assert_allclose(Z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=1), [1, 1, 0], atol=1e-12)
    assert Normalization.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="the data has 2 features but the normalization was fitted on 3"):
        norm.apply(backend.asarray(host[:2]), backend)


def test_a_tiny_spread_is_standardized_and_a_constant_row_of_any_size_is_not(backend, host_rng):
    """Capacitances near 1e-12 farads spreading 1e-13 were taken for a constant (std <= 1e-12 became 1)
    and left unscaled: 54% accuracy where StandardScaler's data reached 100%. Constants of any magnitude,
    whose computed std is rounding, still keep std 1. Oracle: NumPy's std."""
    cap = 1e-12 + 1e-13 * host_rng.standard_normal(400)
    host = np.vstack([cap, np.full(400, 1e6), np.full(400, 0.1), np.zeros(400)])
    norm = Normalization.fit(backend.asarray(host), backend)
    assert norm.std[0] == pytest.approx(cap.std(), rel=1e-9) and norm.std[1:] == (1.0, 1.0, 1.0)
    Z = to_host(backend, norm.apply(backend.asarray(host), backend))
    assert Z[0].std() == pytest.approx(1.0, rel=1e-9)


def test_split_is_a_seeded_partition_identical_on_every_backend(backend):
    m = 50
    X = backend.asarray(np.stack([np.arange(m), -np.arange(m)]).astype(float))
    Y = backend.asarray((np.arange(m) % 2).reshape(1, m).astype(float))
    Xtr, Ytr, Xte, Yte = (to_host(backend, a) for a in train_test_split(X, Y, 0.2, backend, seed=5))
    assert Xtr.shape == (2, 40) and Xte.shape == (2, 10) and Ytr.shape == (1, 40) and Yte.shape == (1, 10)
    ids = np.concatenate([Xtr[0], Xte[0]])
    assert sorted(ids) == list(range(m))  # disjoint and complete
    np.testing.assert_array_equal(Xtr[1], -Xtr[0])  # columns stay whole
    np.testing.assert_array_equal(Ytr[0], Xtr[0] % 2)
    ref = train_test_split(np.asarray(to_host(backend, X)), np.asarray(to_host(backend, Y)), 0.2, NP, 5)
    np.testing.assert_array_equal(Xte, ref[2])
    other = train_test_split(to_host(backend, X), to_host(backend, Y), 0.2, NP, 6)[2]
    assert not np.array_equal(other, Xte)
    assert train_test_split(X, Y, 0.0, backend)[2].shape == (2, 0)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"test_fraction must be a number in \[0, 1\)"):
            train_test_split(X, Y, bad, backend)


def test_a_split_refuses_x_and_y_of_different_m_on_every_backend(backend):
    """Y one label longer was cut to X's m without a word (every later label on another example's
    column, and fit's own check saw consistent shapes); one shorter was an IndexError or, on torch, a
    RuntimeError."""
    X = backend.asarray(np.zeros((2, 400)))
    for shape in ((1, 401), (1, 399), (400,)):
        with pytest.raises(
            ValueError, match=rf"^X and Y must be 2-D .* got X \(2, 400\) and Y {re.escape(str(shape))}$"
        ):
            train_test_split(X, backend.asarray(np.zeros(shape)), 0.2, backend)
    with pytest.raises(ValueError, match=r"^X has no examples to split \(shape \(2, 0\), m = 0\)$"):
        train_test_split(np.zeros((2, 0)), np.zeros((1, 0)), 0.0, backend)
    for m, fraction, n_test in ((1, 0.2, 1), (5, 0.9999, 5)):  # the fraction as given, not "100%"
        pattern = (
            rf"^holding out {n_test} of {m} examples? for testing \(test_fraction {fraction:g}\) leaves "
            r"none to train on: use more examples or a smaller test_fraction$"
        )
        with pytest.raises(ValueError, match=pattern):
            train_test_split(np.zeros((2, m)), np.zeros((1, m)), fraction, backend)
    with pytest.raises(ValueError, match=r"^seed must be None or an integer >= 0"):
        train_test_split(X, backend.asarray(np.zeros((1, 400))), 0.2, backend, seed=-1)


@pytest.mark.parametrize("name", GENERATED)
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"m": 0}, r"m must be an integer >= 1; got 0"),
        ({"m": -1}, r"m must be an integer >= 1; got -1"),
        ({"m": 2.5}, r"m must be an integer >= 1; got 2\.5"),
        ({"m": True}, r"m must be an integer >= 1; got True"),
        ({"seed": -1}, r"seed must be None or an integer >= 0 \(e\.g\. seed=1\); got -1"),
        ({"seed": "1"}, r"seed must be None or an integer >= 0 \(e\.g\. seed=1\); got '1'"),
    ],
)
def test_generated_sets_check_m_and_seed_in_one_sentence(name, kwargs, pattern):
    """NumPy's own errors came through ("negative dimensions are not allowed", a TypeError from
    SeedSequence), m = 0 gave empty arrays, and m=True one example (a TypeError on xor)."""
    with pytest.raises(ValueError, match=f"^{pattern}$"):
        DATASETS[name](NP, **kwargs)


# -- images ----------------------------------------------------------------------------------------
def test_flatten_images_is_the_course_reshape(backend, host_rng):
    images = host_rng.integers(0, 256, (6, 5, 4, 3), dtype=np.uint8)
    X = flatten_images(images, backend)
    assert X.shape == (5 * 4 * 3, 6) and X.device == backend.device
    host = to_host(backend, X)
    np.testing.assert_allclose(host, images.reshape(images.shape[0], -1).T / 255.0)
    np.testing.assert_allclose(host[:, 2], images[2].ravel() / 255.0)  # column i is image i
    assert 0.0 <= host.min() and host.max() <= 1.0
    np.testing.assert_allclose(flatten_images(images / 255.0, scale=1.0), host)


def test_flatten_images_refusals():
    with pytest.raises(ValueError, match=r"images must have shape \(m, h, w, c\)"):
        flatten_images(np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match=r"pixel values must lie in \[0, 255\]"):
        flatten_images(np.full((1, 2, 2, 1), 300.0))
    # int8 wrapped 255 to -1, then blamed the pixels; a nested list raised array_api_compat's TypeError
    with pytest.raises(ValueError, match=r"^dtype must be float32 or float64 \(pixels become fractions\)"):
        flatten_images(np.full((1, 2, 2, 1), 255, dtype=np.uint8), dtype="int8")
    with pytest.raises(ValueError, match=r"^images must be an array of shape \(m, h, w, c\); got a list"):
        flatten_images([[[[0]]]])


def test_flatten_images_takes_a_dtype_as_a_network_does(backend):
    """By name, NumPy's type or the backend's own dtype object (torch.float32 was refused for a while)."""
    images = np.full((2, 2, 2, 1), 255, dtype=np.uint8)
    for dtype in ("float32", np.float32, backend.dtype("float32")):
        X = flatten_images(images, backend, dtype=dtype)
        assert backend.dtype_name(X.dtype) == "float32" and float(backend.xp.max(X)) == 1.0
    own = backend.asarray(images)  # no backend=: the images' own namespace
    assert backend.dtype_name(flatten_images(own, dtype=backend.dtype("float32")).dtype) == "float32"
    with pytest.raises(ValueError, match=r"^dtype must be float32 or float64 \(pixels become fractions\)"):
        flatten_images(images, backend, dtype="int8")


def test_flatten_images_of_no_images_is_an_empty_x(backend):
    """m = 0 raised NumPy's "cannot reshape array of size 0 into shape (0,newaxis)"."""
    X = flatten_images(np.zeros((0, 2, 3, 1), dtype=np.uint8), backend, dtype=np.float32)
    assert tuple(X.shape) == (6, 0) and backend.dtype_name(X.dtype) == "float32"


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, np.nan, 2.0], [0.0, 1.0, np.inf]]), r"features contain NaN or inf \(2 entries\)"),
        (np.ones((2, 0)), r"must be \(n, m\) with m > 0; got \(2, 0\)"),
        (np.ones(3), r"must be \(n, m\) with m > 0; got \(3,\)"),
    ],
)
def test_normalization_refuses_data_it_cannot_standardize_naming_why(backend, X, message):
    """NaN was reported as "too large to standardize (mean nan): rescale it first"."""
    with pytest.raises(ValueError, match=message):
        Normalization.fit(backend.asarray(X), backend)


def test_the_data_helpers_take_a_backend_name_and_host_data(backend):
    """They took only a Backend object and arrays already on it (a name was an AttributeError)."""
    name = backend.spec()
    X, Y = load_dataset("planar", name, dtype=np.float32)
    assert X.dtype == backend.xp.float32 and backend.owns(X)
    hX, hY = to_host(backend, X), to_host(backend, Y)
    assert Normalization.fit(hX, name) == Normalization.fit(X, backend)
    assert Normalization.fit(hX.tolist(), name) == Normalization.fit(X, backend)
    split, want_split = train_test_split(hX, hY, 0.25, name), train_test_split(X, Y, 0.25, backend)
    for got, want in zip(split, want_split, strict=True):
        assert backend.owns(got)
        np.testing.assert_array_equal(to_host(backend, got), to_host(backend, want))
    with pytest.raises(ValueError, match=r"unsupported dtype 'int64'"):
        load_dataset("planar", name, dtype="int64")
    # and the two that took a Backend object only (a name: "'str' object has no attribute ...")
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
    X = flatten_images(images, name, dtype="float32")
    assert backend.owns(X) and X.dtype == backend.xp.float32
    # within an ulp: PyTorch on CUDA divides by a scalar as a multiply by its reciprocal (seen on an H200)
    want = images.reshape(2, -1).T.astype(np.float32) / 255
    np.testing.assert_allclose(to_host(backend, X), want, rtol=np.finfo(np.float32).eps, atol=0)
    params = dlcore.initialize_parameters([2, 4, 1], "small", name, seed=1, dtype="float64")
    want = dlcore.initialize_parameters([2, 4, 1], "small", backend, seed=1, dtype="float64")
    for k in want:
        assert backend.owns(params[k])
        np.testing.assert_array_equal(to_host(backend, params[k]), to_host(backend, want[k]))


def test_normalization_of_integer_data_is_computed_in_float64(backend):
    """Integer counts (whose standardized values need a float) fit like their float64 copy; it refused
    them as "cannot be represented in int64" (the check cast the mean and std to the data's dtype)."""
    counts = np.array([[1, 2, 2, 1, 2], [10, 0, 30, 20, 40]])
    norm = Normalization.fit(backend.asarray(counts), backend, rows="target")
    assert norm == Normalization.fit(backend.asarray(counts.astype(np.float64)), backend, rows="target")
    np.testing.assert_allclose(norm.mean, counts.mean(axis=1), rtol=1e-15)
    np.testing.assert_allclose(norm.std, counts.std(axis=1), rtol=1e-15)
    # booleans too (array_api_strict's isfinite refused them)
    flags = np.array([[True, False, True], [False, False, True]])
    assert Normalization.fit(backend.asarray(flags), backend) == Normalization.fit(flags * 1.0, NP)


def test_apply_and_invert_take_what_fit_takes_and_refuse_a_rank_1_x(backend):
    """apply and invert took a Backend object and arrays on it only (a name: AttributeError; NumPy data
    on torch: TypeError), and a rank-1 X broadcast against the (n, 1) columns into an (n, n) array."""
    X = np.array([[1.0, 2.0, 4.0], [3.0, 0.0, 3.0]])
    norm = Normalization.fit(X, NP)
    want = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    for where in (backend, backend.spec()):
        got = norm.apply(X, where)
        assert backend.owns(got)
        np.testing.assert_allclose(to_host(backend, got), want, rtol=1e-15)
        np.testing.assert_allclose(to_host(backend, norm.invert(want, where)), X, rtol=1e-15)
    with pytest.raises(ValueError, match=r"^X must be 2-D \(n_x, m\); got shape \(2,\)$"):
        norm.apply(np.array([2.0, 5.0]), backend)
    with pytest.raises(ValueError, match=r"^A must be 2-D \(n, m\); got shape \(2,\)$"):
        norm.invert(np.array([2.0, 5.0]), backend)
    pattern = (
        r"^A has 3 rows \(outputs\) but the normalization was fitted on 2 targets; invert the outputs of "
        r"the network whose targets it standardized$"
    )
    with pytest.raises(ValueError, match=pattern):
        norm.invert(np.ones((3, 4)), backend)
    # integers (a plain list too) as fit takes them: the mean and std were cast to int64 (2.5 -> 2)
    counts = Normalization.fit([[1, 2, 3, 4]], NP)
    want = (np.arange(1.0, 5.0) - 2.5) / np.std(np.arange(1.0, 5.0))
    np.testing.assert_allclose(to_host(backend, counts.apply([[1, 2, 3, 4]], backend))[0], want, rtol=1e-15)
    np.testing.assert_allclose(
        to_host(backend, counts.invert([[1, 2]], backend))[0], [3.618034, 4.736068], rtol=1e-6
    )


def test_a_feature_too_large_to_standardize_is_one_line_without_a_warning(tmp_path, capsys):
    """NumPy's "overflow encountered in square" came first, as a second line on stderr."""
    from dlcore.cli import main

    path = tmp_path / "huge.csv"
    path.write_text("x1,x2,y\n1,1e300,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert main(["train", "--backend", "numpy", "--dataset", str(path), "--test-fraction", "0"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("dlcore: error: feature 2 is too large to standardize") and len(err.splitlines()) == 1
    )


@pytest.mark.parametrize("marker", ["NA", "N/A", "#N/A", "null", "None", "?", "na"])
@pytest.mark.parametrize("labels", ["0.5,1.25,-2.0,", "0,1,1,", "cat,dog,cat,"])
def test_a_missing_label_is_refused_naming_its_line_not_read_as_a_class(tmp_path, marker, labels):
    """R's NA in one row of real-valued targets made every target a class (60 classes, exit 0), and in a
    0/1 file a third class "NA" that predict then wrote as probability_NA."""
    rows = [f"{i},{-i},{y}" for i, y in enumerate(labels.split(","))]
    rows[2] = rows[2].rsplit(",", 1)[0] + "," + marker
    path = _write(tmp_path / "d.csv", "\n".join(rows) + "\n")
    message = (
        rf"d\.csv, line 3, column 3 \(the label\): '{re.escape(marker)}' is a missing value, not a class"
    )
    with pytest.raises(ValueError, match=message):
        load_csv(path, "numpy")


# -- which first line is a header ---------------------------------------------------------------------
def test_a_text_label_above_numeric_labels_is_the_header(tmp_path):
    """pandas' ``to_csv(index=False)`` of features named 0, 1, 2 and a column "label": the line was a data
    row and "label" a third class (m = 4, classes 0, 1, label)."""
    path = _write(tmp_path / "p.csv", "0,1,2,label\n0.5,1,2,1\n3,4,5,0\n6,7,8,1\n")
    with pytest.warns(
        UserWarning, match=r"line 1 is read as column names, its label 'label' .* header=False"
    ):
        X, Y, classes = load_csv(str(path), NP, with_classes=True)
    assert classes is None and X.tolist() == [[0.5, 3, 6], [1, 4, 7], [2, 5, 8]] and Y.tolist() == [[1, 0, 1]]
    names = _write(tmp_path / "n.csv", "1,2,cat\n3,4,dog\n5,6,cat\n")  # every label a name: no header
    assert load_csv(str(names), NP, with_classes=True)[2] == ["cat", "dog"]
    few = _write(tmp_path / "f.csv", "1,2,cat\n3,4,0\n")  # one numeric label below: too few to tell
    assert load_csv(str(few), NP, with_classes=True)[2] == ["0", "cat"]
    model = _write(tmp_path / "m.csv", "1,2,cat\n3,4,007\n5,6,007\n")  # a model's names look like numbers
    _, Y, _ = load_csv(str(model), NP, n_features=2, classes=["007", "cat"], with_classes=True)
    assert Y.tolist() == [[1, 0, 0]]


def test_header_says_whether_the_first_line_names_the_columns(tmp_path):
    numbered = _write(tmp_path / "c.csv", "0,1,2\n0.5,1,1\n3,4,0\n")  # pandas' default column names
    with pytest.warns(
        UserWarning, match=r"line 1 holds the column numbers 0 \.\. 2, read as data; pass header=True"
    ):
        X, _ = load_dataset(str(numbered), NP)
    assert X.shape == (2, 3)
    X, Y = load_dataset(str(numbered), NP, header=True)
    assert X.tolist() == [[0.5, 3], [1, 4]] and Y.tolist() == [[1, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_dataset(str(numbered), NP, header=False)[0].shape == (2, 3)
    named = _write(tmp_path / "h.csv", "f1,2020,c,y\n1,2,3,1\n4,5,6,0\n")  # a header with a number in it
    with pytest.raises(ValueError, match=r"line 1, column 1: 'f1' is not a number .* or pass header=True"):
        load_dataset(str(named), NP)
    assert load_dataset(str(named), NP, header=True)[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    text = _write(tmp_path / "t.csv", "a,b,y\n1,2,1\n")
    with pytest.raises(ValueError, match=r"line 1, column 1: 'a' is not a number"):
        load_dataset(str(text), NP, header=False)


def test_class_names_for_a_numeric_model_are_named_before_the_label_check(tmp_path):
    """Predicting with a binary model on a file of names: the error named a class index ('data row 2
    has 2 there') instead of the names."""
    path = _write(tmp_path / "n.csv", "1,2,3,cat\n2,3,3,dog\n3,3,3,bird\n")
    with pytest.raises(ValueError, match=r"holds class names \(bird, cat, dog\), but no classes were given"):
        load_csv(str(path), NP, n_features=3, task="binary")
    with pytest.raises(ValueError, match=r"class names \(bird, cat, dog\)"):
        load_csv(str(path), NP, task="binary")


def test_data_helpers_refuse_what_they_would_turn_into_other_data(backend):
    """Complex data lost its imaginary part without a word (numpy, torch; array_api_strict raised a
    TypeError); scale=0 made every pixel NaN, inf every one 0; a NaN noise made NaN X (reported later as
    "X contains NaN"), a negative one was drawn as its absolute value; a string fraction was a TypeError."""
    from dlcore.datasets import circles, moons

    complex_host = np.asarray([[1 + 2j, 3 + 0j, 5 - 1j]])
    cases = [
        (
            lambda: Normalization.fit(complex_host, backend),
            r"^the features to standardize must hold real numbers",
        ),
        (lambda: Normalization((0.0,), (1.0,)).apply(complex_host, backend), r"^X must hold real numbers"),
        (
            lambda: flatten_images(np.zeros((2, 2, 2, 1), np.complex64), backend),
            r"^images must hold real numbers",
        ),
        (
            lambda: flatten_images(np.zeros((2, 2, 2, 1), np.uint8), backend, scale=0),
            r"^scale must be a finite",
        ),
        (
            lambda: flatten_images(np.zeros((2, 2, 2, 1), np.uint8), backend, scale=-255),
            r"^scale must be a finite",
        ),
        (lambda: moons(backend, m=6, noise=float("nan")), r"^noise must be a finite number >= 0; got nan$"),
        (lambda: moons(backend, m=6, noise=-0.1), r"^noise must be a finite number >= 0; got -0\.1$"),
        (lambda: circles(backend, m=6, factor=0), r"^factor must be a finite number > 0"),
        (
            lambda: train_test_split(np.ones((2, 9)), np.ones((1, 9)), None, backend),
            r"^test_fraction must be",
        ),
    ]
    for call, refused in cases:
        with pytest.raises(ValueError, match=refused):
            call()
    X_tr, _, X_te, _ = train_test_split(np.ones((2, 10)), np.ones((1, 10)), np.float64(0.2), backend)
    assert (X_tr.shape[1], X_te.shape[1]) == (8, 2)
    assert flatten_images(np.full((2, 1, 1, 1), 255, np.uint8), backend, scale=np.int64(255)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"^pixel values must lie in \[0, 255\]"):  # a formatting error
        flatten_images(np.full((1, 2, 2, 1), 300.0), backend, scale="255")
    with pytest.raises(
        ValueError, match=r"^factor must be a finite number > 0 \(the inner ring's radius\); got -1$"
    ):
        circles(backend, m=6, factor=-1)  # it said ">= 0", then "> 0" of 0
