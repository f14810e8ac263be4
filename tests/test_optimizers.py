"""Optimizers: the first (and second) steps against hand computations in NumPy, state on the right
device, learning-rate decay, and argument errors."""

from __future__ import annotations

import types

import numpy as np
import pytest

from dlcore.optimizers import Adam, GradientDescent, Momentum, RMSprop, get_optimizer
from tests.conftest import to_host


def _setup(backend, dtype, host_rng):
    W0 = host_rng.standard_normal((3, 2))
    b0 = host_rng.standard_normal((3, 1))
    g1 = {"dW1": host_rng.standard_normal((3, 2)), "db1": host_rng.standard_normal((3, 1))}
    g2 = {"dW1": host_rng.standard_normal((3, 2)), "db1": host_rng.standard_normal((3, 1))}
    params = {"W1": backend.asarray(W0, dtype=dtype), "b1": backend.asarray(b0, dtype=dtype)}
    as_dev = lambda g: {k: backend.asarray(v, dtype=dtype) for k, v in g.items()}  # noqa: E731
    host = {"W1": W0.copy(), "b1": b0.copy()}
    return params, host, g1, g2, as_dev


def _hand(name, host, gs, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """The course's update rules, written out in float64 NumPy for the given sequence of gradients."""
    out = {k: v.copy() for k, v in host.items()}
    v = {k: np.zeros_like(x) for k, x in host.items()}
    s = {k: np.zeros_like(x) for k, x in host.items()}
    for t, g in enumerate(gs, start=1):
        for k in out:
            d = g["d" + k]
            if name == "gd":
                out[k] = out[k] - lr * d
            elif name == "momentum":
                v[k] = beta1 * v[k] + (1 - beta1) * d
                out[k] = out[k] - lr * v[k]
            elif name == "rmsprop":
                s[k] = beta2 * s[k] + (1 - beta2) * d**2
                out[k] = out[k] - lr * d / (np.sqrt(s[k]) + eps)
            else:  # adam
                v[k] = beta1 * v[k] + (1 - beta1) * d
                s[k] = beta2 * s[k] + (1 - beta2) * d**2
                v_hat, s_hat = v[k] / (1 - beta1**t), s[k] / (1 - beta2**t)
                out[k] = out[k] - lr * v_hat / (np.sqrt(s_hat) + eps)
    return out


@pytest.mark.parametrize("name", ["gd", "momentum", "rmsprop", "adam"])
def test_first_two_steps_match_the_hand_computation(backend, dtype, tol, host_rng, name):
    params, host, g1, g2, as_dev = _setup(backend, dtype, host_rng)
    opt = get_optimizer(name, learning_rate=0.05)
    opt.step(params, as_dev(g1))
    want = _hand(name, host, [g1], 0.05)
    loose = {"rtol": max(tol["rtol"], 1e-12), "atol": max(tol["atol"], 1e-12)}
    for k in params:
        np.testing.assert_allclose(to_host(backend, params[k]), want[k], **loose)
        assert params[k].device == backend.device and params[k].dtype == backend.dtype(dtype)
    opt.step(params, as_dev(g2))
    want = _hand(name, host, [g1, g2], 0.05)
    for k in params:
        np.testing.assert_allclose(to_host(backend, params[k]), want[k], **loose)
    assert opt.t == 2


def test_adam_takes_its_step_count_on_the_device_too(backend, dtype, host_rng):
    """A count kept on the device (mixed precision's) gives what the same count on the host gives, through
    the backend's ops and through the default's (whose float64 pow is the device library's, not Python's:
    within an ulp, so the results within a few); four steps, checked against the hand computation too."""
    from dlcore.ops import Ops

    gs = [{k: host_rng.standard_normal(v) for k, v in (("dW1", (3, 2)), ("db1", (3, 1)))} for _ in range(4)]
    results = []
    for ops in (backend.ops, Ops(backend.xp)):
        for on_device in (False, True):
            params, host, _, _, as_dev = _setup(backend, dtype, np.random.default_rng(1))
            opt = Adam(0.05)
            if on_device:
                opt.t = backend.xp.asarray(0, dtype=backend.xp.int64, device=backend.device)
            for g in gs:
                opt.step(params, as_dev(g), ops)
            assert int(opt.t) == 4 and isinstance(opt.t, int) is not on_device
            results.append({k: to_host(backend, v) for k, v in params.items()})
    ulps = 4 * np.finfo(dtype).eps
    for k in results[0]:
        if backend.name == "numpy":  # NumpyOps reads a count on the host: the same bits
            assert np.array_equal(results[0][k], results[1][k])
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=ulps, atol=0)
        np.testing.assert_allclose(results[3][k], results[2][k], rtol=ulps, atol=0)
    want = _hand("adam", host, gs, 0.05)
    for k in want:
        np.testing.assert_allclose(results[1][k], want[k], rtol=1e-5 if dtype == "float32" else 1e-12)


