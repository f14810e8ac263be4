"""Mixed precision (dlcore.precision): float32 masters, low-precision compute, dynamic loss scaling.

Runs on every backend that computes in a low dtype (numpy: float16; torch: bfloat16 and float16; cupy:
float16) and skips the others with one short reason. Inputs are fresh random
numbers (never zeros).
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from dlcore.backends import BackendError, get_backend

import dlcore
from dlcore import datasets
from dlcore import propagation as prop
from dlcore.activations import get_activation
from dlcore.heads import head_for
from dlcore.optimizers import Adam, GradientDescent
from dlcore.precision import MixedPrecision, train_mixed
from dlcore.training import Plan, TrainingDiverged, train
from tests.conftest import BACKENDS, _backend_param, numeric_gradients, to_host

LOW = ["bfloat16", "float16"]
#: unit roundoff (half the machine epsilon) of each compute dtype
UNIT = {"bfloat16": 2.0**-9, "float16": 2.0**-11}


def _combos():
    for name in BACKENDS:
        if name == "array_api_strict:device1":
            continue  # the same answer as array_api_strict
        base = _backend_param(name)
        for dtype in LOW:
            yield pytest.param((name, dtype), marks=base.marks, id=f"{name}-{dtype}")


@pytest.fixture(params=list(_combos()))
def mixed(request):
    """(backend, compute dtype) for every pair the backend supports; the others skip with the reason."""
    name, dtype = request.param
    backend = get_backend(name)
    if dtype not in backend.low_precision_dtypes():
        have = ", ".join(backend.low_precision_dtypes()) or "no low dtype"
        pytest.skip(f"{backend.name} computes in {have}, not {dtype}")
    return backend, dtype


def _planar(backend, dims=(2, 8, 1), seed=3):
    X, Y = datasets.planar(backend, m=400, seed=seed, dtype="float32")
    acts = [get_activation("tanh")] * (len(dims) - 2) + [get_activation("sigmoid")]
    params = dlcore.initialize_parameters(list(dims), "xavier", backend, seed, "float32")
    return X, Y, params, acts


def _copy(backend, params):
    return {k: backend.xp.asarray(v, copy=True) for k, v in params.items()}


def _host(backend, params):
    return {k: to_host(backend, v).astype(np.float64) for k, v in params.items()}


# -- the backend seam -------------------------------------------------------------------------------
def test_each_backend_says_which_low_dtypes_it_computes_in():
    assert get_backend("numpy").low_precision_dtypes() == ("float16",)
    assert get_backend("array_api_strict").low_precision_dtypes() == ()
    torch = _backend_param("torch")
    if not torch.marks:
        assert get_backend("torch").low_precision_dtypes() == ("bfloat16", "float16")
    if not _backend_param("cupy").marks:  # CuPy 14's bfloat16 is partial (backends/cupy_backend.py)
        assert get_backend("cupy").low_precision_dtypes() == ("float16",)


def test_an_unsupported_dtype_is_one_sentence_that_names_the_fix():
    with pytest.raises(
        BackendError,
        match=r"^the numpy backend cannot compute in bfloat16; use "
        r"float16 or the torch backend \(bfloat16, float16\)$",
    ):
        get_backend("numpy").low_precision_dtype("bfloat16")
    with pytest.raises(
        BackendError,
        match=r"^the array_api_strict backend has no low-precision dtype; "
        r"use the torch backend \(bfloat16, float16\) or numpy \(float16\)$",
    ):
        MixedPrecision(GradientDescent(0.1), "float16").prepare(
            _planar(get_backend("array_api_strict"))[2], get_backend("array_api_strict")
        )
    with pytest.raises(BackendError, match=r"^the array_api_strict backend has no low-precision dtype; "):
        MixedPrecision(GradientDescent(0.1)).prepare(  # "mixed": it said "cannot compute in float16"
            _planar(get_backend("array_api_strict"))[2], get_backend("array_api_strict")
        )
    with pytest.raises(
        ValueError, match=r"init_scale must be a number > 0 and at most max_scale \(1.67772e\+07\)"
    ):
        MixedPrecision(GradientDescent(0.1), "float16", init_scale=2.0**40)
    # each option's own sentence, where Python's float() and int() errors escaped
    for option, value, message in [
        ("loss_scale", [2], r"loss_scale must be 'auto', 'dynamic', a number > 0 or None; got \[2\]$"),
        ("growth_interval", "x", r"growth_interval must be an integer >= 1; got 'x'$"),
        ("init_scale", "x", r"init_scale must be a number > 0 .*; got 'x'$"),
        # a number as text, or True, was taken as no scaling at all
        ("loss_scale", "1024", r"loss_scale must be 'auto', 'dynamic', a number > 0 or None; got '1024'$"),
        ("loss_scale", True, r"loss_scale must be 'auto', 'dynamic', a number > 0 or None; got True$"),
        ("growth_factor", "x", r"needs growth_factor > 1 and 0 < backoff_factor < 1; got 'x' and 0.5$"),
        ("max_scale", None, r"max_scale must be a finite number >= 0; got None$"),
    ]:
        with pytest.raises(ValueError, match=message):
            MixedPrecision(GradientDescent(0.1), "float16", **{option: value})
    with pytest.raises(ValueError, match="compute_dtype must be one of bfloat16, float16"):
        MixedPrecision(GradientDescent(0.1), "float8")
    wraps = r"^MixedPrecision wraps an Optimizer object \(e\.g\. Adam\(0\.001\)\); got "
    for given, hint in [
        # a name, as fit(optimizer=) takes: it failed at the first step, "'str' object has no attribute 't'"
        ("adam", r"'adam': for an optimizer by name, pass fit\(optimizer='adam', precision='mixed'\)$"),
        (None, r"None$"),  # the by-name hint for names only (None was told "pass fit(optimizer=None, ...)")
        (Adam, r"<class 'dlcore\.optimizers\.Adam'>: an instance, not the class$"),
        # the dtype alone, first: the by-name hint sent it to fit(optimizer='float16'), an unknown optimizer
        (
            "float16",
            r"'float16': the optimizer first, then the dtype, MixedPrecision\(Adam\(0\.001\), 'float16'\)$",
        ),
        (np.array([1.0, 2.0]), r"array\(\[1\., 2\.\]\)$"),  # was NumPy's "truth value ... is ambiguous"
    ]:
        with pytest.raises(ValueError, match=wraps + hint):
            MixedPrecision(given)


# -- training ---------------------------------------------------------------------------------------
def test_the_network_holds_the_current_parameters_while_a_scaled_fit_runs(mixed):
    """With dynamic scaling and a stateful optimizer each step put new arrays into the masters, so the
    network's dict kept the parameters of step 1 until the fit returned: a callback's net.cost stayed
    0.6361 while the fit's cost fell to 0.2068."""
    backend, dtype = mixed
    X, Y = datasets.planar(get_backend("numpy"), dtype="float32")
    net = dlcore.Network([2, 8, 1], "tanh", backend=backend, dtype="float32", seed=3)
    seen = []
    net.fit(X, Y, iterations=300, callback=lambda i, J: seen.append((J, net.cost(X, Y))),
            precision=MixedPrecision(Adam(0.01), dtype))  # fmt: skip
    for J, now in seen:  # the fit's cost (low precision) and the network's own (float32), same parameters
        assert abs(J - now) < 0.01 * J, seen
    assert seen[-1][1] < 0.5 * seen[0][1]


