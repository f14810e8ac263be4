"""Mini-batches, dropout, L2 and early stopping: batch cutting and shuffling, dropout statistics,
batch_size = m equals full-batch training exactly, one epoch against a hand-written loop, seeds."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from dlcore.backends import get_backend

import dlcore
from dlcore import Network
from dlcore.activations import get_activation
from dlcore.datasets import planar
from dlcore.early_stopping import EarlyStopping
from dlcore.minibatch import mini_batches, num_batches, train_validation_split
from dlcore.regularization import dropout_mask, forward_with_dropout
from tests.conftest import to_host


# -- batches ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("m", "batch_size", "sizes"), [(10, 4, [4, 4, 2]), (12, 4, [4, 4, 4]), (5, 8, [5])])
def test_batches_cover_every_column_once_with_a_partial_last(backend, m, batch_size, sizes):
    X = backend.asarray(np.arange(2.0 * m).reshape(2, m))
    Y = backend.asarray(np.arange(float(m)).reshape(1, m))
    batches = list(mini_batches(X, Y, batch_size, backend.rng(0)))
    assert [b[0].shape[1] for b in batches] == sizes == [b[1].shape[1] for b in batches]
    assert num_batches(m, batch_size) == len(sizes)
    cols = np.concatenate([to_host(backend, y)[0] for _, y in batches])
    assert sorted(cols) == list(range(m))
    for Xb, Yb in batches:  # X and Y are shuffled together
        np.testing.assert_array_equal(to_host(backend, Xb)[1], m + to_host(backend, Yb)[0])
        assert Xb.device == backend.device
    if len(sizes) > 1:
        assert list(cols) != list(range(m))  # shuffled


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((400, -5, 100, None), r"batch_size must be an integer >= 1 \(or None for the full batch\); got -5"),
        ((400, 0, 10, None), r"batch_size must be an integer >= 1 .*; got 0"),
        ((100, None, None, None), r"give epochs or iterations \(an iteration is one mini-batch update\)"),
        ((400, 32, 100, 2), r"give epochs or iterations, not both"),
        ((0, None, 5, None), r"m must be an integer >= 1; got 0"),
        ((400, None, 2.5, None), r"iterations must be an integer >= 1; got 2\.5"),
        ((400, None, None, 0), r"epochs must be an integer >= 1; got 0"),
    ],
)
def test_a_plan_is_checked_where_it_is_made(args, message):
    """Plan.of (public: train(plan=...)) took anything: batch_size -5 trained 0 updates and returned,
    0 divided by zero, neither iterations nor epochs was a TypeError, both dropped iterations."""
    from dlcore.training import Plan

    with pytest.raises(ValueError, match=f"^{message}"):
        Plan.of(*args)
    assert Plan.of(400, 1000, 7, None) == Plan(400, 400, 7, 7)  # a batch larger than m: the full batch
    assert Plan.of(400, 64, None, 3) == Plan(400, 64, 3, None)


def test_the_last_recorded_cost_is_on_the_epochs_scale_with_l2(backend):
    """Each batch's cost carries lambda / (2 m_b) ||W||^2, so an epoch's mean carries T lambda / (2 m)
    ||W||^2; the final cost carried it once: with a learning rate too small to move anything, the last
    entry fell by (T - 1) lambda / (2 m) ||W||^2 (0.68 here) below the others."""
    X, Y = planar(backend, m=100)
    net = Network([2, 16, 1], init="he", backend=backend, seed=1)
    h = net.fit(X, Y, 1e-9, epochs=3, batch_size=20, l2=1.0)  # T = 5
    assert h.costs[-1] == pytest.approx(h.costs[-2], rel=1e-6)
    W2 = sum(float(np.sum(to_host(backend, net.params[f"W{l}"]) ** 2)) for l in (1, 2))
    assert h.costs[-1] == pytest.approx(net.cost(X, Y) + 5 * 1.0 / (2 * 100) * W2, rel=1e-12)


def test_same_seed_same_shuffle_on_every_backend(backend):
    def order(be):
        Y = be.asarray(np.arange(50.0).reshape(1, 50))
        rng = be.rng(7)
        return [np.concatenate([to_host(be, y)[0] for _, y in mini_batches(Y, Y, 16, rng)]) for _ in range(2)]

    ours, ref = order(backend), order(get_backend("numpy"))
    np.testing.assert_array_equal(ours, ref)
    assert not np.array_equal(ours[0], ours[1])  # a new order each epoch


def test_validation_split(backend):
    X = backend.asarray(np.arange(20.0).reshape(2, 10))
    Y = backend.asarray(np.arange(10.0).reshape(1, 10))
    Xt, Yt, Xv, Yv = train_validation_split(X, Y, 0.25, backend.rng(1))
    assert Xt.shape == (2, 7) and Xv.shape == (2, 3)
    assert sorted(np.concatenate([to_host(backend, Yt)[0], to_host(backend, Yv)[0]])) == list(range(10))
    with pytest.raises(ValueError, match=r"validation_split must be a fraction in \(0, 1\)"):
        train_validation_split(X, Y, 1.5, backend.rng(1))
    for bad in ("a", None, [0.2]):  # float()'s own words named no option
        with pytest.raises(
            ValueError,
            match=rf"^validation_split must be a fraction in \(0, 1\); got {re.escape(repr(bad))}$",
        ):
            train_validation_split(X, Y, bad, backend.rng(1))


# -- dropout ------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_dropout_mask_statistics(backend, dtype, keep_prob):
    D = to_host(backend, dropout_mask((200, 500), keep_prob, backend.rng(3), backend.dtype(dtype)))
    kept = D != 0
    assert kept.mean() == pytest.approx(keep_prob, abs=0.01)  # 100,000 draws: sd ~ 0.0016
    np.testing.assert_allclose(D[kept], 1.0 / keep_prob, rtol=1e-6)  # inverted: kept units scaled by 1/p
    assert D.mean() == pytest.approx(1.0, abs=0.02)  # so the expected activation is unchanged


def test_dropout_forward_keeps_the_mean_activation(backend):
    X = backend.asarray(np.random.default_rng(0).standard_normal((10, 2000)))
    params = dlcore.initialize_parameters([10, 300, 1], "he", backend, 1, "float64")
    acts = [get_activation("relu"), get_activation("sigmoid")]
    _, caches = dlcore.forward(X, params, acts)
    _, dcaches, masks = forward_with_dropout(X, params, acts, 0.6, backend.rng(5))
    plain = to_host(backend, caches[1].A_prev)  # A[1] as layer 2 sees it
    dropped = to_host(backend, dcaches[1].A_prev)
    assert len(masks) == 1 and masks[0].shape == (300, 2000)
    assert (dropped == 0).mean() == pytest.approx(0.4 * 1 + 0.6 * (plain == 0).mean(), abs=0.01)
    assert dropped.mean() == pytest.approx(plain.mean(), rel=0.02)


def test_dropout_gradient_check_with_fixed_masks(backend):
    """Replaying the same seed gives the same masks, so the dropped-out cost is a fixed function to
    differentiate numerically."""
    rng = np.random.default_rng(4)
    dims = [3, 6, 5, 1]
    X = backend.asarray(rng.standard_normal((3, 8)))
    Y = backend.asarray((rng.random((1, 8)) > 0.5).astype(float))
    acts = [get_activation("tanh"), get_activation("relu"), get_activation("sigmoid")]
    params = dlcore.initialize_parameters(dims, "xavier", backend, 2, "float64")

    def cost(host):
        p = {k: backend.asarray(v) for k, v in host.items()}
        _, caches, _ = forward_with_dropout(X, p, acts, 0.7, backend.rng(11))
        return float(dlcore.cost(caches, Y, acts))

    AL, caches, masks = forward_with_dropout(X, params, acts, 0.7, backend.rng(11))
    grads = dlcore.backward(AL, Y, caches, acts, masks)
    host = {k: to_host(backend, v).copy() for k, v in params.items()}
    for name, value in host.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + 1e-6
            plus = cost(host)
            value[idx] = old - 1e-6
            minus = cost(host)
            value[idx] = old
            numeric[idx] = (plus - minus) / 2e-6
        np.testing.assert_allclose(to_host(backend, grads["d" + name]), numeric, rtol=1e-6, atol=1e-9)


# -- early stopping ---------------------------------------------------------------------------
def test_early_stopping_counts_checks_and_keeps_the_best():
    be = get_backend("numpy")
    stop = EarlyStopping(patience=2)
    params = {"W1": be.asarray(np.zeros((1, 1)))}
    decisions = []
    for cost in [1.0, 0.5, 0.6, 0.4, 0.45, 0.41]:
        params["W1"] += 1.0
        decisions.append(stop.check(cost, params))
    assert decisions == [False, False, False, False, False, True]
    assert stop.best == 0.4 and stop.best_index == 3
    assert float(stop.best_params["W1"][0, 0]) == 4.0  # a copy from the best check
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        EarlyStopping(0)
    # costs that are not finite before any finite one: nothing to keep or compare, so no stop (all-NaN
    # checks stopped a fit with no parameters to restore); inf then finite trains on, as before
    stop = EarlyStopping(patience=1)
    assert [stop.check(c, params) for c in (math.nan, math.inf, math.nan, 2.0, 1.0, math.nan)] == [
        False, False, False, False, False, True
    ]  # fmt: skip
    assert stop.best == 1.0 and stop.best_index == 4


# -- the Network --------------------------------------------------------------------------------
def test_batch_size_m_equals_full_batch_training_exactly(backend, dtype):
    X, Y = planar(backend, m=60, dtype=dtype)
    full = Network([2, 5, 1], "tanh", init="xavier", backend=backend, seed=2, dtype=dtype)
    mini = Network([2, 5, 1], "tanh", init="xavier", backend=backend, seed=2, dtype=dtype)
    full.fit(X, Y, learning_rate=0.5, iterations=40)
    history = mini.fit(X, Y, learning_rate=0.5, epochs=40, batch_size=60, optimizer="gd")
    assert history.iterations[-1] == 40 and history.epochs[-1] == 40  # the cost after update 40
    for k, v in full.parameters_numpy().items():
        np.testing.assert_array_equal(mini.parameters_numpy()[k], v)


def test_one_epoch_of_mini_batches_against_a_hand_loop(backend):
    """m = 50, batch_size = 16: batches of 16, 16, 16, 2 in the order of backend.rng(seed).permutation."""
    X, Y = planar(backend, m=50)
    net = Network([2, 4, 1], "tanh", init="xavier", backend=backend, seed=5)
    params = {k: backend.xp.asarray(v, copy=True) for k, v in net.params.items()}
    history = net.fit(X, Y, learning_rate=0.3, epochs=1, batch_size=16, seed=9)
    assert history.iterations == [0, 4]  # the epoch's mean cost from update 0, then J after update 4
    idx = to_host(backend, get_backend("numpy").rng(9).permutation(50))
    Xh, Yh = to_host(backend, X)[:, idx], to_host(backend, Y)[:, idx]
    acts = net.activations
    for start in (0, 16, 32, 48):
        Xb = backend.asarray(Xh[:, start : start + 16])
        Yb = backend.asarray(Yh[:, start : start + 16])
        AL, caches = dlcore.forward(Xb, params, acts)
        dlcore.update(params, dlcore.backward(AL, Yb, caches, acts), 0.3)
    for k, v in params.items():
        np.testing.assert_allclose(net.parameters_numpy()[k], to_host(backend, v), rtol=1e-12, atol=1e-14)


def test_iterations_count_updates_and_may_end_mid_epoch(backend):
    X, Y = planar(backend, m=40)
    net = Network([2, 3, 1], "tanh", backend=backend)
    history = net.fit(X, Y, learning_rate=0.1, iterations=10, batch_size=16)  # 3 batches per epoch
    assert history.iterations[-1] == 10 and history.epochs[-1] == 4  # 3 epochs and 1 update of a 4th
    with pytest.raises(ValueError, match="epochs or iterations, not both"):
        net.fit(X, Y, iterations=10, epochs=2)


@pytest.mark.parametrize("optimizer", ["momentum", "rmsprop", "adam"])
def test_same_seed_same_training_on_every_backend(backend, optimizer):
    X, Y = planar(get_backend("numpy"), m=64)
    kwargs = {"epochs": 3, "batch_size": 16, "optimizer": optimizer, "keep_prob": 0.8, "l2": 0.1, "seed": 4}

    def train(be):
        net = Network([2, 6, 4, 1], "relu", init="he", backend=be, seed=1)
        net.fit(X, Y, learning_rate=0.01, **kwargs)
        return net.parameters_numpy()

    ours, ref = train(backend), train(get_backend("numpy"))
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-12, atol=1e-14)


def test_l2_shrinks_the_weights(backend):
    X, Y = planar(backend, m=100)
    norms = []
    for l2 in (0.0, 5.0):
        net = Network([2, 8, 1], "tanh", init="xavier", backend=backend, seed=1)
        net.fit(X, Y, learning_rate=0.5, epochs=200, batch_size=100, l2=l2)
        norms.append(sum(float(np.sum(v**2)) for k, v in net.parameters_numpy().items() if k[0] == "W"))
    assert norms[1] < 0.5 * norms[0]


def test_dropout_is_off_at_predict_time(backend):
    X, Y = planar(backend, m=80)
    net = Network([2, 16, 1], "relu", backend=backend, seed=1)
    net.fit(X, Y, learning_rate=0.1, epochs=5, batch_size=20, keep_prob=0.5)
    a, b = to_host(backend, net.predict_proba(X)), to_host(backend, net.predict_proba(X))
    np.testing.assert_array_equal(a, b)
    AL, _ = dlcore.forward(net.check_X(X), net.params, net.activations)
    np.testing.assert_array_equal(a, to_host(backend, AL))


def test_early_stopping_restores_the_best_parameters(backend, host_rng):
    """Noisy labels and a wide net overfit: the validation cost turns up, training stops, and the
    restored parameters are the ones with the lowest recorded validation cost."""
    X = host_rng.standard_normal((2, 60))
    Y = (host_rng.random((1, 60)) > 0.5).astype(float)  # pure noise: nothing to generalize
    net = Network([2, 64, 64, 1], "relu", init="he", backend=backend, seed=0)
    history = net.fit(
        X,
        Y,
        learning_rate=0.01,
        epochs=300,
        batch_size=16,
        optimizer="adam",
        validation_split=0.3,
        patience=5,
    )
    assert history.stopped_early and len(history.epochs) < 300
    best = int(np.argmin(history.val_costs))
    assert history.best_epoch == history.epochs[best] + 1  # the cost after that recorded epoch
    assert len(history.val_costs) == best + 1 + 5
    Xv, Yv = _validation_part(backend, X, Y, 0.3, seed=0)
    assert net.cost(Xv, Yv) == pytest.approx(history.val_costs[best], rel=1e-12)
    # oracle: the same fit for exactly best_epoch epochs ends on the restored parameters (it said one less)
    again = Network([2, 64, 64, 1], "relu", init="he", backend=backend, seed=0)
    options = {"batch_size": 16, "optimizer": "adam", "validation_split": 0.3}
    again.fit(X, Y, learning_rate=0.01, epochs=history.best_epoch, **options)
    for name, value in again.parameters_numpy().items():
        np.testing.assert_array_equal(net.parameters_numpy()[name], value, err_msg=name)


def test_a_run_that_ends_without_stopping_keeps_its_last_updates_when_they_do_better(backend, host_rng):
    """Logistic regression whose validation cost falls to the end, checked every 100 of 250 updates: the
    last 50 updates were never checked, and patience restored update 200's parameters (0.2324 against
    0.2168 at the end). Now the final parameters are checked once more and kept when better."""
    X = host_rng.standard_normal((2, 400))
    Y = (X[0:1] + X[1:2] > 0).astype(float)
    Xv, Yv = backend.asarray(X[:, 300:]), backend.asarray(Y[:, 300:])
    nets, runs = {}, {}
    for patience in (None, 5):
        nets[patience] = Network([2, 1], backend=backend, seed=1)
        runs[patience] = nets[patience].fit(
            X[:, :300], Y[:, :300], 0.1, iterations=250, validation_data=(Xv, Yv), patience=patience
        )
    kept = runs[5]
    assert not kept.stopped_early and kept.best_epoch is None
    assert kept.costs == runs[None].costs and len(kept.val_costs) == len(kept.costs)  # the final one too
    # without patience as well: the CLI's "validation cost ... at the end" was update 201's
    assert len(runs[None].val_costs) == len(runs[None].costs)
    assert nets[None].cost(Xv, Yv) == pytest.approx(runs[None].val_costs[-1], rel=1e-12)
    assert kept.val_costs[-1] == min(kept.val_costs)
    assert nets[5].cost(Xv, Yv) == pytest.approx(kept.val_costs[-1], rel=1e-12)
    for name, value in nets[None].parameters_numpy().items():
        np.testing.assert_array_equal(nets[5].parameters_numpy()[name], value)


def test_a_run_whose_last_check_is_its_best_records_the_final_cost(backend, host_rng):
    """Every epoch checked and the validation cost falling to the end: the last check is the best, and its
    parameters are the final ones. That run dropped the History's final entry (the cost after the last
    update, as the same run without patience records it), treating the final parameters as restored."""
    X = host_rng.standard_normal((2, 400))
    Y = (X[0:1] + X[1:2] > 0).astype(float)
    nets, runs = {}, {}
    for patience in (None, 50):
        nets[patience] = Network([2, 4, 1], "tanh", backend=backend, seed=1)
        runs[patience] = nets[patience].fit(
            X, Y, 0.05, epochs=8, batch_size=64, validation_split=0.2, patience=patience
        )
    kept = runs[50]
    assert kept.val_costs == sorted(kept.val_costs, reverse=True) and len(kept.val_costs) == 8
    assert not kept.stopped_early and kept.best_epoch is None
    assert kept.costs == runs[None].costs and kept.iterations == runs[None].iterations
    assert kept.iterations[-1] == kept.updates == 8 * 5
    for name, value in nets[None].parameters_numpy().items():
        np.testing.assert_array_equal(nets[50].parameters_numpy()[name], value)


def test_a_run_that_ends_without_stopping_restores_its_best_check_when_the_end_is_worse(backend, host_rng):
    """Noise overfits, patience never runs out: the final parameters, checked once more, are worse than
    the best check's, which are restored (and no final cost is recorded after them)."""
    X = host_rng.standard_normal((2, 60))
    Y = (host_rng.random((1, 60)) > 0.5).astype(float)
    net = Network([2, 64, 64, 1], "relu", init="he", backend=backend, seed=0)
    options = {
        "epochs": 120,
        "batch_size": 16,
        "optimizer": "adam",
        "validation_split": 0.3,
        "cost_every": 10,
    }
    history = net.fit(X, Y, learning_rate=0.01, patience=1000, **options)
    best = int(np.argmin(history.val_costs))
    assert not history.stopped_early and history.best_epoch == history.epochs[best] + 1 < 120
    assert len(history.costs) == len(history.val_costs)  # no final cost recorded after the restore
    Xv, Yv = _validation_part(backend, X, Y, 0.3, seed=0)
    assert net.cost(Xv, Yv) == pytest.approx(history.val_costs[best], rel=1e-12)