def test_adam_first_step_is_a_signed_step_of_size_lr(backend, host_rng):
    """Bias correction at t = 1: v^ = g and s^ = g^2, so W moves by lr * g / (|g| + eps) ~ lr * sign(g)."""
    params, host, g1, _, as_dev = _setup(backend, "float64", host_rng)
    Adam(learning_rate=0.01).step(params, as_dev(g1))
    step = host["W1"] - to_host(backend, params["W1"])
    np.testing.assert_allclose(step, 0.01 * np.sign(g1["dW1"]), rtol=1e-6)


def test_state_is_shaped_like_the_parameters_on_their_device(backend):
    params = {"W1": backend.asarray(np.ones((4, 3))), "b1": backend.asarray(np.ones((4, 1)))}
    grads = {"dW1": backend.asarray(np.full((4, 3), 0.5)), "db1": backend.asarray(np.full((4, 1), 0.5))}
    opt = Adam()
    opt.step(params, grads)
    for state in (opt.v, opt.s):
        assert set(state) == {"W1", "b1"}
        for k, value in state.items():
            assert value.shape == params[k].shape and value.device == backend.device
    np.testing.assert_allclose(to_host(backend, opt.v["W1"]), 0.05)  # (1 - beta1) g
    np.testing.assert_allclose(to_host(backend, opt.s["W1"]), 0.001 * 0.25)  # (1 - beta2) g^2
    np.testing.assert_array_equal(to_host(backend, grads["dW1"]), 0.5)  # gradients are not touched


def test_a_step_on_another_networks_parameters_is_refused_before_the_count_moves(backend):
    """The state is checked once per parameter dict (not every step: 8% of a planar Adam step), so a
    new dict of another library is still checked before anything changes."""
    params, _, _, _, as_dev = _setup(backend, "float64", np.random.default_rng(1))
    opt = Adam(0.05)
    grads = as_dev({f"d{k}": np.ones(tuple(v.shape)) for k, v in params.items()})
    opt.step(params, grads)
    opt.step(params, grads)
    # NumPy arrays: another library's, or on numpy another network's shapes
    other = {k: np.ones((7,) if backend.name == "numpy" else tuple(v.shape)) for k, v in params.items()}
    with pytest.raises(ValueError, match=r"^this optimizer's state for \w+ (is of type|has shape)"):
        opt.step(other, {f"d{k}": v for k, v in other.items()})
    assert opt.t == 2


def test_gradient_descent_is_the_plain_update(backend):
    from dlcore.propagation import update

    a = {"W1": backend.asarray(np.arange(6.0).reshape(3, 2))}
    b = {"W1": backend.asarray(np.arange(6.0).reshape(3, 2))}
    g = {"dW1": backend.asarray(np.linspace(-1, 1, 6).reshape(3, 2))}
    GradientDescent(0.3).step(a, g)
    update(b, g, 0.3)
    np.testing.assert_array_equal(to_host(backend, a["W1"]), to_host(backend, b["W1"]))


@pytest.mark.parametrize("make", [lambda: None, GradientDescent, Momentum, RMSprop, Adam])
def test_gradients_of_another_kind_than_their_parameters_are_refused(backend, make):
    """torch took NumPy gradients as no update at all (its in-place operators return NotImplemented for an
    ndarray: W stayed, Adam's moments too), the others failed inside the library; a (3, 1) gradient of a
    (3, 2) W broadcast silently everywhere. update() and a first optimizer step name the gradient now."""
    from dlcore.propagation import update

    params = {"W1": backend.asarray(np.ones((3, 2))), "b1": backend.asarray(np.zeros((3, 1)))}
    good = {"dW1": backend.asarray(np.full((3, 2), 0.5)), "db1": backend.asarray(np.full((3, 1), 0.5))}
    host = {k: np.asarray(to_host(backend, v)) for k, v in good.items()}
    if backend.name == "numpy":  # array_api_strict's arrays, another library's
        import array_api_strict

        alien = {k: array_api_strict.asarray(v) for k, v in host.items()}
    else:
        alien = host
    cases = [
        (alien, r"^dW1 and W1 are arrays of two libraries"),
        ({**good, "dW1": backend.asarray(np.ones((3, 1)))}, r"^dW1 has shape \(3, 1\) but W1 has \(3, 2\)"),
        (
            {**good, "db1": backend.asarray(np.ones((3, 1), np.float32))},
            r"^db1 is \S*float32 but b1 is \S*float64",
        ),
        ({"dW1": good["dW1"]}, r"^grads lack db1: give one gradient per parameter"),
    ]
    for grads, refused in cases:
        optimizer = make()
        with pytest.raises(ValueError, match=refused):
            update(params, grads, 0.1) if optimizer is None else optimizer.step(params, grads)
        assert optimizer is None or optimizer.t == 0
    np.testing.assert_array_equal(to_host(backend, params["W1"]), 1.0)  # nothing changed
    update(params, types.MappingProxyType(good), 0.1)  # any mapping, as before the check
    np.testing.assert_allclose(to_host(backend, params["W1"]), 0.95)
    Adam(0.1).step(params, types.MappingProxyType({**good, "dextra": good["dW1"]}))  # extra keys: fine


