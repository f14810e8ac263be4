"""The Network object: learning, symmetry, seeds, divergence and argument errors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from dlcore.backends import get_backend

from dlcore import Network, TrainingDiverged
from dlcore.data import Normalization
from dlcore.datasets import planar
from dlcore.optimizers import Adam, Momentum
from tests.conftest import to_host


def test_shallow_tanh_net_learns_the_planar_flower(backend, dtype):
    X, Y = planar(backend, dtype=dtype)
    assert X.shape == (2, 400) and Y.shape == (1, 400)
    net = Network([2, 4, 1], "tanh", init="small", backend=backend, seed=1, dtype=dtype)
    history = net.fit(X, Y, learning_rate=1.2, iterations=3000, cost_every=500)
    assert history.iterations == [0, 500, 1000, 1500, 2000, 2500, 3000]
    assert history.costs[-1] < 0.5 * history.costs[0]
    assert net.accuracy(X, Y) >= 0.85


def test_fit_is_the_course_loop_of_forward_backward_update(backend, dtype, tol):
    """fit(iterations=k) takes exactly k steps of W -= lr * dW computed by forward/backward/update."""
    import dlcore

    X, Y = planar(backend, dtype=dtype, m=60)
    net = Network([2, 5, 3, 1], "relu", init="he", backend=backend, seed=4, dtype=dtype)
    params = {k: backend.xp.asarray(v, copy=True) for k, v in net.params.items()}
    initial = {k: np.array(to_host(backend, v), copy=True) for k, v in params.items()}
    net.fit(X, Y, learning_rate=0.3, iterations=7)
    for _ in range(7):
        AL, caches = dlcore.forward(X, params, net.activations)
        dlcore.update(params, dlcore.backward(AL, Y, caches, net.activations), learning_rate=0.3)
    for k, v in params.items():
        np.testing.assert_allclose(to_host(backend, net.params[k]), to_host(backend, v), **tol)
    assert not np.allclose(to_host(backend, params["W1"]), initial["W1"])  # the steps did something


def test_logistic_regression_is_the_zero_hidden_layer_case(backend, host_rng):
    X = host_rng.standard_normal((3, 200))
    Y = (X[0:1] - 2 * X[2:3] > 0).astype(float)  # linearly separable
    net = Network([3, 1], init="zeros", backend=backend)
    net.fit(X, Y, learning_rate=0.5, iterations=300)
    assert net.accuracy(X, Y) >= 0.97
    w = to_host(backend, net.params["W1"])[0]
    assert w[0] > 0 > w[2] and abs(w[1]) < abs(w[2])


@pytest.mark.parametrize("hidden", ["tanh", "relu", "sigmoid"])
def test_zero_init_keeps_hidden_units_identical(backend, host_rng, hidden):
    X, Y = host_rng.standard_normal((2, 50)), (host_rng.random((1, 50)) > 0.5).astype(float)
    net = Network([2, 5, 1], hidden, init="zeros", backend=backend)
    net.fit(X, Y, learning_rate=0.5, iterations=50)
    W1, W2 = to_host(backend, net.params["W1"]), to_host(backend, net.params["W2"])
    # every hidden unit computes the same function (up to BLAS summation order)
    np.testing.assert_allclose(W1, np.broadcast_to(W1[0], W1.shape), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(W2, np.broadcast_to(W2[0, 0], W2.shape), rtol=1e-12, atol=1e-15)
    if hidden == "sigmoid":  # sigmoid(0) = 0.5 != 0, so the weights do move, but all together
        assert np.abs(W1).max() > 1e-6


def test_random_init_breaks_the_symmetry(backend, host_rng):
    X, Y = host_rng.standard_normal((2, 50)), (host_rng.random((1, 50)) > 0.5).astype(float)
    net = Network([2, 5, 1], "tanh", init="small", backend=backend)
    net.fit(X, Y, learning_rate=0.5, iterations=50)
    W1 = to_host(backend, net.params["W1"])
    assert len({tuple(row) for row in W1}) == 5


@pytest.mark.parametrize("init", ["small", "he", "xavier", "glorot"])
def test_same_seed_same_initial_parameters_on_every_backend(backend, dtype, init):
    dims = [7, 5, 3, 1]
    ours = Network(dims, init=init, backend=backend, seed=42, dtype=dtype).parameters_numpy()
    ref = Network(dims, init=init, backend="numpy", seed=42, dtype=dtype).parameters_numpy()
    for k in ref:
        assert ours[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours[k], ref[k])
    other = Network(dims, init=init, backend=backend, seed=43, dtype=dtype).parameters_numpy()
    assert not np.array_equal(other["W1"], ours["W1"])


def test_initializer_scales(backend):
    big = Network([400, 300, 1], init="he", backend=backend, seed=0).parameters_numpy()["W1"]
    assert big.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    small = Network([400, 300, 1], init="small", backend=backend, seed=0).parameters_numpy()["W1"]
    assert small.std() == pytest.approx(0.01, rel=0.02)
    xav = Network([400, 300, 1], init="xavier", backend=backend, seed=0).parameters_numpy()["W1"]
    assert xav.std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)


def test_predictions_and_probabilities(backend, dtype):
    X, Y = planar(backend, m=40, dtype=dtype)
    net = Network([2, 3, 1], "relu", backend=backend, dtype=dtype)
    P, labels = to_host(backend, net.predict_proba(X)), to_host(backend, net.predict(X))
    assert P.shape == labels.shape == (1, 40)
    assert np.all((P > 0) & (P < 1))
    np.testing.assert_array_equal(labels, (P > 0.5).astype(np.int64))
    acc = net.accuracy(X, Y)
    assert acc == pytest.approx(np.mean(labels == to_host(backend, Y)))


def test_numpy_input_is_moved_to_the_network_backend(backend):
    X, Y = planar(get_backend("numpy"), m=20)
    net = Network([2, 3, 1], backend=backend)
    net.fit(X, Y, 0.1, 5)  # NumPy arrays into any backend: converted, not mixed
    assert net.predict(X).device == backend.device


def test_set_parameters_copies_so_training_leaves_the_callers_arrays_alone(backend):
    """The network owns its parameters: fit updates them in place, so set_parameters must not keep the
    arrays it is given (another network's, or read-only host arrays such as np.load(mmap_mode="r")'s)."""
    X, Y = planar(backend, m=100)
    source = Network([2, 8, 1], "tanh", backend=backend, seed=1)
    before = source.parameters_numpy()
    net = Network([2, 8, 1], "tanh", backend=backend, seed=2)
    net.set_parameters(source.params)  # the backend's own arrays, in the network's dtype
    net.fit(X, Y, 0.5, 20)
    for name, value in source.parameters_numpy().items():
        np.testing.assert_array_equal(value, before[name])
    assert not np.array_equal(net.parameters_numpy()["W1"], before["W1"])  # the fit did move them
    frozen = {name: value.copy() for name, value in before.items()}
    for value in frozen.values():
        value.flags.writeable = False
    net.set_parameters(frozen)
    net.fit(X, Y, 0.5, 20)  # updating read-only arrays in place would raise


def test_set_parameters_refuses_arrays_the_network_has_no_place_for(backend):
    """A [3, 5, 1, 1] network's parameters given to a [3, 5, 1] one: W3 and b3 were dropped without a word
    (the first two layers' shapes happen to fit)."""
    deeper = Network([3, 5, 1, 1], backend=backend, seed=1).parameters_numpy()
    net = Network([3, 5, 1], backend=backend, seed=2)
    before = net.parameters_numpy()
    with pytest.raises(
        ValueError, match=r"^unexpected arrays \['W3', 'b3'\] for a network of layers \[3, 5, 1\]"
    ):
        net.set_parameters(deeper)
    for name, value in net.parameters_numpy().items():
        np.testing.assert_array_equal(value, before[name])
    net.set_parameters({**before, "__meta__": np.zeros(3, np.uint8)})  # np.load of a model file: not a layer


def test_divergence_stops_and_keeps_the_last_finite_parameters(backend):
    X, Y = planar(backend, m=100)
    net = Network([2, 8, 8, 1], "linear", init="he", backend=backend, seed=0)
    with pytest.raises(TrainingDiverged, match=r"iteration \d+ with learning_rate=1e\+06") as info:
        net.fit(X, Y, learning_rate=1e6, iterations=500, cost_every=10)
    assert info.value.iteration > 0 and info.value.learning_rate == 1e6
    for v in net.parameters_numpy().values():
        assert np.all(np.isfinite(v))
    assert np.isfinite(net.cost(X, Y))
    assert info.value.history.iterations[-1] < info.value.iteration


@pytest.mark.parametrize(("make", "lr"), [(Momentum, 1e6), (Adam, 1e200)], ids=["momentum", "adam"])
def test_after_a_divergence_the_optimizer_starts_afresh_so_its_advice_works(backend, make, lr):
    """The rollback kept the parameters but not the moments that blew up (|v| ~ 1e133): lowering the
    learning rate as the message says diverged again at once. Now the retry is a fresh optimizer's."""
    X, Y = planar(backend, m=100)
    net = Network([2, 8, 8, 1], "linear", init="he", backend=backend, seed=0)
    opt = make(lr)
    with pytest.raises(TrainingDiverged, match=r"were kept and the \w+ optimizer's state was reset\. Lower"):
        net.fit(X, Y, optimizer=opt, iterations=300, cost_every=5)
    kept = net.parameters_numpy()
    opt.learning_rate = opt.learning_rate0 = 1e-3
    net.fit(X, Y, optimizer=opt, iterations=5)
    fresh = Network([2, 8, 8, 1], "linear", backend=backend)
    fresh.set_parameters(kept)
    fresh.fit(X, Y, optimizer=make(1e-3), iterations=5)
    for name, value in fresh.parameters_numpy().items():
        np.testing.assert_array_equal(net.parameters_numpy()[name], value)


def test_a_divergence_of_plain_gradient_descent_mentions_no_optimizer_state(backend):
    X, Y = planar(backend, m=100)
    net = Network([2, 8, 8, 1], "linear", init="he", backend=backend, seed=0)
    with pytest.raises(TrainingDiverged, match=r"the parameters from iteration \d+ were kept\. Lower"):
        net.fit(X, Y, learning_rate=1e6, iterations=300, cost_every=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_dims": [2]}, "at least an input and an output"),
        ({"layer_dims": [2, 0, 1]}, "positive integers"),
        ({"layer_dims": [2, 4, 1], "hidden_activation": "swish"}, "unknown activation 'swish'"),
        ({"layer_dims": [2, 4, 1], "init": "ones"}, "unknown initializer 'ones'.*he"),
        ({"layer_dims": [2, 4, 1], "backend": "mxnet"}, "unknown backend 'mxnet'"),
        ({"layer_dims": [2, 4, 1], "dtype": "float16"}, "unsupported dtype 'float16'"),
        ({"layer_dims": [2, 4, 1], "output_activation": "relu"}, "output_activation must be 'sigmoid'"),
        ({"layer_dims": [2, 4, 1], "activations": ["relu"]}, "one entry per layer"),
        # a list in the hidden activation's place: "unknown activation ['tanh', 'sigmoid']"
        (
            {"layer_dims": [2, 4, 1], "hidden_activation": ["tanh", "sigmoid"]},
            r"hidden_activation is one activation .* as activations=\['tanh', 'sigmoid'\]$",
        ),
        # a network no fit could train: Y (3, m) and (1, m) were each refused, naming the other shape
        (
            {"layer_dims": [5, 8, 3], "output_activation": "sigmoid"},
            r"a sigmoid output is one unit .* got layer_dims\[-1\] = 3: use output_activation='softmax'",
        ),
        # refused in the first backward pass before
        (
            {"layer_dims": [2, 4, 3], "hidden_activation": "softmax", "output_activation": "softmax"},
            r"softmax is an output activation only .* layer 1 is hidden",
        ),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


def test_bad_training_data_names_the_expected_shape(backend):
    net = Network([2, 4, 1], backend=backend)
    X, Y = np.ones((2, 10)), np.zeros((1, 10))
    cases = [
        (np.ones(10), Y, r"rank-1 array of shape \(10,\)"),
        (np.ones((10, 2)), Y, r"expects \(n_x=2, m\).*pass X\.T"),
        (np.ones((3, 10)), Y, r"expects n_x=2"),
        (np.ones((2, 0)), np.zeros((1, 0)), r"no examples"),
        (np.ones((2, 10, 1)), Y, r"must be 2-D"),
        (X, np.zeros(10), r"Y must have shape \(1, m\) = \(1, 10\).*Y\.reshape\(1, -1\)"),
        (X, np.zeros((10, 1)), r"pass Y\.T"),
        (X, np.zeros((1, 9)), r"\(1, 10\)"),
        (X, np.full((1, 10), 2.0), r"binary labels 0 or 1"),
        (np.where(np.eye(2, 10) > 0, np.nan, 1.0), Y, r"X contains NaN or inf \(2 entries\)"),
        (X, np.full((1, 10), np.inf), r"Y contains NaN or inf"),
        ("abc", Y, r"X must be a numeric array"),
    ]
    for bad_X, bad_Y, message in cases:
        with pytest.raises(ValueError, match=message):
            net.fit(bad_X, bad_Y)
    for lr in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
            net.fit(X, Y, learning_rate=lr)
    with pytest.raises(ValueError, match="iterations must be an integer >= 1"):
        net.fit(X, Y, iterations=0)


def test_integer_and_boolean_inputs_are_converted(backend):
    net = Network([2, 3, 1], backend=backend, dtype="float32")
    X = np.array([[0, 1, 2, 3], [1, 0, 1, 0]], dtype=np.int32)
    Y = np.array([[True, False, True, False]])
    history = net.fit(X, Y, learning_rate=0.1, iterations=3)
    assert len(history) == 2 and net.predict_proba(X).dtype == backend.xp.float32


def test_minus_one_plus_one_labels_warn_that_they_are_taken_as_regression(backend):
    X, Y = planar(backend, m=40)
    with pytest.warns(UserWarning, match=r"labels are -1 and \+1, so they are taken as regression targets"):
        net = Network.for_data(X, 2 * to_host(backend, Y) - 1, backend=backend)
    assert net.task == "regression"
    with warnings.catch_warnings():  # 0/1 labels, real targets, and ±1 said to be regression: no warning
        warnings.simplefilter("error")
        Network.for_data(X, Y, backend=backend)
        Network.for_data(X, 0.5 * to_host(backend, Y) - 0.3, backend=backend)
        Network.for_data(X, 2 * to_host(backend, Y) - 1, task="regression", backend=backend)


def test_whole_number_targets_taken_as_classes_warn(backend):
    """Integers 0..99 for 40 examples (fewer than 2 per class: scores, counts, prices) are taken as 100
    classes, with a warning naming task='regression'; as many classes with 2 examples each, or the task
    said, warn nothing."""
    X, _ = planar(backend, m=40)
    scores = np.arange(40)[None, :] * 99 // 39  # 0 .. 99
    with pytest.warns(UserWarning, match=r"integers up to 99, taken as 100 classes for 40 examples .* "):
        net = Network.for_data(X, scores, backend=backend)
    assert net.task == "multiclass" and net.layer_dims[-1] == 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Network.for_data(X, np.arange(40)[None, :] % 20, backend=backend)  # 20 classes, 2 examples each
        Network.for_data(X, scores, task="multiclass", backend=backend)
        Network.for_data(X, scores, task="regression", backend=backend)


def test_labels_far_beyond_any_class_count_are_refused_with_the_task_to_pass(backend):
    """A label of 1e15 asked for ~1e15 outputs (968,575,477 GiB in the memory refusal), with 16-digit
    class counts in the warnings; task='multiclass' said still builds what was asked."""
    X, _ = planar(backend, m=40)
    labels = np.arange(40)[None, :] % 2 * 1.0
    labels[0, 5] = 1e15
    pattern = r"^the labels are integers up to 1e\+15: as classes, 1e\+15 outputs for 40 examples; pass "
    with pytest.raises(ValueError, match=pattern + r"task='regression' if they are numeric targets$"):
        Network.for_data(X, labels, backend=backend)
    assert Network.for_data(X, labels, task="regression", backend=backend).task == "regression"


def test_target_standardization_trains_on_standardized_targets_and_answers_in_their_units(backend):
    """A regression network with ``target_normalization`` trains exactly as a plain one on (Y - mean) / std
    (the same bits) and predicts, scores and pickles in Y's own units. Oracles: the plain network, and
    R^2 computed on the host from the predictions."""
    rng = np.random.default_rng(8)
    Xh = rng.standard_normal((3, 30))
    Yh = np.stack([1e4 + 3e3 * np.tanh(Xh[0]), 0.5 * Xh[1] * Xh[2]])
    X, Y = backend.asarray(Xh), backend.asarray(Yh)
    norm = Normalization.fit(Y, backend, rows="target")
    scaled = Network([3, 6, 2], "tanh", "linear", backend=backend, seed=3)
    scaled.target_normalization = norm
    scaled.fit(X, Y, 0.1, iterations=60)
    plain = Network([3, 6, 2], "tanh", "linear", backend=backend, seed=3)
    plain.fit(X, norm.apply(Y, backend), 0.1, iterations=60)
    for name, value in plain.parameters_numpy().items():
        np.testing.assert_array_equal(scaled.parameters_numpy()[name], value, err_msg=name)
    assert scaled.cost(X, Y) == plain.cost(X, norm.apply(Y, backend))
    P = to_host(backend, scaled.predict(X))
    np.testing.assert_array_equal(P, to_host(backend, norm.invert(plain.predict(X), backend)))
    assert abs(P[0].mean() - 1e4) < 300  # Y's units: standardized outputs would be near 0
    r2 = np.mean(1 - ((Yh - P) ** 2).sum(axis=1) / ((Yh - Yh.mean(axis=1, keepdims=True)) ** 2).sum(axis=1))
    assert scaled.score(X, Y) == pytest.approx(r2, rel=1e-12) and r2 > 0.5
    np.testing.assert_array_equal(to_host(backend, pickle.loads(pickle.dumps(scaled)).predict(X)), P)
    with pytest.raises(ValueError, match=r"target_normalization has 2 targets; the network predicts 1"):
        Network([3, 6, 1], "tanh", "linear", backend=backend).target_normalization = norm
    with pytest.raises(
        ValueError, match=r"target_normalization is for regression networks; this one is binary"
    ):
        Network([3, 6, 1], backend=backend).target_normalization = norm


# -- fit after fit, and the API's argument checks ------------------------------------------------------
def test_a_later_fit_draws_new_shuffles_and_masks_but_the_same_split(backend):
    """fit(epochs=1) called in a loop drew the same permutation and dropout masks every call (one
    fit(epochs=3) draws three). The first fit is unchanged; the validation split stays put; an explicit
    seed still repeats its stream exactly."""
    X, Y = planar(backend, m=40)
    options = {
        "epochs": 1,
        "batch_size": 10,
        "keep_prob": 0.8,
        "learning_rate": 0.1,
        "validation_split": 0.25,
    }

    def two_fits(**seed):
        net = Network([2, 6, 1], "tanh", backend=backend, seed=3)
        net.fit(X, Y, **options, **seed)
        first = net.parameters_numpy()
        net.fit(X, Y, **options, **seed)
        return first, net.parameters_numpy()

    own_first, own_second = two_fits()
    fixed_first, fixed_second = two_fits(seed=3)
    for k in own_first:
        np.testing.assert_array_equal(own_first[k], fixed_first[k])  # the first fit: as before
    refused = Network([2, 6, 1], "tanh", backend=backend, seed=3)
    with pytest.raises(ValueError, match="batch_size"):
        refused.fit(X, Y, **{**options, "batch_size": 0})  # refused: it draws nothing, counts nothing
    refused.fit(X, Y, **options)
    for k, v in refused.parameters_numpy().items():
        np.testing.assert_array_equal(v, own_first[k])
    assert any(not np.array_equal(own_second[k], fixed_second[k]) for k in own_first)
    # the split is the seed's in every fit: the second fit's validation cost is that of the same columns
    net = Network([2, 6, 1], "tanh", backend=backend, seed=3)
    net.fit(X, Y, **options)
    again = net.fit(X, Y, **{**options, "learning_rate": 1e-300}).val_costs  # no update: the cost as it is
    twin = Network([2, 6, 1], "tanh", backend=backend, seed=3)
    twin.fit(X, Y, **options)
    assert twin.fit(X, Y, **{**options, "learning_rate": 1e-300}, seed=3).val_costs == again


def test_numpy_integers_count_as_integers_and_zero_patience_is_refused(backend):
    X, Y = planar(backend, m=40)
    net = Network([2, 3, 1], "tanh", backend=backend, seed=1)
    n = np.int64
    history = net.fit(
        X, Y, epochs=n(2), batch_size=n(10), cost_every=n(1), validation_split=0.25, patience=n(5)
    )
    assert history.updates == 2 * 3
    net.fit(X, Y, iterations=n(3))
    with pytest.raises(ValueError, match="patience must be an integer >= 1; got 0"):
        net.fit(X, Y, epochs=2, validation_split=0.25, patience=0)  # it turned early stopping off
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1; got array\(\[2\]\)"):
        net.fit(X, Y, epochs=np.array([2]))
    with pytest.raises(ValueError, match=r"seed must be None or an integer >= 0 .* got array\(\[1\]\)"):
        net.fit(X, Y, iterations=1, seed=np.array([1]))  # a TypeError from operator.index before


def test_dropout_without_a_hidden_layer_is_refused(backend):
    """keep_prob < 1 on logistic regression trained exactly as keep_prob = 1, saying nothing."""
    X, Y = planar(backend, m=20)
    net = Network([2, 1], backend=backend)
    with pytest.raises(ValueError, match=r"keep_prob=0.5 drops hidden units, and this network has no hidden"):
        net.fit(X, Y, iterations=1, keep_prob=0.5)
    net.fit(X, Y, iterations=1, keep_prob=1.0)


def test_for_data_checks_that_x_and_y_hold_the_same_examples(backend):
    """Y of shape (m, 1) made a network of m linear outputs; X of shape (m, n_x) one of m inputs."""
    X, Y = planar(backend, m=40)
    with pytest.raises(ValueError, match=r"X has m = 40 examples \(columns\) but Y has 1: .* pass Y\.T"):
        Network.for_data(X, Y.T, backend=backend)
    with pytest.raises(ValueError, match=r"X has m = 2 examples .* but Y has 40: .* pass X\.T"):
        Network.for_data(X.T, Y, backend=backend)


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        ((0.0, 0.0), (1.0, 0.0), r"each std must be finite and > 0 \(use 1 for a constant feature\)"),
        ((0.0, 0.0), (1.0, -2.0), r"each std must be finite and > 0"),
        ((0.0, float("nan")), (1.0, 1.0), r"the mean must be finite"),
        ((0.0,), (1.0, 1.0), r"one entry per feature; got 1 and 2"),
    ],
)
def test_a_normalization_made_by_hand_is_checked_when_made(mean, std, message):
    """A std of 0 (X.std() of a constant feature) predicted through a division by zero, saved, and load
    then called the file corrupt."""
    with pytest.raises(ValueError, match=message):
        Normalization(mean, std)