def test_training_x_beyond_the_compute_dtype_is_refused(mixed):
    """A feature of 1e5 is inf in float16: tanh(inf) = 1 kept the cost finite, 0 * inf made every
    gradient NaN, every step was skipped, the scale fell to 0 and the fit returned unchanged."""
    backend, dtype = mixed
    if dtype != "float16":
        pytest.skip("bfloat16 holds 1e5")
    X, Y = datasets.planar(get_backend("numpy"), dtype="float32")
    X[0, 5] = 1e5
    net = dlcore.Network([2, 8, 1], "tanh", backend=backend, dtype="float32", seed=3)
    with pytest.raises(ValueError, match=r"^X holds values beyond float16's range: standardize X or compute"):
        net.fit(X, Y, iterations=5, precision=MixedPrecision(Adam(0.01), dtype))


def test_masters_stay_float32_while_the_loop_computes_low(mixed):
    backend, dtype = mixed
    X, Y, params, acts = _planar(backend)
    mp = MixedPrecision(Adam(0.01), dtype)
    seen = []
    history = train_mixed(
        params,
        acts,
        X,
        Y,
        precision=mp,
        backend=backend,
        plan=Plan.of(400, None, 20, None),
        cost_every=5,
        callback=lambda i, J: seen.append(J),
    )
    f32, low = backend.dtype("float32"), backend.low_precision_dtype(dtype)
    assert all(v.dtype == f32 for v in params.values())
    assert all(v.dtype == f32 for v in mp.masters.values())
    assert all(v.dtype == low for v in mp._low.values())
    assert len(history) == 5 and all(math.isfinite(J) for J in history)
    assert seen == list(history.costs)[: len(seen)] and len(seen) >= 4  # the callback saw the records
    # the cost is computed from A[L], Z[L] cast up: the loop's check sees a float32 number
    ops = mp.wrap_ops(backend.ops)
    _, caches = prop._forward(mp.cast(X), mp._low, acts, ops=ops)
    assert caches[-1].A.dtype == low
    assert prop._cost(caches, Y, acts, head_for(acts[-1]), ops).dtype == f32


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_a_mixed_fit_ends_close_to_the_float32_fit(mixed, optimizer):
    """Tolerance: the final costs within 0.01 + 4 u J and the predictions on >= 98% of the points the
    same, u the compute dtype's unit roundoff. The masters accumulate every update in float32, so the
    low dtype only perturbs each step's gradient by O(u) relative (the forward's rounding), and the two
    runs of 600 steps stay on the same path; measured: |dJ| ~ 3e-4 (bfloat16) and 5e-5 (float16)."""
    backend, dtype = mixed
    X, Y, p32, acts = _planar(backend)
    pm = _copy(backend, p32)
    plan = Plan.of(400, None, 600, None)
    make = (lambda: GradientDescent(1.2)) if optimizer == "gd" else (lambda: Adam(0.01))
    h32 = train(p32, acts, X, Y, optimizer=make(), plan=plan, cost_every=100, ops=backend.ops)
    hm = train_mixed(
        pm, acts, X, Y, precision=MixedPrecision(make(), dtype), backend=backend, plan=plan, cost_every=100
    )
    J32, Jm = h32.costs[-1], hm.costs[-1]
    assert abs(Jm - J32) <= 0.01 + 4 * UNIT[dtype] * J32, (J32, Jm)
    assert J32 < 0.5 * h32.costs[0]  # it learned something to compare
    agree = np.mean(
        to_host(backend, prop.predict(X, p32, acts)) == to_host(backend, prop.predict(X, pm, acts))
    )
    assert agree >= 0.98


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_the_output_gradient_is_float32_accurate_for_confident_outputs(mixed, output):
    """dZ[L] = s (A[L] - Y) / m from the low-precision logits Z[L], against its float64 closed form: within
    one rounding to the compute dtype, also where A[L] is near 1 (A[L] computed in the low dtype and cast
    up gave bfloat16's sigmoid(6) = 0.99609: dZ 58% off, and 0 from p ~ 0.999 on). The cost too."""
    from dlcore.heads import HEADS

    backend, dtype = mixed
    mp = MixedPrecision(GradientDescent(1.0), dtype, loss_scale=None)
    mp.prepare({"W1": backend.asarray(np.ones((1, 1)), dtype="float32")}, backend)
    ops, head = mp.wrap_ops(backend.ops), HEADS[output]
    z = np.array([[2.0, 4.0, 5.5, 6.0, 7.0, 9.0], [-1.0, 0.5, -3.0, 1.0, 2.0, -2.0]])
    z = z[:1] if output == "sigmoid" else z
    y = np.zeros_like(z)
    y[0] = 1.0  # the first unit is the answer (softmax: one-hot; sigmoid: label 1; linear: target 1)
    Zl = mp.cast(backend.asarray(z, dtype="float32"))
    zq = to_host(backend, Zl).astype(np.float64)  # the logits the loop holds, exactly
    if output == "sigmoid":
        a = 1 / (1 + np.exp(-zq))
        J = np.mean(np.logaddexp(0, -zq))
    elif output == "softmax":
        a = np.exp(zq - zq.max(axis=0)) / np.exp(zq - zq.max(axis=0)).sum(axis=0)
        J = -np.mean(np.log(a[0]))
    else:
        a = zq
        J = np.sum((a - y) ** 2) / (2 * z.shape[1])
    A_low = head.activation.forward(Zl)  # what the loop's forward pass computed
    Y = backend.asarray(y, dtype="float32")
    scale = 1024.0  # a static loss scale's place (backward's scale): float16 keeps dZ out of subnormals
    dZ = to_host(backend, ops.output_gradient(head, Zl, A_low, Y, scale)).astype(np.float64)
    want = scale * (a - y) / z.shape[1]
    np.testing.assert_allclose(dZ, want, rtol=2 * UNIT[dtype], atol=1e-7 * np.abs(want).max())
    assert float(ops.cost(head, Zl, A_low, Y)) == pytest.approx(J, rel=1e-4)  # float32 (a log near 1)