def _validation_part(backend, X, Y, fraction, seed):
    Xb, Yb = backend.asarray(X), backend.asarray(Y)
    _, _, Xv, Yv = train_validation_split(Xb, Yb, fraction, backend.rng(seed))
    return Xv, Yv


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"keep_prob": 0.0}, r"keep_prob must be in \(0, 1\]"),
        ({"l2": -1.0}, "l2 must be a finite number >= 0"),
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
        ({"patience": 3}, "patience needs validation_split"),
        ({"validation_split": 1.0}, r"validation_split must be a fraction in \(0, 1\)"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"l2": None}, r"l2 must be a finite number >= 0; got None"),
        ({"l2": "x"}, r"l2 must be a finite number >= 0; got 'x'"),
        ({"decay_rate": None}, r"decay_rate must be a finite number >= 0; got None"),
        (
            {"validation_split": 0.2, "validation_data": "XY"},
            r"validation_data must be a pair \(X_val, Y_val\)",
        ),
        ({"validation_data": (1, 2, 3)}, r"must be a pair \(X_val, Y_val\); got a tuple of 3"),
        (  # validation_split was silently ignored when validation_data was given
            {"validation_split": 0.2, "validation_data": (np.ones((2, 10)), np.zeros((1, 10)))},
            "give validation_split or validation_data, not both",
        ),
    ],
)
def test_bad_fit_arguments(backend, kwargs, message):
    net = Network([2, 3, 1], backend=backend)
    with pytest.raises(ValueError, match=message):
        net.fit(np.ones((2, 10)), np.zeros((1, 10)), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost_every": 0}, "cost_every must be an integer >= 1"),  # a ZeroDivisionError
        (
            {"keep_prob": 0.5},
            r"dropout \(keep_prob < 1\) draws its masks from rng: pass rng=",
        ),  # AttributeError
        ({"keep_prob": 1.5}, r"keep_prob must be in \(0, 1\]"),
        ({"patience": 3}, r"patience stops on the validation cost: pass validation="),  # silently ignored
        # a plan for 10 of X's 20 columns ran unshuffled mini-batches of 10 for a full batch asked for
        (
            {"plan": dlcore.Plan.of(10, None, 2, None)},
            r"plan is for m = 10 examples but X has 20: make it with",
        ),
    ],
)
def test_the_training_loop_names_a_bad_option(backend, kwargs, message):
    """dlcore.train, the functional loop: the options Network.fit checks for its own callers."""
    X, Y = planar(backend, m=20)
    params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 0, "float64")
    acts = [get_activation("tanh"), get_activation("sigmoid")]
    kwargs = {"plan": dlcore.Plan.of(20, None, 2, None), **kwargs}
    with pytest.raises(ValueError, match=message):
        dlcore.train(params, acts, X, Y, optimizer=dlcore.GradientDescent(0.1), **kwargs)