@pytest.mark.parametrize(
    ("norm", "message"),
    [
        # save wrote one that load then refused as corrupt; set on the network it failed only at predict
        (Normalization([0.0] * 5, [1.0] * 5), "the normalization has 5 features but the network takes 2"),
        # a float32 network with a mean of 1e39 predicted 0 everywhere, saved, and load called it corrupt
        (Normalization((1e39, 0.0), (1.0, 1.0)), "the normalization holds values float32 cannot represent"),
        (Normalization((0.0, 0.0), (1.0, 1e-40)), "the normalization holds values float32 cannot represent"),
    ],
    ids=["width", "huge mean", "tiny std"],
)
def test_a_normalization_the_network_cannot_use_is_refused_where_it_is_given(
    backend, tmp_path, norm, message
):
    net = Network([2, 3, 1], backend=backend, dtype="float32")
    with pytest.raises(ValueError, match=message):
        net.save(tmp_path / "m.npz", normalization=norm)
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(ValueError, match=message):
        net.normalization = norm
    assert net.normalization is None


def test_a_normalization_that_is_no_normalization_is_one_sentence(backend, tmp_path):
    """A dict (what Normalization.to_dict gives) failed as "'dict' object has no attribute 'n_x'"."""
    net = Network([2, 3, 1], "tanh", "linear", backend=backend)
    given = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    kind = r"must be a dlcore\.data\.Normalization \(Normalization\.fit\(X, backend\)\) or None; got "
    cases = [
        (lambda: net.save(tmp_path / "m.npz", normalization=given), "^normalization " + kind + "dict: "),
        (
            lambda: setattr(net, "normalization", given),
            "^normalization " + kind + r"dict: Normalization\.from_dict",
        ),
        (
            lambda: setattr(net, "target_normalization", (0.0, 1.0)),
            "^target_normalization " + kind + "tuple$",
        ),
    ]
    for set_it, refused in cases:
        with pytest.raises(TypeError, match=refused):
            set_it()
    assert not (tmp_path / "m.npz").exists() and net.normalization is None