def test_host_arrays_reach_the_low_dtype_with_one_rounding(mixed):
    """asarray(host, low): NumPy has no bfloat16 (torch's), so that cast happens on the backend, from the
    host's float64, rounding once, as a cast of the float64 array on the backend does."""
    backend, dtype = mixed
    low = backend.low_precision_dtype(dtype)
    host = np.random.default_rng(2).standard_normal((3, 50))
    got = backend.asarray(host, dtype=low)
    want = backend.xp.astype(backend.asarray(host), low)
    assert got.dtype == low
    np.testing.assert_array_equal(to_host(backend, got), to_host(backend, want))


def test_dropout_masks_come_in_the_compute_dtype(mixed):
    """D = (U < keep_prob) / keep_prob for the low dtype (drawn as torch bfloat16 it once raised
    TypeError): float32's mask exactly (U is drawn and compared in float32, then the mask cast), and a
    fit with it trains."""
    backend, dtype = mixed
    low = backend.low_precision_dtype(dtype)
    D = backend.ops.dropout_mask((8, 400), 0.8, backend.rng(5), low)
    D32 = backend.ops.dropout_mask((8, 400), 0.8, backend.rng(5), backend.dtype("float32"))
    assert D.dtype == low
    d, d32 = to_host(backend, D).astype(np.float64), to_host(backend, D32).astype(np.float64)
    assert set(np.unique(d)) == {0.0, 1.25}
    np.testing.assert_array_equal(d, d32)
    X, Y, _, _ = _planar(backend)
    net = dlcore.Network([2, 8, 1], "tanh", init="xavier", backend=backend, dtype="float32", seed=1)
    history = net.fit(X, Y, learning_rate=1.2, iterations=300, keep_prob=0.8, precision=dtype, cost_every=100)
    assert history.costs[-1] < 0.8 * history.costs[0]


