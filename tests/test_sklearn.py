"""dlcore.sklearn: DLClassifier and DLRegressor through scikit-learn's own checks and the ways users
reach for them (string labels, Pipeline + StandardScaler, GridSearchCV, clone, pickle, partial_fit).

scikit-learn's ``parametrize_with_checks`` runs every check of the installed version. Checks that skip
themselves, and why (none is skipped by us):

- ``check_array_api_input``: runs only when ``SCIPY_ARRAY_API=1`` is set before SciPy is imported; dlcore
  chooses its array library with ``backend=`` instead (tested below on every backend).
- ``check_classifier_data_not_an_array`` / ``check_regressor_data_not_an_array``: need pandas, which is
  not a dependency of dlcore; they run where pandas is installed.

May fail (xfail, not strict: it depends on the rows drawn), for the float32 regressor only: the two
invariance checks (see ``_expected_failures``).
"""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from dlcore import Adam, MixedPrecision, Network  # noqa: E402
from dlcore.sklearn import FIT_OPTIONS, DLClassifier, DLRegressor  # noqa: E402

CHECKED = [
    DLClassifier(random_state=0, backend="numpy", iterations=300),
    DLRegressor(random_state=0, backend="numpy", iterations=300),
    DLRegressor(random_state=0, backend="numpy", iterations=300, dtype="float32"),  # float64 X: float64 out
]


def _expected_failures(estimator) -> dict[str, str]:
    """A float32 network answers float64 X in float64 (check_regressor_multioutput asks that), with
    float32's rounding: predictions of a subset or of shuffled rows differ by ~1e-7, which the two
    invariance checks, at float64's tolerance, refuse when the BLAS blocks the rows differently."""
    if estimator.get_params()["dtype"] != "float32":
        return {}
    why = "a float32 network's predictions, reported in float64: float32's rounding (~1e-7)"
    return {"check_methods_sample_order_invariance": why, "check_methods_subset_invariance": why}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failures)  # xfails not strict
def test_scikit_learn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def test_string_labels_probabilities_and_the_fitted_attributes(iris):
    X, y = iris
    clf = DLClassifier(hidden_layer_sizes=(16,), random_state=0, backend="numpy").fit(X, y)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert clf.predict(X).dtype == y.dtype and clf.score(X, y) > 0.95
    assert list(clf.predict(X[:3])) == list(clf.classes_[proba[:3].argmax(axis=1)])
    assert clf.n_iter_ == 1000 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.network_.task == "multiclass" and clf.network_.layer_dims == [4, 16, 3]
    assert clf.n_features_in_ == 4


def test_float32_probabilities_sum_to_one_as_log_loss_checks(iris):
    """A float32 softmax's rows, cast to float64, summed to 1 within ~1e-7: scikit-learn's log_loss (so
    GridSearchCV or cross_val_score with scoring='neg_log_loss') warned "do not sum to one" every call."""
    from sklearn.metrics import log_loss

    X, y = iris
    clf = DLClassifier(hidden_layer_sizes=(16,), iterations=200, dtype="float32", random_state=0)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=4 * np.finfo(np.float64).eps)
    P32 = clf.network_.backend.to_numpy(clf.network_.predict_proba(X.T.astype(np.float32))).T
    np.testing.assert_allclose(proba, P32, rtol=1e-6)  # the network's own, renormalized
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba, labels=clf.classes_)


def test_two_classes_use_a_sigmoid_and_give_two_columns(iris):
    X, y = iris
    yes = np.where(y == "setosa", "yes", "no")
    clf = DLClassifier(random_state=0, backend="numpy").fit(X, yes)
    assert clf.network_.task == "binary" and clf.classes_.tolist() == ["no", "yes"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, yes) == 1.0


def test_regressor_one_and_several_targets():
    X, y = make_regression(200, 5, n_targets=2, noise=0.5, random_state=0)
    y = y / np.abs(y).max()
    reg = DLRegressor(random_state=0, backend="numpy").fit(X, y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, y) > 0.95
    one = DLRegressor(random_state=0, backend="numpy").fit(X, y[:, 0])
    assert one.predict(X).shape == (200,) and one.score(X, y[:, 0]) > 0.95
    assert one.network_.task == "regression"