def test_the_training_loop_checks_its_validation_pair(backend):
    """dlcore.train's validation=(X_val, Y_val) was used unchecked: float32 data trained on numpy and
    failed in torch's matmul, NumPy arrays for a torch network in torch.where, m = 0 recorded NaN costs,
    another n_x failed in each library's own words. Checked as X and Y are now, on every backend."""
    X, Y = planar(backend, m=20)
    Xh, Yh = to_host(backend, X), to_host(backend, Y)
    params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 0, "float64")
    acts = [get_activation("tanh"), get_activation("sigmoid")]
    options = {"optimizer": dlcore.GradientDescent(0.1), "plan": dlcore.Plan.of(20, None, 2, None)}
    cases = [
        ((backend.asarray(Xh[:, :5], dtype="float32"), Y[:, :5]), r"as X and Y: X is \S*float32 but W1 is"),
        ((X[:1, :], Y), r"as X and Y: W1 must have shape \(n\[1\], 1\) to follow X; got \(3, 2\)"),
        ((X[:, :0], Y[:, :0]), r"^validation=\(X_val, Y_val\) holds no examples \(m = 0\)"),
        ((X, backend.asarray(Yh.astype(np.int64))), r"as X and Y: Y is \S*int64 but W1 is"),
        ((X,), r"^validation must be a pair \(X_val, Y_val\); got tuple"),
    ]
    if backend.name != "numpy":
        cases.append(((Xh, Yh), r"as X and Y: X and W1 are arrays of two libraries"))
    for validation, message in cases:
        with pytest.raises(ValueError, match=message):
            dlcore.train(params, acts, X, Y, validation=validation, patience=2, **options)
    history = dlcore.train(params, acts, X, Y, validation=(X[:, :5], Y[:, :5]), patience=2, **options)
    assert len(history.val_costs) == 2 and all(math.isfinite(c) for c in history.val_costs)