def test_gradients_in_the_low_dtype_agree_with_float64_finite_differences(mixed):
    """The mixed step's unscaled gradients against central differences in float64 at the same point
    (the parameters and X rounded to the compute dtype, then cast up). Tolerance: relative error in norm
    below 16 u (bfloat16 ~3e-2, float16 ~8e-3): each layer's forward and backward round to u once per
    operation, over 3 layers and sums of 16 terms."""
    backend, dtype = mixed
    rng = np.random.default_rng(20261122)
    dims, m = [5, 6, 4, 1], 16
    acts = [get_activation("tanh"), get_activation("tanh"), get_activation("sigmoid")]
    X = backend.asarray(rng.standard_normal((dims[0], m)), dtype="float32")
    Y = backend.asarray((rng.random((1, m)) > 0.5).astype(float), dtype="float32")
    params = dlcore.initialize_parameters(dims, "xavier", backend, 7, "float32")
    for l in range(1, len(dims)):
        params[f"b{l}"] = backend.asarray(rng.standard_normal((dims[l], 1)) * 0.5, dtype="float32")
    mp = MixedPrecision(GradientDescent(1.0), dtype, loss_scale="dynamic", init_scale=1024.0)
    low = mp.prepare(params, backend)
    ops = mp.wrap_ops(backend.ops)
    Xl = mp.cast(X)
    AL, caches = prop._forward(Xl, low, acts, ops=ops)
    grads = mp.unscale(prop._backward(AL, Y, caches, acts, None, 1.0, ops, head_for(acts[-1])))

    host = get_backend("numpy")
    X64 = host.asarray(to_host(backend, mp.xp.astype(Xl, backend.dtype("float32"))), dtype="float64")
    Y64 = host.asarray(to_host(backend, Y), dtype="float64")

    def cost_of(hp):
        _, c = dlcore.forward(X64, {k: host.asarray(v, dtype="float64") for k, v in hp.items()}, acts)
        return float(dlcore.cost(c, Y64, acts))

    at = {k: mp.xp.astype(v, backend.dtype("float32")) for k, v in low.items()}  # the rounded point
    fd = numeric_gradients(cost_of, backend, at, eps=1e-6)
    for name, g in fd.items():
        mine = to_host(backend, grads[name]).astype(np.float64)
        err = np.linalg.norm(mine - g) / max(np.linalg.norm(g), 1e-12)
        assert err < 16 * UNIT[dtype], (name, err)


# -- dynamic loss scaling -----------------------------------------------------------------------------
def _random_grads(backend, params, low, rng, scale=1.0):
    return {
        "d" + k: backend.xp.astype(
            backend.asarray(rng.standard_normal(tuple(v.shape)) * scale, dtype="float32"), low
        )
        for k, v in params.items()
    }


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_loss_scaling_skips_an_overflowing_step_and_halves_the_scale(mixed, optimizer):
    backend, dtype = mixed
    rng = np.random.default_rng(11)
    _, _, params, _ = _planar(backend, dims=(3, 5, 1))
    inner = GradientDescent(0.1) if optimizer == "gd" else Adam(0.01)
    mp = MixedPrecision(inner, dtype, loss_scale="dynamic", init_scale=1024.0, growth_interval=3)
    low = mp.prepare(params, backend)
    lowdt = mp.low_dtype
    ops = mp.wrap_ops(backend.ops)
    # a good step first, so that Adam has state to keep
    mp.step(low, _random_grads(backend, params, lowdt, rng, 1024.0), ops, inner.gradient_scale)
    before = _host(backend, mp.masters)
    state = {k: np.array(to_host(backend, v)) for k, v in getattr(inner, "v", {}).items()}
    grads = _random_grads(backend, params, lowdt, rng, 1024.0)
    bad = to_host(backend, mp.xp.astype(grads["dW1"], backend.dtype("float32")))
    bad[0, 0] = np.inf  # an overflow in one entry of one gradient
    with backend.quiet_floating_point():
        grads["dW1"] = mp.xp.astype(backend.asarray(bad, dtype="float32"), lowdt)
    with backend.quiet_floating_point():  # the cast of inf warns on NumPy
        mp.step(low, grads, ops, inner.gradient_scale)
    after = _host(backend, mp.masters)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # skipped: masters unchanged
    assert all(np.array_equal(state[k], to_host(backend, inner.v[k])) for k in state)
    assert float(mp.loss_scale) == 512.0 and int(mp.skipped_steps) == 1
    f32 = backend.dtype("float32")
    for k, v in low.items():  # the loop's parameters are the masters cast down
        recast = mp.xp.astype(mp.xp.astype(mp.masters[k], lowdt), f32)
        assert np.array_equal(to_host(backend, mp.xp.astype(v, f32)), to_host(backend, recast))
    for _ in range(3):  # three good steps: the scale doubles back, the masters move
        mp.step(low, _random_grads(backend, params, lowdt, rng, 512.0), ops, inner.gradient_scale)
    assert float(mp.loss_scale) == 1024.0 and int(mp.skipped_steps) == 1
    assert not np.array_equal(_host(backend, mp.masters)["W1"], after["W1"])