def test_pipeline_with_standard_scaler_and_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), DLClassifier(random_state=0, backend="numpy", iterations=200))
    search = GridSearchCV(
        pipe,
        {"dlclassifier__hidden_layer_sizes": [(4,), (16,)], "dlclassifier__learning_rate": [0.01, 0.05]},
        cv=3,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.85 and set(search.best_params_) == {
        "dlclassifier__hidden_layer_sizes",
        "dlclassifier__learning_rate",
    }
    assert search.predict(X[:5]).tolist() == search.best_estimator_.predict(X[:5]).tolist()


def test_clone_and_pickle(iris):
    X, y = iris
    clf = DLClassifier(
        hidden_layer_sizes=(8, 8), optimizer="momentum", l2=0.01, random_state=3, backend="numpy"
    )
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "network_")
    clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.loss_curve_ == clf.loss_curve_ and back.n_iter_ == clf.n_iter_
    clf.set_params(l2=0.0, hidden_layer_sizes=(4,))
    assert clf.get_params()["hidden_layer_sizes"] == (4,) and clf.fit(X, y).network_.layer_dims == [4, 4, 3]


def test_every_training_option_of_network_fit_is_a_constructor_parameter():
    # comm is a live connection to other processes, not a hyperparameter to clone: data-parallel
    # training goes through Network.fit(comm=...)
    fit = set(inspect.signature(Network.fit).parameters) - {"self", "X", "Y", "comm"}
    # seed is random_state (scikit-learn's name); validation_data would put data into parameters
    params = set(DLClassifier().get_params()) | {"seed", "validation_data"}
    assert fit <= params, fit - params
    assert set(FIT_OPTIONS) | {"iterations", "seed", "validation_data"} == fit
    assert DLRegressor().get_params() == DLClassifier().get_params()


def test_training_options_reach_the_network(iris):
    X, y = iris
    seen, updates = [], []
    clf = DLClassifier(
        random_state=0,
        backend="numpy",
        epochs=3,
        batch_size=32,
        cost_every=1,
        callback=lambda i, c: seen.append(i),
        progress=updates.append,
    ).fit(X, y)
    assert clf.n_iter_ == 3 * 5 and seen[-1] == 15 and len(updates) == 15
    with pytest.raises(ValueError, match="not both"):
        DLClassifier(iterations=5, epochs=2, backend="numpy").fit(X, y)
    early = DLClassifier(random_state=0, backend="numpy", epochs=50, validation_split=0.2, patience=2)
    assert len(early.fit(X, y).history_.val_costs) > 0  # the split and early stopping ran


def test_partial_fit_continues_one_epoch_at_a_time(iris):
    X, y = iris
    clf = DLClassifier(random_state=0, backend="numpy", batch_size=50)
    with pytest.raises(ValueError, match="classes"):
        clone(clf).partial_fit(X[y == "setosa"], y[y == "setosa"])
    clf.partial_fit(X[:10], y[:10], classes=["setosa", "versicolor", "virginica"])
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"] and clf.n_iter_ == 1
    losses = []
    for _ in range(30):
        clf.partial_fit(X, y)
        losses.append(clf.loss_curve_[-1])
    assert clf.n_iter_ == 1 + 30 * 3 and losses[-1] < losses[0] and clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:2], ["setosa", "tulip"])
    reg = DLRegressor(random_state=0, backend="numpy")
    Xr, yr = make_regression(100, 3, random_state=0)
    for _ in range(3):
        reg.partial_fit(Xr, yr / 100)
    assert reg.n_iter_ == 3 and reg.predict(Xr).shape == (100,)