def test_activations_changed_during_a_fit_change_nothing_on_any_backend(backend):
    """A callback that swapped net.activations[0] mid-fit reached numpy's checked epochs but not its
    recorded (replayed) ones: numpy trained a mix of both, the other backends the new one. A fit keeps
    the activations it was given, on every backend."""
    X, Y = planar(backend, m=80)
    Yh = to_host(backend, Y)

    def costs(swap):
        net = Network([2, 6, 1], "relu", backend=backend, seed=1)
        calls = []

        def callback(i, J):
            calls.append(i)
            if swap and len(calls) == 2:
                net.activations[0] = get_activation("tanh")

        return net.fit(X, Yh, 0.1, iterations=30, cost_every=5, callback=callback).costs

    assert costs(swap=True) == costs(swap=False)


def test_validation_data_errors_name_the_validation_data_and_a_nan_cost_keeps_training(backend):
    """fit(validation_data=...) said "X contains NaN or inf" of clean training data. A validation X the
    network overflows on (NaN validation costs) stopped the fit early with no parameters to keep
    (best_epoch None: "kept the parameters of epoch None" in the CLI): it is said in a warning, and checks
    with nothing finite to compare count as no check. A divergence is still TrainingDiverged, rolled back."""
    X, Y = planar(backend, m=40)
    Xh, Yh = to_host(backend, X), to_host(backend, Y)
    Xv = Xh[:, :6].copy()
    Xv[0, 0] = np.nan
    net = Network([2, 3, 1], "tanh", backend=backend, seed=4)
    with pytest.raises(
        ValueError, match=r"^validation_data=\(X_val, Y_val\), as X and Y: X contains NaN or inf"
    ):
        net.fit(X, Y, 0.5, epochs=2, validation_data=(Xv, Yh[:, :6]))
    huge = np.full((2, 6), 1e308)
    huge[1] = -1e308
    deep = Network([2, 16, 16, 1], "relu", backend=backend, seed=4)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflows themselves: NumPy's own words
        said = r"^the validation cost is nan after update \d+ while the training cost is finite: X_val holds"
        with pytest.warns(UserWarning, match=said) as caught:
            history = deep.fit(
                X, Y, 0.1, epochs=20, batch_size=10, validation_data=(huge, Yh[:, :6]), patience=3
            )
        ours = [w for w in caught if w.category is UserWarning]  # (the overflows' RuntimeWarnings aside)
        assert len(ours) == 1 and ours[0].filename == __file__  # said once, of the user's line
        assert not history.stopped_early and history.best_epoch is None and history.updates == 80
        assert all(math.isnan(c) for c in history.val_costs)
        without = Network([2, 16, 16, 1], "relu", backend=backend, seed=4)
        with pytest.warns(
            UserWarning, match=said
        ):  # the final parameters' cost is recorded, as without patience
            plain = without.fit(X, Y, 0.1, epochs=20, batch_size=10, validation_data=(huge, Yh[:, :6]))
        assert len(history.val_costs) == len(plain.val_costs)
        params = dlcore.initialize_parameters([2, 16, 16, 1], "he", backend, 4, "float64")
        acts = [get_activation("relu"), get_activation("relu"), get_activation("sigmoid")]
        with pytest.warns(UserWarning, match=said) as caught:  # the functional loop: the user's line too
            options = {"optimizer": dlcore.GradientDescent(0.1), "plan": dlcore.Plan.of(40, None, 3, None)}
            dlcore.train(
                params, acts, X, Y, validation=(backend.asarray(huge), Y[:, :6]), patience=2, **options
            )
        assert [w.filename for w in caught if w.category is UserWarning] == [__file__]
    rng = np.random.default_rng(0)
    Xr = rng.standard_normal((2, 200))
    Yr = Xr[:1] * 3 + Xr[1:] + 1
    line = Network([2, 8, 1], "relu", "linear", backend=backend, seed=1)
    before = line.parameters_numpy()
    for batch_size in (64, None):  # full batch: the validation cost (NaN) right after the diverging step
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning blaming X_val: the rollback's message says it all
            with pytest.raises(dlcore.TrainingDiverged, match=r"the parameters from iteration 0 were kept"):
                line.fit(Xr, Yr, 1e8, epochs=5, batch_size=batch_size, validation_split=0.2, cost_every=1)
        for k, v in line.parameters_numpy().items():
            np.testing.assert_array_equal(v, before[k])