def test_training_recovers_from_a_loss_scale_that_overflows(mixed):
    """Starting at S = 2^40 every float16 gradient overflows until S has halved enough: those steps
    are skipped, then training goes on to the float32 result."""
    backend, dtype = mixed
    if dtype == "bfloat16":
        pytest.skip("bfloat16 has float32's range: no loss scale overflows it")
    X, Y, p32, acts = _planar(backend)
    pm = _copy(backend, p32)
    plan = Plan.of(400, None, 400, None)
    h32 = train(p32, acts, X, Y, optimizer=Adam(0.01), plan=plan, cost_every=100, ops=backend.ops)
    mp = MixedPrecision(Adam(0.01), dtype, loss_scale="dynamic", init_scale=2.0**40, max_scale=2.0**40)
    hm = train_mixed(pm, acts, X, Y, precision=mp, backend=backend, plan=plan, cost_every=100)
    skipped = int(mp.skipped_steps)
    assert 5 <= skipped <= 120, skipped
    assert abs(hm.costs[-1] - h32.costs[-1]) < 0.05, (h32.costs, hm.costs)


def test_skipped_steps_do_not_advance_adams_step_count(mixed):
    """Adam's bias correction counts the updates made, not the steps tried (PyTorch's GradScaler skips
    ``optimizer.step()``): a run whose first k steps overflow ends bit-identical to a run started at the
    scale those k halvings reach, after as many good steps."""
    backend, dtype = mixed
    if dtype == "bfloat16":
        pytest.skip("bfloat16 has float32's range: no loss scale overflows it")
    X, Y, params, acts = _planar(backend)
    good = 60

    def run(init_scale, iterations):
        p, adam = _copy(backend, params), Adam(0.01)
        mp = MixedPrecision(adam, dtype, loss_scale="dynamic", init_scale=init_scale, max_scale=2.0**40)
        plan = Plan.of(400, None, iterations, None)
        train_mixed(p, acts, X, Y, precision=mp, backend=backend, plan=plan, cost_every=1000)
        return _host(backend, p), int(mp.skipped_steps), int(adam.t), mp.t

    _, k, _, _ = run(2.0**40, good)  # how many halvings 2^40 needs
    assert 5 <= k < good, k
    skipping, skipped, t, tried = run(2.0**40, k + good)
    clean, none, t_clean, _ = run(2.0 ** (40 - k), good)
    assert (skipped, none, t, t_clean, tried) == (k, 0, good, good, k + good)
    assert all(np.array_equal(skipping[name], clean[name]) for name in clean)


def _count_host_syncs(torch, monkeypatch) -> list[str]:
    """The list that every later conversion of a torch tensor to a host value is appended to (by method
    name) until ``monkeypatch.undo()``."""
    syncs = []
    for method in ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu"):
        original = getattr(torch.Tensor, method)
        monkeypatch.setattr(
            torch.Tensor,
            method,
            lambda self, *a, _m=method, _o=original, **k: (syncs.append(_m), _o(self, *a, **k))[1],
        )
    return syncs


def test_a_step_makes_no_host_sync(mixed, monkeypatch):
    """Dynamic loss scaling decides on the device: a step (good or overflowing) converts nothing to a
    host number. Counted on torch tensors (NumPy's conversions cannot be intercepted)."""
    backend, dtype = mixed
    if backend.name != "torch":
        pytest.skip("host syncs are intercepted on torch tensors only")
    torch = backend.lib
    rng = np.random.default_rng(5)
    _, _, params, _ = _planar(backend, dims=(3, 5, 1))
    mp = MixedPrecision(Adam(0.01), dtype, loss_scale="dynamic", init_scale=1024.0, growth_interval=2)
    low = mp.prepare(params, backend)
    ops = mp.wrap_ops(backend.ops)
    batches = [_random_grads(backend, params, mp.low_dtype, rng, 1024.0) for _ in range(3)]
    batches[1]["db1"] = batches[1]["db1"] * float("inf")
    syncs = _count_host_syncs(torch, monkeypatch)
    for grads in batches:
        mp.step(low, grads, ops, 1.0)
    monkeypatch.undo()
    assert syncs == []
    assert int(mp.skipped_steps) == 1