def test_every_backend_gives_the_same_classifier(backend, iris):
    X, y = iris
    kw = {"hidden_layer_sizes": (8,), "random_state": 0, "iterations": 100}
    ref = DLClassifier(backend="numpy", **kw).fit(X, y)
    clf = DLClassifier(backend=backend.spec(), **kw).fit(X, y)
    assert clf.network_.backend.spec() == backend.spec()
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-6, atol=1e-8)
    assert type(clf.predict_proba(X)) is np.ndarray
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_import_dlcore_does_not_import_scikit_learn():
    code = "import sys, dlcore; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_scikit_learn_dlcore_sklearn_says_how_to_get_it():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import dlcore\n"
        "try:\n    import dlcore.sklearn\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "needs scikit-learn" in out and 'pip install "dlcore[sklearn]"' in out


def test_partial_fit_checks_its_classes_as_it_checks_y(iris):
    """classes=[0, 0.5, 1] built a 3-class softmax with a class no label could train; [[0, 1, 2]] was
    flattened without a word (scikit-learn's MLP refuses both)."""
    X, y = iris
    with pytest.raises(ValueError, match="Unknown label type"):
        DLClassifier(backend="numpy").partial_fit(X, y, classes=[0, 0.5, 1])
    with pytest.raises(ValueError, match=r"should be a 1d array, got an array of shape \(1, 3\)"):
        DLClassifier(backend="numpy").partial_fit(X, y, classes=[[0, 1, 2]])


def test_partial_fit_carries_the_optimizer_state_across_calls():
    """Like scikit-learn's MLP: the second partial_fit continues Adam's moments and step count (one
    optimizer for the stream), which changes the result against restarting Adam at each call."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    runs = []
    for restart in (False, True):
        est = DLClassifier(hidden_layer_sizes=(5,), batch_size=16, learning_rate=0.05, random_state=0)
        est.partial_fit(X, y, classes=[0, 1])
        first = est.optimizer_
        if restart:
            est.optimizer_ = None  # what partial_fit did before: a fresh Adam each call
        est.partial_fit(X, y)
        if not restart:
            assert est.optimizer_ is first and first.name == "adam" and first.t == est.n_iter_ == 6
        runs.append(est.network_.parameters_numpy())
    assert any(not np.allclose(runs[0][k], runs[1][k]) for k in runs[0])


def test_an_optimizer_object_is_a_template_fit_never_steps(iris):
    """scikit-learn's contract: fit does not change the constructor's parameters and gives the same model
    twice. An Adam object given as ``optimizer`` was stepped by fit (t = 50 after one fit), so a second
    fit, or a clone's, continued its moments."""
    from dlcore.optimizers import Adam

    X, y = iris
    template = Adam(0.01)
    clf = DLClassifier(optimizer=template, random_state=0, backend="numpy", iterations=50)
    first = clf.fit(X, y).predict_proba(X)
    assert template.t == 0
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), first)
    clf.partial_fit(X, y)
    assert template.t == 0 and clf.optimizer_ is not template


def test_a_stepped_optimizer_template_gives_every_fit_a_new_one(iris):
    """A template stepped before (on a Network) passed its moments, step count and decay into each fit's
    copy, and its state's shapes refused every hidden_layer_sizes but one in a grid search."""
    from dlcore import Network
    from dlcore.optimizers import Adam

    X, y = iris
    used = Adam(0.01, decay_rate=1.0)
    net = Network([4, 8, 3], activations=["tanh", "softmax"], seed=5)  # iris's shapes, its own labels
    net.fit(X.T, np.unique(y, return_inverse=True)[1][None], iterations=50, optimizer=used)
    options = dict(hidden_layer_sizes=(8,), random_state=0, backend="numpy", iterations=20)
    a = DLClassifier(optimizer=used, **options).fit(X, y)
    b = DLClassifier(optimizer=Adam(0.01, decay_rate=1.0), **options).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.optimizer_.t == 20 and used.t == 50
    search = GridSearchCV(DLClassifier(optimizer=used, random_state=0, backend="numpy", iterations=5),
                          {"hidden_layer_sizes": [(5,), (8,)]}, cv=2, error_score="raise")  # fmt: skip
    search.fit(X, y)