def test_a_divergence_after_the_last_cost_check_that_early_stopping_restored_is_named(backend):
    """A fit that diverged after its last training cost check, and whose best check early stopping then
    restored, warned that X_val held values the network cannot compute with (a split of the same data):
    the training cost then is measured, and the warning says training diverged."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 200))
    Y = X[:1] * 3 + X[1:] + 1
    net = Network([2, 8, 1], "relu", "linear", backend=backend, seed=1)
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = net.fit(X, Y, 2.0, iterations=80, validation_split=0.2, patience=3)
    said = [str(w.message) for w in caught if w.category is UserWarning]
    assert said == [
        "training diverged after the last cost check (the validation cost became nan after update 80); early "
        "stopping restored the parameters of its best check: lower the learning rate"
    ]
    assert history.best_epoch == 1 and all(np.isfinite(v).all() for v in net.parameters_numpy().values())


def test_mini_batch_divergence_is_caught(backend):
    X, Y = planar(backend, m=64)
    net = Network([2, 8, 8, 1], "linear", init="he", backend=backend, seed=0)
    with pytest.raises(dlcore.TrainingDiverged, match="training diverged"):
        net.fit(X, Y, learning_rate=1e6, epochs=50, batch_size=16)
    assert all(np.all(np.isfinite(v)) for v in net.parameters_numpy().values())
    assert math.isfinite(net.cost(X, Y))