def test_a_mixed_run_syncs_only_at_the_cost_checks(mixed, monkeypatch):
    """A whole train_mixed run on torch converts a device value to the host only at the loop's cost
    checks: ceil(N / k) + 1 ``float`` calls (tests/test_host_sync.py counts the same for float32), after
    one ``bool`` before the loop: whether X, cast, fits the compute dtype."""
    backend, dtype = mixed
    if backend.name != "torch":
        pytest.skip("host syncs are intercepted on torch tensors only")
    torch = backend.lib
    X, Y, params, acts = _planar(backend)
    syncs = _count_host_syncs(torch, monkeypatch)
    mp = MixedPrecision(Adam(0.01), dtype, loss_scale="dynamic", init_scale=2.0**20, growth_interval=3)
    history = train_mixed(
        params, acts, X, Y, precision=mp, backend=backend, plan=Plan.of(400, None, 10, None), cost_every=3
    )
    monkeypatch.undo()
    assert len(history) == 5 and syncs == ["__bool__"] + ["__float__"] * 5


def test_the_l2_cost_of_low_precision_weights_is_summed_in_float32(mixed):
    """Weights of 10 (four 40 x 40 layers: a sum of squares of 640,000) under float16 compute: the L2 cost
    is finite and float32-accurate (summed in float16 it was inf, a false divergence; in bfloat16 ~3
    digits). Oracle: float64 on the host."""
    from dlcore.regularization import l2_cost

    backend, dtype = mixed
    mp = MixedPrecision(GradientDescent(0.1), dtype, loss_scale=None)
    masters = {f"W{l}": backend.asarray(np.full((40, 40), 10.0), dtype="float32") for l in range(1, 5)}
    low = mp.prepare(masters, backend)
    J = float(l2_cost(low, 0.5, 100))
    assert J == pytest.approx(0.5 / 200 * 4 * 1600 * 100.0, rel=1e-6)


def test_l2_with_dynamic_loss_scaling_is_refused():
    backend = get_backend("numpy")
    X, Y, params, acts = _planar(backend)
    # the fixes a fit user can pass (compute_dtype= was MixedPrecision's argument, not fit's)
    fix = r"use precision='bfloat16' \(a backend that has it: torch\), a static loss scale \(MixedPrecision"
    with pytest.raises(ValueError, match="l2 with dynamic loss scaling is not supported: " + fix):
        train_mixed(
            params,
            acts,
            X,
            Y,
            precision=MixedPrecision(GradientDescent(0.1), "float16"),
            backend=backend,
            plan=Plan.of(400, None, 2, None),
            l2=0.1,
        )


def test_a_refused_mixed_fit_draws_no_seed_and_prepares_nothing():
    """Both refusals came after fit counted the fit (and prepare had taken the masters): a fit after the
    refused one shuffled and dropped out as a second fit would, unlike a fresh network's first."""
    X, Y, _, _ = _planar(get_backend("numpy"))
    options = dict(epochs=2, batch_size=64, optimizer="adam", learning_rate=0.01, keep_prob=0.8)
    refused, fresh = (dlcore.Network([2, 8, 1], backend="numpy", dtype="float32", seed=3) for _ in range(2))
    with pytest.raises(BackendError, match="bfloat16"):  # numpy computes in float16 only
        refused.fit(X, Y, precision="bfloat16", **options)
    mp = MixedPrecision(GradientDescent(0.1), "float16")
    with pytest.raises(ValueError, match="l2 with dynamic loss scaling is not supported"):
        refused.fit(X, Y, precision=mp, l2=0.1, epochs=2)
    assert mp.masters == {} and mp.loss_scale is None and mp.optimizer.t == 0
    assert (
        refused.fit(X, Y, precision="float16", **options).costs
        == fresh.fit(X, Y, precision="float16", **options).costs
    )


def test_bfloat16_with_a_dynamic_scale_and_l2_is_told_to_drop_the_scale():
    """It was told "use precision='bfloat16'", which it was."""
    mp = MixedPrecision(GradientDescent(0.1), "bfloat16", loss_scale="dynamic")
    backend = types.SimpleNamespace(
        low_precision_dtypes=lambda: ("bfloat16",), low_precision_dtype=lambda n: n
    )
    with pytest.raises(
        ValueError,
        match=r"^l2 with dynamic loss scaling is not supported: pass loss_scale=None \(bfloat16 has "
        r"float32's range: it needs no loss scale\) or l2=0$",
    ):
        mp.check(backend, l2=0.1)
    mp.check(backend, l2=0.0)
    MixedPrecision(GradientDescent(0.1), "bfloat16").check(backend, l2=0.1)  # "auto": no scale