def test_an_optimizer_moved_to_another_network_is_refused_by_the_next_fit(backend):
    """Checked once per parameter dict, by id: a dict changed in place between two dlcore.train calls (or
    a new one at a freed one's id) skipped the check, and the step failed half-way (opt.t moved, Adam's v
    scaled); a float64 state on float32 parameters trained on in float64 on numpy and torch, and failed
    mid-step on array_api_strict. Each fit checks the state first now, dtype too."""
    import dlcore

    X = backend.asarray(np.random.default_rng(0).standard_normal((2, 50)))
    Y = backend.asarray((np.arange(50)[None] % 2) * 1.0)
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
    opt = Adam(0.01)
    params = dlcore.initialize_parameters([2, 4, 1], "he", backend, 1, "float64")
    dlcore.train(params, acts, X, Y, optimizer=opt, plan=dlcore.Plan.of(50, None, 5, None))
    v = to_host(backend, opt.v["W1"])
    params.update(dlcore.initialize_parameters([2, 8, 1], "he", backend, 1, "float64"))  # same dict
    with pytest.raises(
        ValueError, match=r"^this optimizer's state for W1 has shape \(4, 2\) but W1 has \(8, 2\)"
    ):
        dlcore.train(params, acts, X, Y, optimizer=opt, plan=dlcore.Plan.of(50, None, 5, None))
    assert opt.t == 5 and np.array_equal(to_host(backend, opt.v["W1"]), v)  # nothing changed
    net = dlcore.Network([2, 4, 1], backend=backend, seed=1)
    net.fit(X, Y, optimizer=(reused := Adam(0.01)), iterations=3)
    half = dlcore.Network([2, 4, 1], backend=backend, seed=1, dtype="float32")
    with pytest.raises(
        ValueError, match=r"^this optimizer's state for W1 is \S*float64 but W1 is \S*float32"
    ):
        half.fit(backend.to_numpy(X), backend.to_numpy(Y), optimizer=reused, iterations=3)
    assert reused.t == 3


def test_learning_rate_decay():
    opt = Momentum(learning_rate=0.1, decay_rate=0.5)
    assert [opt.start_epoch(e) for e in (0, 1, 2, 4)] == pytest.approx([0.1, 0.1 / 1.5, 0.05, 0.1 / 3])
    assert GradientDescent(0.1).start_epoch(100) == 0.1  # no decay by default


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: get_optimizer("sgd2"), "unknown optimizer 'sgd2'.*adam"),
        (lambda: Adam(learning_rate=0), "learning_rate must be a finite number > 0"),
        (lambda: Adam(beta1=1.0), r"beta1 must be a number in \[0, 1\); got 1.0$"),
        (lambda: RMSprop(beta2=-0.1), r"beta2 must be a number in \[0, 1\); got -0.1$"),
        (lambda: Momentum(beta="x"), r"beta must be a number in \[0, 1\); got 'x'$"),  # was float()'s error
        # epsilon was not checked: NaN or 0 (0/0 on a zero gradient) ended in "lower the learning rate"
        (lambda: Adam(epsilon=float("nan")), r"epsilon must be a finite number > 0 \(e.g. 1e-8\); got nan$"),
        (lambda: RMSprop(epsilon=0.0), r"epsilon must be a finite number > 0 \(e.g. 1e-8\); got 0.0$"),
        (lambda: Adam(epsilon=-1.0), r"epsilon must be a finite number > 0"),
        (lambda: Adam(epsilon="x"), r"epsilon must be a finite number > 0 \(e.g. 1e-8\); got 'x'$"),
        (lambda: Momentum(decay_rate=-1), "decay_rate must be a finite number >= 0"),
    ],
)
def test_bad_optimizer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_get_optimizer_passes_objects_through():
    opt = RMSprop(0.002)
    assert get_optimizer(opt) is opt
    assert isinstance(get_optimizer("momentum", 0.1), Momentum)


@pytest.mark.parametrize("precision", [None, "float16"])
def test_an_optimizer_used_in_two_fits_goes_on_with_its_decay(precision):
    """Its moments and step count carried on into the next fit, but its learning rate went back to
    alpha0. Oracle: alpha0 / (1 + decay_rate * epoch), the epoch counted over both fits."""
    from dlcore import MixedPrecision, Network

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 20))
    Y = (X[:1] > 0) * 1.0
    adam = Adam(0.1, decay_rate=0.5)
    how = {"optimizer": adam} if precision is None else {"precision": MixedPrecision(adam, precision)}
    net = Network([2, 3, 1], backend="numpy", seed=0, dtype="float32")
    net.fit(X, Y, epochs=4, batch_size=5, **how)
    assert adam.t == 16 and adam.learning_rate == pytest.approx(0.1 / (1 + 0.5 * 3))
    net.fit(X, Y, epochs=2, batch_size=5, **how)
    assert adam.t == 24 and adam.learning_rate == pytest.approx(0.1 / (1 + 0.5 * 5))