def test_numpy_integers_are_layer_sizes(iris):
    """A grid built with np.arange hands NumPy integers, as scikit-learn's MLP accepts them."""
    X, y = iris
    for sizes in (np.int64(5), np.arange(4, 6), [np.int64(3)]):
        clf = DLClassifier(hidden_layer_sizes=sizes, random_state=0, backend="numpy", iterations=5).fit(X, y)
        assert all(type(n) is int for n in clf.network_.layer_dims)
    assert clf.network_.layer_dims == [4, 3, 3]
    for bad in ((2.0,), True):
        with pytest.raises(ValueError, match="layer sizes must be positive integers"):
            DLClassifier(hidden_layer_sizes=bad, backend="numpy").fit(X, y)
    # a string was split into its characters: "got [4, '6', '4', 3]"
    with pytest.raises(
        ValueError, match=r"hidden_layer_sizes must be an integer or a sequence of integers; got '64'"
    ):
        DLClassifier(hidden_layer_sizes="64", backend="numpy").fit(X, y)


@pytest.mark.parametrize("partial", [False, True], ids=["fit", "partial_fit"])
def test_an_interrupted_fit_describes_the_updates_it_made(partial):
    """Ctrl-C after update 7: the network keeps its last whole update, and n_iter_, loss_curve_ and
    history_ now say so (they kept the previous fit's values). Oracle: the same fit stopped at 7 updates."""
    import os
    import signal

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    options = {"hidden_layer_sizes": (5,), "batch_size": 4, "random_state": 0, "backend": "numpy"}

    def interrupt(i):
        if i == 7:
            os.kill(os.getpid(), signal.SIGINT)

    clf = DLClassifier(**options, epochs=5)
    if partial:
        clf.partial_fit(X, y, classes=[0, 1])  # 10 updates, then an interrupted second pass
    curve = list(clf.loss_curve_) if partial else []  # 10 updates an epoch: nothing recorded by update 7
    clf.set_params(progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(X, y) if partial else clf.fit(X, y)
    assert clf.n_iter_ == (17 if partial else 7) and clf.history_.updates == 7
    assert clf.loss_curve_ == curve and clf.history_.costs == []
    if not partial:
        again = DLClassifier(**options, iterations=7).fit(X, y)
        for name, value in again.network_.parameters_numpy().items():
            np.testing.assert_array_equal(clf.network_.parameters_numpy()[name], value)


def test_n_iter_counts_the_updates_made_with_early_stopping_too():
    """n_iter_ is the updates made: with early stopping it once reported where the last checked epoch
    began (16 of 24 updates). Random labels overfit, so the validation cost turns up and training stops."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 2, 50)
    updates = []
    clf = DLClassifier(
        hidden_layer_sizes=(32,),
        epochs=200,
        batch_size=10,
        validation_split=0.2,
        patience=2,
        learning_rate=0.05,
        random_state=0,
        backend="numpy",
        progress=updates.append,
    ).fit(X, y)
    assert clf.history_.stopped_early and clf.n_iter_ == updates[-1] == len(updates) < 200 * 4


def test_partial_fit_continues_the_learning_rate_decay():
    """Each partial_fit is the stream's next epoch for decay_rate too: alpha0 / (1 + decay_rate * k) at
    the k-th call (every call once restarted at alpha0)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(int)
    est = DLClassifier(
        hidden_layer_sizes=(3,), optimizer="gd", learning_rate=0.1, decay_rate=1.0, batch_size=10
    )
    rates = []
    for _ in range(4):
        est.partial_fit(X, y, classes=[0, 1])
        rates.append(est.optimizer_.learning_rate)
    assert rates == pytest.approx([0.1 / (1 + k) for k in range(4)], rel=1e-15)


def test_mixed_precision_reaches_the_network(iris):
    X, y = iris
    fits = {
        p: DLClassifier(random_state=0, backend="numpy", dtype="float32", precision=p, epochs=100).fit(X, y)
        for p in (None, "float16")
    }
    mixed, plain = fits["float16"], fits[None]
    assert all(str(v.dtype) == "float32" for v in mixed.network_.params.values())  # the float32 masters
    # float16 compute, float32 masters: the same fit to float16's accuracy (the first steps of dynamic
    # loss scaling are skipped while the scale comes down from 2^16: measured 0.109 against 0.106)
    assert abs(mixed.loss_curve_[-1] - plain.loss_curve_[-1]) < 0.05 * plain.loss_curve_[-1]
    assert abs(mixed.score(X, y) - plain.score(X, y)) <= 0.02
    # it said "create the network with dtype='float32'": a DLClassifier user makes no network
    with pytest.raises(
        ValueError, match=r"keeps float32 master weights: pass dtype='float32' to DLClassifier$"
    ):
        DLClassifier(random_state=0, backend="numpy", precision="float16", epochs=1).fit(X, y)


def test_partial_fit_in_float16_carries_the_loss_scale_across_calls():
    """float16's dynamic loss scale is part of the stream's state: 50 one-update partial_fit calls train as
    one fit of 50 updates does (the same bits). Each call once started again at 2^16, where this data's
    first step overflows: every step was skipped and nothing trained, silently (loss 21.3 throughout)."""
    rng = np.random.default_rng(0)
    X = 30 * rng.standard_normal((256, 10))  # unscaled features: large gradients
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    kw = {"random_state": 0, "backend": "numpy", "dtype": "float32", "optimizer": "adam"}
    kw |= {"learning_rate": 0.01, "precision": "float16", "hidden_layer_sizes": (16,)}
    stream = DLClassifier(**kw)
    for _ in range(50):
        stream.partial_fit(X, y, classes=[0, 1])
    whole = DLClassifier(iterations=50, **kw).fit(X, y)
    assert stream.loss_curve_[-1] < 0.1 * stream.loss_curve_[0]
    np.testing.assert_array_equal(stream.predict_proba(X), whole.predict_proba(X))
    plain = DLClassifier(**{**kw, "precision": None}).partial_fit(X, y, classes=[0, 1])
    plain.set_params(precision="float16").partial_fit(X, y)  # the stream's own state goes on (once: a crash)
    assert plain.precision_ is None and plain.n_iter_ == 2


def test_a_mixed_precision_object_is_a_template_too(iris):
    """A MixedPrecision given as ``precision`` is copied per fit, as an Optimizer is: fit once stepped the
    caller's object (its Adam's t grew by every fit) and a refit with the same random_state differed."""
    from dlcore.optimizers import Adam
    from dlcore.precision import MixedPrecision

    X, y = iris
    template = MixedPrecision(Adam(0.01), "float16")
    clf = DLClassifier(precision=template, random_state=0, backend="numpy", dtype="float32", iterations=30)
    first = clf.fit(X, y).predict_proba(X)
    assert template.optimizer.t == 0 and template.loss_scale is None
    np.testing.assert_array_equal(clf.fit(X, y).predict_proba(X), first)
    net = clf.network_
    with pytest.raises(ValueError, match=r"wraps its own optimizer; give that one to MixedPrecision"):
        net.fit(X.T, np.zeros((1, len(X))), optimizer="momentum", precision=template)


def test_a_fit_that_raises_leaves_the_estimator_as_it_was(iris):
    """A bad option is found once training starts: the refit had already put a new, untrained network in
    place of the fitted one (predict then answered from random weights, n_iter_ 0)."""
    from sklearn.exceptions import NotFittedError

    X, y = iris
    clf = DLClassifier(hidden_layer_sizes=(8,), random_state=0, backend="numpy", iterations=50).fit(X, y)
    before, state = clf.predict_proba(X), dict(clf.__dict__)
    for bad, message in (
        ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
        ({"keep_prob": 0.0}, r"keep_prob must be in \(0, 1\]"),
        ({"precision": "float16"}, "pass dtype='float32' to DLClassifier"),
    ):
        with pytest.raises(ValueError, match=message):
            clf.set_params(**bad).fit(X[:, :3], y)  # another width too: n_features_in_ stays 4
        clf.set_params(learning_rate=0.01, keep_prob=1.0, precision=None)
        assert clf.__dict__ == state
        np.testing.assert_array_equal(clf.predict_proba(X), before)
    fresh = DLRegressor(backend="numpy", learning_rate=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        fresh.partial_fit(X, np.arange(len(X), dtype=float))
    with pytest.raises(NotFittedError):
        fresh.predict(X)


def test_a_fit_that_diverges_keeps_its_last_good_parameters_and_says_so():
    from dlcore import TrainingDiverged

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X @ np.array([1.0, -2.0, 3.0])
    reg = DLRegressor((8,), "tanh", optimizer="gd", learning_rate=1.0, iterations=400, cost_every=5)
    with pytest.raises(TrainingDiverged, match="parameters from iteration 10 were kept") as info:
        reg.set_params(random_state=0, backend="numpy").fit(X, y)
    history = info.value.history
    assert reg.n_iter_ == history.iterations[-1] == 10 and reg.loss_curve_ == history.costs
    assert np.mean((reg.predict(X) - y) ** 2) / 2 == pytest.approx(history.costs[-1], rel=1e-12)


def test_a_partial_fit_that_diverges_says_its_counts_are_the_calls():
    from dlcore import TrainingDiverged

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    reg = DLRegressor((4,), optimizer="gd", learning_rate=1e-3, batch_size=20, cost_every=1)
    reg.set_params(random_state=0, backend="numpy")
    for _ in range(3):
        reg.partial_fit(X, 3 * X[:, 0])
    with pytest.raises(TrainingDiverged, match=r"by iteration 10\)") as info:
        reg.partial_fit(X * 1e3, 3e3 * X[:, 0])
    # the core's "by iteration 10 ... from iteration 0" is this call's count, where n_iter_ said 30
    assert str(info.value).endswith(
        "(The iterations are counted from the start of this partial_fit call, after 30 earlier updates; "
        "n_iter_ is 30.)"
    )
    assert info.value.iteration == 10 and reg.n_iter_ == 30


def test_partial_fit_after_fit_carries_on_with_fits_optimizer(iris):
    """As scikit-learn's MLP: Adam's step count and the decay's epoch go on from where fit stopped (the
    first partial_fit once restarted Adam and the learning rate at alpha0)."""
    X, y = iris
    clf = DLClassifier(random_state=0, backend="numpy", epochs=5, batch_size=50, decay_rate=1.0)
    clf.fit(X, y)
    assert clf.optimizer_.t == clf.n_iter_ == 15 and clf.optimizer_.first_epoch == 5
    clf.partial_fit(X, y)
    assert clf.optimizer_.t == clf.n_iter_ == 18
    assert clf.optimizer_.learning_rate == pytest.approx(0.01 / (1 + 5), rel=1e-15)


def test_loss_curve_gets_one_cost_per_partial_fit_call(iris):
    """The cost after each call (each call's first record, the cost before it, repeated the last call's)."""
    X, y = iris
    clf = DLClassifier(random_state=0, backend="numpy")
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert len(clf.loss_curve_) == clf.n_iter_ == 3 and len(set(clf.loss_curve_)) == 3


def test_regressor_predicts_in_the_dtype_of_X():
    """As scikit-learn's regressors (and its check_regressor_multioutput): float64 X, float64 predictions,
    from a float32 network too (they were float32); float32 X, float32."""
    Xr, yr = make_regression(50, 3, n_targets=2, random_state=0)
    for dtype in ("float32", "float64"):
        reg = DLRegressor(random_state=0, backend="numpy", dtype=dtype, iterations=5).fit(Xr, yr)
        assert reg.predict(Xr).dtype == np.float64
        assert reg.predict(Xr.astype(np.float32)).dtype == np.float32


def test_a_numpy_integer_random_state_is_the_same_seed(iris):
    """GridSearchCV over np.arange(3) hands NumPy integers: they once went through check_random_state's
    draw, another model than the same int gives."""
    X, y = iris
    kw = {"hidden_layer_sizes": (4,), "backend": "numpy", "iterations": 5}
    a = DLClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    b = DLClassifier(random_state=np.int64(3), **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_a_float32_estimator_names_values_beyond_its_range(iris, recwarn):
    """The wrapper cast to float32 first: 1e300 became inf, with NumPy's overflow warning, and the core
    said "X contains NaN or inf; clean or impute them first" of data that held neither."""
    X, y = iris
    clf = DLClassifier(dtype="float32", iterations=5, backend="numpy").fit(X, y)
    with pytest.raises(
        ValueError, match=r"^X holds values beyond float32's range: use dtype='float64' or rescale X$"
    ):
        clf.predict(np.full((1, 4), 1e300))
    with pytest.raises(
        ValueError, match=r"^Y holds values beyond float32's range: use dtype='float64' or rescale Y$"
    ):
        DLRegressor(dtype="float32", iterations=5, backend="numpy").fit(X, X[:, 0] * 1e39)
    assert not [w for w in recwarn if "overflow" in str(w.message)]


def test_partial_fit_names_a_changed_number_of_targets_in_the_users_terms():
    """It said "Y must have shape (n_y, m) = (1, 80) to match the output layer and X; got (2, 80)": the
    core's layout, of a y the user passed as (80, 2)."""
    X = np.random.default_rng(0).standard_normal((80, 3))
    reg = DLRegressor(random_state=0, iterations=5, backend="numpy").fit(X, X[:, 0])
    with pytest.raises(ValueError, match=r"^y has 2 target\(s\); this regressor was fitted on 1$"):
        reg.partial_fit(X, X[:, :2])
    reg.partial_fit(X, X[:, :1])  # (m, 1) is one target too


@pytest.mark.parametrize("state", [-1, 2**32, "a", 1.5])
def test_a_bad_random_state_is_named_as_such(iris, state):
    """-1 said "seed must be None or an integer >= 0 (e.g. seed=1)", no parameter of the estimator."""
    X, y = iris
    with pytest.raises(
        ValueError, match=r"^random_state must be None, an integer in \[0, 2\*\*32 - 1\] or a "
    ):
        DLClassifier(random_state=state, backend="numpy", iterations=2).fit(X, y)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 3}, r"^patience needs validation_split > 0 \(e\.g\. 0\.1\)$"),
        (
            {"hidden_layer_sizes": (), "keep_prob": 0.5},
            r"add one \(hidden_layer_sizes=\(n_h,\)\) or pass keep_prob=1",
        ),
        (
            {"optimizer": MixedPrecision(Adam(0.01)), "dtype": "float32"},
            r"^a MixedPrecision is passed as precision=, not optimizer= \(e\.g\. precision=MixedPrecision\("
            r"Adam\(0\.001\)\), dtype='float32'\)$",
        ),
    ],
)
def test_refusals_name_the_estimators_parameters(iris, options, message):
    """They named the core's validation_data= and layer_dims, no parameters of the estimator."""
    X, y = iris
    with pytest.raises(ValueError, match=message):
        DLClassifier(backend="numpy", iterations=2, **options).fit(X, y)


@pytest.mark.parametrize("estimator", [DLClassifier, DLRegressor])
def test_the_dtype_may_be_the_backends_own_dtype_object_as_for_network(backend, estimator):
    """dtype=torch.float32 (which Network takes) made fit fail with numpy's "Cannot interpret
    'torch.float32' as a data type": the wrappers cast the host data with np.dtype(self.dtype)."""
    X = np.random.default_rng(0).standard_normal((40, 2))
    y = (X[:, 0] > 0).astype(int) if estimator is DLClassifier else X[:, 0]
    model = estimator(backend=backend.name, iterations=5, dtype=backend.dtype("float32")).fit(X, y)
    assert model.network_.dtype_name == "float32"
    model.partial_fit(X, y)
    assert model.predict(X).shape == (40,)