def test_static_loss_scale_trains_with_l2(mixed):
    backend, dtype = mixed
    X, Y, p32, acts = _planar(backend)
    pm = _copy(backend, p32)
    plan = Plan.of(400, None, 200, None)
    h32 = train(
        p32, acts, X, Y, optimizer=GradientDescent(0.5), plan=plan, cost_every=50, l2=0.5, ops=backend.ops
    )
    mp = MixedPrecision(GradientDescent(0.5), dtype, loss_scale=256.0)
    hm = train_mixed(pm, acts, X, Y, precision=mp, backend=backend, plan=plan, cost_every=50, l2=0.5)
    assert abs(hm.costs[-1] - h32.costs[-1]) <= 0.01, (h32.costs, hm.costs)


def test_divergence_rolls_the_masters_back_too(mixed):
    """After TrainingDiverged the masters are exactly the float32 masters of the last check that passed
    (once they were its low-precision copies cast up: a silent rounding of every weight). Oracle: the
    masters copied at each check, by the callback."""
    backend, dtype = mixed
    X, Y, params, acts = _planar(backend)
    mp = MixedPrecision(GradientDescent(1e4), dtype)
    seen = {}

    def keep(i, J):
        seen[i] = _copy(backend, mp.masters)

    with pytest.raises(TrainingDiverged):
        train_mixed(
            params,
            acts,
            X,
            Y,
            precision=mp,
            backend=backend,
            plan=Plan.of(400, None, 50, None),
            cost_every=1,
            divergence_factor=2.0,
            callback=keep,
        )
    kept = seen[max(seen)]  # (the initial masters where the first update diverged)
    for name, v in params.items():
        assert v.dtype == backend.dtype("float32")
        np.testing.assert_array_equal(to_host(backend, v), to_host(backend, kept[name]), err_msg=name)


def test_early_stopping_restores_the_masters_too(mixed):
    """Early stopping restores the best check's float32 masters exactly, not the last step's, and not
    its low-precision copies cast up. A third of the validation labels are flipped, so its cost turns up
    once the network grows confident. Oracle: the same run for exactly ``best_epoch`` epochs ends on
    those masters."""
    backend, dtype = mixed
    X, Y, params, acts = _planar(backend)
    start = _copy(backend, params)
    Yh = to_host(backend, Y)
    flipped = backend.asarray(np.where(np.arange(400) % 3 == 0, 1 - Yh, Yh), dtype="float32")
    options = {"precision": None, "backend": backend, "validation": (X, flipped)}

    def run(p, epochs, patience=None):
        options["precision"] = MixedPrecision(GradientDescent(0.3), dtype)
        plan = Plan.of(400, 100, None, epochs)
        return train_mixed(p, acts, X, Y, plan=plan, patience=patience, **options)

    history = run(params, 200, patience=3)
    assert history.stopped_early and history.best_epoch > 1
    again = _copy(backend, start)
    run(again, history.best_epoch)
    for name, v in params.items():
        np.testing.assert_array_equal(to_host(backend, v), to_host(backend, again[name]), err_msg=name)


def test_validation_values_beyond_the_compute_dtype_are_refused(mixed):
    """70,000 in float16 is inf: every validation cost was NaN and early stopping ended the fit after
    `patience` checks, silently (the training X's overflow is "training cannot start")."""
    backend, dtype = mixed
    if dtype == "bfloat16":
        pytest.skip("bfloat16 has float32's range: it holds every finite float32 value")
    X, Y, params, acts = _planar(backend)
    Xv = to_host(backend, X).copy()
    Xv[0, 0] = 7e4
    Xv = backend.asarray(Xv, dtype="float32")
    net = dlcore.Network([2, 8, 1], "tanh", backend=backend, dtype="float32", seed=1)
    with pytest.raises(
        ValueError, match=rf"^the validation X holds values beyond {dtype}'s range: standardize"
    ):
        net.fit(X, Y, epochs=30, batch_size=100, precision=dtype, validation_data=(Xv, Y), patience=3)


# -- the wiring: Network.fit(precision=) and the CLI ----------------------------------------------------
def test_a_mixed_precision_object_brings_its_own_optimizer(mixed):
    """fit(precision=MixedPrecision(Adam(...))) runs that Adam; an optimizer= beside it would be ignored,
    so it is refused, an explicit "gd" too (the default could not be told from it before)."""
    backend, dtype = mixed
    X, Y, _, _ = _planar(backend)
    net = dlcore.Network([2, 4, 1], "tanh", backend=backend, dtype="float32", seed=1)
    mp = MixedPrecision(Adam(0.01), dtype)
    net.fit(X, Y, iterations=20, precision=mp)
    skipped = 0 if mp.skipped_steps is None else int(mp.skipped_steps)  # float16's, left out of Adam's t
    assert mp.t == 20 and int(mp.optimizer.t) == 20 - skipped
    net.fit(X, Y, iterations=5, precision=mp, optimizer=mp.optimizer)  # its own: the same thing
    for other in ("gd", "adam", Adam(0.01)):
        with pytest.raises(ValueError, match="wraps its own optimizer"):
            net.fit(X, Y, iterations=5, precision=mp, optimizer=other)