def test_a_target_normalization_the_dtype_cannot_hold_is_refused(backend):
    huge = Normalization((1e39,), (1.0,))
    Network([1, 3, 1], output_activation="linear", backend=backend).target_normalization = huge  # float64
    regression = Network([2, 3, 1], output_activation="linear", backend=backend, dtype="float32")
    with pytest.raises(ValueError, match="the target normalization holds values float32 cannot represent"):
        regression.target_normalization = huge
    assert regression.target_normalization is None


def test_a_float32_network_standardizes_its_data_before_rounding_it(backend):
    """A timestamp feature near 1.7e9 spanning 200: rounded to float32 first (steps of 128 there), it kept
    3 distinct values out of 400, and a float32 network trained to 82% where float64 reached 100%; the
    same for regression targets. Oracle: float64 standardization, then the cast."""
    t = 1.7e9 + np.arange(0.0, 200.0, 0.5)
    X, Y = np.vstack([t, np.linspace(-1.0, 1.0, 400)]), (t - 1.7e9)[None, :] * 3.0 + 5e8
    net = Network([2, 3, 1], output_activation="linear", backend=backend, dtype="float32")
    net.normalization = Normalization.fit(X, "numpy")
    net.target_normalization = Normalization.fit(Y, "numpy", rows="target")
    Xs, Ys = (to_host(backend, a) for a in net.check_XY(X, Y))
    for got, data, norm in ((Xs, X, net.normalization), (Ys, Y, net.target_normalization)):
        want = ((data - np.array(norm.mean)[:, None]) / np.array(norm.std)[:, None]).astype(np.float32)
        np.testing.assert_array_equal(got, want)
    assert Xs.dtype == np.float32 and len(np.unique(Xs[0])) == len(np.unique(Ys)) == 400