def test_a_mixed_precision_passed_as_the_optimizer_is_refused(mixed):
    """It failed at its first step ('NoneType' has no attribute 'astype'), or, used before on network A,
    stepped A's masters from B's gradients and left B holding low-precision copies of A's weights."""
    backend, dtype = mixed
    X, Y, params, acts = _planar(backend)
    A = dlcore.Network([2, 4, 1], "tanh", backend=backend, dtype="float32", seed=1)
    used = MixedPrecision(Adam(0.01), dtype)
    A.fit(X, Y, iterations=3, precision=used)
    before = _host(backend, A.params)
    message = r"^a MixedPrecision is passed as precision=, not optimizer= \(Network\.fit\(\.\.\., precision="
    for mp in (MixedPrecision(Adam(0.01), dtype), used):
        B = dlcore.Network([2, 4, 1], "tanh", backend=backend, dtype="float32", seed=2)
        start = _host(backend, B.params)
        with pytest.raises(ValueError, match=message):
            B.fit(X, Y, iterations=3, optimizer=mp)
        assert all(np.array_equal(start[k], v) for k, v in _host(backend, B.params).items())
        with pytest.raises(ValueError, match=message):  # the functional train: train_mixed prepares it
            train(_copy(backend, params), acts, X, Y, optimizer=mp, plan=Plan.of(400, None, 3, None))
    assert all(np.array_equal(before[k], v) for k, v in _host(backend, A.params).items())


def test_an_optimizer_class_is_told_to_be_an_instance():
    with pytest.raises(ValueError, match=r"^optimizer=Adam is the class: pass an instance \(Adam\(0\.001\)\)"
                       r" or its name \('adam'\)$"):  # fmt: skip
        dlcore.Network([2, 4, 1], backend="numpy").fit(np.ones((2, 4)), np.ones((1, 4)), optimizer=Adam)


def test_a_compute_dtype_left_to_the_backend_stays_left_to_each_backend():
    """prepare wrote the first backend's choice into compute_dtype: after a torch fit (bfloat16) a numpy
    fit was refused ("cannot compute in bfloat16"), and restart kept the pin."""
    pytest.importorskip("torch")
    mp = MixedPrecision(GradientDescent(0.5))
    for name, low in (("torch", "bfloat16"), ("numpy", "float16"), ("torch", "bfloat16")):
        backend = get_backend(name)
        X, Y, _, _ = _planar(backend)
        net = dlcore.Network([2, 4, 1], "tanh", backend=backend, dtype="float32", seed=1)
        net.fit(X, Y, iterations=3, precision=mp)
        assert mp.compute_dtype is None and mp.compute_name == low
        assert mp.low_dtype == backend.low_precision_dtype(low)


def test_fit_with_precision_keeps_float32_masters(mixed):
    backend, dtype = mixed
    X, Y = datasets.planar(backend, m=400, seed=3, dtype="float32")
    net = dlcore.Network([2, 8, 1], "tanh", backend=backend, dtype="float32", seed=3)
    history = net.fit(X, Y, 1.2, iterations=300, cost_every=100, precision=dtype)
    assert all(v.dtype == backend.dtype("float32") for v in net.params.values())
    assert history.costs[-1] < 0.5 * history.costs[0]
    with pytest.raises(
        ValueError, match="keeps float32 master weights: create the network with dtype='float32'"
    ):
        dlcore.Network([2, 8, 1], backend=backend, seed=3).fit(X, Y, iterations=2, precision=dtype)


def test_the_cli_trains_in_mixed_precision(capsys, tmp_path):
    from dlcore.cli import main

    argv = ["train", "--dataset", "planar", "--iterations", "200", "--quiet", "--precision", "mixed"]
    code = main([*argv, "--backend", "numpy", "--out", str(tmp_path / "m.npz")])
    out = capsys.readouterr().out
    assert code == 0 and "float32 masters, float16 compute" in out
    assert dlcore.Network.load(tmp_path / "m.npz").info["precision"] == "float16"  # said in the model
    assert (
        main(
            ["train", "--dataset", "planar", "--iterations", "2", "--dtype", "bfloat16", "--backend", "numpy"]
        )
        == 2
    )
    assert (
        "the numpy backend cannot compute in bfloat16; use float16 or the torch backend"
        in capsys.readouterr().err
    )