def test_narrow_data_is_standardized_in_the_networks_wider_dtype(backend):
    """float32 data (exact values 10000 + k/1024) for a float64 network was standardized in float32 (mean
    -0.386, not 0); float16 data for a float32 one overflowed float16 (240,000 standardized); booleans
    on array_api_strict met isfinite, which refuses them."""
    t = 10000.0 + np.arange(200.0) / 1024.0  # float32 holds these exactly
    X = np.vstack([t, np.where(np.arange(200) % 2 == 0, 1.0, -1.0)])
    net = Network([2, 3, 1], backend=backend)
    net.normalization = Normalization.fit(X, "numpy")
    np.testing.assert_array_equal(
        to_host(backend, net.check_X(X.astype(np.float32))), to_host(backend, net.check_X(X))
    )
    if backend.name != "array_api_strict":  # no float16 there
        small = Network([1, 3, 1], backend=backend, dtype="float32")
        small.normalization = Normalization((0.0,), (0.25,))
        assert to_host(backend, small.check_X(np.array([[60000.0]], dtype=np.float16)))[0, 0] == 240000.0
    flags = np.array([[True, False, True], [False, False, True]])
    plain = Network([2, 3, 1], backend=backend)
    assert to_host(backend, plain.check_X(flags)).tolist() == flags.astype(float).tolist()


def test_values_beyond_the_networks_dtype_are_named_as_such(backend):
    """A finite 1e39 for a float32 network was "NaN or inf; clean or impute them", after NumPy's warning."""
    X = np.array([[1e39, 1.0, 2.0], [1.0, 2.0, 3.0]])
    net = Network([2, 3, 1], backend=backend, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            ValueError, match=r"^X holds values beyond float32's range: use dtype='float64' or"
        ):
            net.fit(X, [[0, 1, 1]], iterations=1)
    with pytest.raises(ValueError, match=r"^X contains NaN or inf \(1 entries\)"):
        net.fit(np.where(X > 1e30, np.inf, X), [[0, 1, 1]], iterations=1)


def test_an_optimizer_stepped_on_another_network_is_refused(backend):
    from dlcore.optimizers import Adam

    X, Y = planar(backend, m=20)
    opt = Adam(0.01)
    Network([2, 8, 1], backend=backend).fit(X, Y, iterations=2, optimizer=opt)
    with pytest.raises(
        ValueError, match=r"state for W1 has shape \(8, 2\) but W1 has \(3, 2\): .*its own optimizer"
    ):
        Network([2, 3, 1], backend=backend).fit(X, Y, iterations=2, optimizer=opt)
    # the same shapes on another backend (or device): the library's own error ("Only Array objects are
    # allowed") half-way through the first step, after the step count had moved on and the fit had counted
    devices = {"numpy": "array_api_strict", "array_api_strict:CPU_DEVICE": "array_api_strict:device1"}
    other = devices.get(backend.spec(), "numpy")
    net, fresh = (Network([2, 8, 1], backend=other, seed=5) for _ in range(2))
    before, t = {k: net.backend.to_numpy(v).copy() for k, v in net.params.items()}, opt.t
    pattern = (
        r"^this optimizer's state for W1 (is of type \S+ but W1 is of type \S+|is on device .* but W1 on "
        r".*): it was stepped on another network; give each network its own optimizer$"
    )
    Xh, Yh = backend.to_numpy(X), backend.to_numpy(Y)
    with pytest.raises(ValueError, match=pattern):
        net.fit(Xh, Yh, iterations=2, optimizer=opt)
    for k, v in before.items():  # refused before any update
        np.testing.assert_array_equal(net.backend.to_numpy(net.params[k]), v)
    assert opt.t == t
    options = dict(epochs=2, batch_size=8, optimizer="adam")  # and the refused fit drew no seed
    assert net.fit(Xh, Yh, **options).costs == fresh.fit(Xh, Yh, **options).costs


def test_numpys_longdouble_data_trains_on_every_backend(backend):
    """NumPy's longdouble trained on numpy and was refused elsewhere ("could not convert it (can't convert
    np.ndarray of type numpy.longdouble")."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 20))
    Y = (X[:1] > 0) * 1.0
    costs = [
        Network([3, 4, 1], backend=backend, seed=2).fit(data, Y, 0.5, iterations=3).costs
        for data in (X.astype(np.longdouble), X)
    ]
    assert costs[0] == costs[1]
    labels = (X[:1] > 0) + (X[1:2] > 0) * 1.0  # classes 0..2, and their normalization: longdouble too
    net = Network([3, 4, 3], output_activation="softmax", backend=backend, seed=2)
    net.normalization = Normalization.fit(X.astype(np.longdouble), backend)
    assert np.isfinite(
        net.fit(X.astype(np.longdouble), labels.astype(np.longdouble), 0.5, iterations=3).costs[-1]
    )
