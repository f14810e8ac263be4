"""The replayed training step (NumpyOps.capture(step, replay=True)): the same bits as the default ops on
every call, replayed only while the arguments are the same, never for what it cannot record."""

from __future__ import annotations

import contextlib
import threading
import tracemalloc

import numpy as np
import pytest
from dlcore.backends import get_backend
from dlcore.backends.numpy_backend import OPS, STAGE_MAX_ELEMENTS, NumpyOps, _Recorder
from dlcore.benchmarks.workloads import seeded_data, step_peak_bytes

import dlcore
from dlcore.activations import ACTIVATIONS, Activation, get_activation, sigmoid, sigmoid_derivative
from dlcore.ops import Ops

#: the sigmoid under a name of its own: the course's general head (dA[L], then g'), as any output
#: activation of one's own gets
COURSE_SIGMOID = Activation("course_sigmoid", sigmoid, sigmoid_derivative)

NP = get_backend("numpy")
DEFAULT = Ops(NP.xp)  # the plain Array API ops on NumPy arrays: the oracle


class Spy(NumpyOps):
    """NumpyOps that count the primitives the core asks for: a replayed step asks for none."""

    def __init__(self, xp):
        super().__init__(xp)
        self.calls = 0

    def layer_forward(self, *args):
        self.calls += 1
        return super().layer_forward(*args)


def _net(dims, hidden, out, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    head_act = get_activation(out)
    if out == "softmax":
        Y = np.eye(dims[-1], dtype=dtype)[:, rng.integers(0, dims[-1], m)]
    elif out == "linear":
        Y = rng.standard_normal((dims[-1], m)).astype(dtype)
    else:
        Y = (rng.random((dims[-1], m)) > 0.5).astype(dtype)
    acts = [get_activation(hidden)] * (len(dims) - 2) + [head_act]
    params = dlcore.initialize_parameters(dims, "xavier", NP, seed + 1, dtype)
    return X, Y, acts, params


def _copy(params):
    return {k: v.copy() for k, v in params.items()}


def _same(got, want):
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k, strict=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m", [50, 3000])  # (n, m) below and above NumpyOps.SMALL: malloc and workspace
@pytest.mark.parametrize(
    ("dims", "hidden", "out"),
    [
        ([2, 4, 1], "tanh", "sigmoid"),
        ([3, 6, 5, 1], "relu", "sigmoid"),
        ([3, 5, 2], "sigmoid", "sigmoid"),
        ([3, 5, 1], "leaky_relu:0.1", "sigmoid"),  # not recorded: leaky ReLU computes outside the tape
        ([3, 5, 2], "tanh", "linear"),  # not recorded: mean squared error is the default's
        ([3, 5, 3], "relu", "softmax"),  # not recorded either
        ([3, 5, 1], "tanh", COURSE_SIGMOID),  # the course's general head: not recorded
    ],
)
def test_the_replayed_step_is_the_default_ops_step_bit_for_bit(dims, hidden, out, m, dtype):
    X, Y, acts, params = _net(dims, hidden, out, m, dtype)
    spy = Spy(NP.xp)
    mine, oracle = _copy(params), _copy(params)
    for i in range(6):
        J = dlcore.train_step(X, Y, mine, acts, 0.05, ops=spy)
        J_want = dlcore.train_step(X, Y, oracle, acts, 0.05, ops=DEFAULT)
        assert np.asarray(J).tobytes() == np.asarray(J_want).tobytes(), i
        _same(mine, oracle)
    recorded = hidden in ("tanh", "relu", "sigmoid") and out == "sigmoid"
    # calls 1 and 2 run the primitives (the second one records), calls 3-6 replay when it could record
    assert spy.calls == (2 if recorded else 6) * (len(dims) - 1)


def test_a_replay_follows_its_arguments():
    """A new learning rate, compute_cost, parameter array, X or activation is a new step: recorded again;
    the same arrays with new contents are replayed (the replay reads them)."""
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 300, "float64")
    spy = Spy(NP.xp)
    mine, oracle = _copy(params), _copy(params)

    def both(X=X, Y=Y, lr=0.1, cost=True, acts=acts):
        before = spy.calls
        J = dlcore.train_step(X, Y, mine, acts, lr, compute_cost=cost, ops=spy)
        J_want = dlcore.train_step(X, Y, oracle, acts, lr, compute_cost=cost, ops=DEFAULT)
        assert (J is None) == (J_want is None) and (J is None or float(J) == float(J_want))
        _same(mine, oracle)
        return spy.calls > before  # ran the primitives (False: replayed)

    assert [both() for _ in range(4)] == [True, True, False, False]
    assert [both(lr=0.2) for _ in range(3)] == [True, True, False]  # learning-rate decay
    assert [both(lr=0.2, cost=False) for _ in range(3)] == [True, True, False]
    X[:] = np.random.default_rng(1).standard_normal(X.shape)  # new contents, same array: replayed
    assert both(lr=0.2, cost=False) is False
    mine["W1"], oracle["W1"] = mine["W1"].copy(), oracle["W1"].copy()  # a new array in the same dict
    assert [both(lr=0.2, cost=False) for _ in range(3)] == [True, True, False]
    X2 = X.copy()
    assert [both(X=X2) for _ in range(3)] == [True, True, False]
    relu = [get_activation("relu"), acts[1]]
    assert [both(X=X2, acts=relu) for _ in range(3)] == [True, True, False]
    alternating = [both(X=x) for x in (X, X2, X, X2)]  # never twice in a row: never recorded
    assert alternating == [True, True, True, True]


def test_a_learning_rate_of_another_type_or_changed_in_place_is_a_new_step():
    """0.5 then np.float32(0.5) (equal, other rounding of alpha / m) replayed the first one's; a 0-D
    learning rate decayed in place (the same array) replayed the value it was recorded with."""
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 300, "float64")
    mine, oracle = _copy(params), _copy(params)
    lr = np.array(0.5)
    for rate in [0.5, 0.5, 0.5, np.float32(0.5), np.float32(0.5), 0.5] + [lr] * 6:
        J = dlcore.train_step(X, Y, mine, acts, rate, ops=OPS)
        J_want = dlcore.train_step(X, Y, oracle, acts, rate, ops=DEFAULT)
        assert np.asarray(J).tobytes() == np.asarray(J_want).tobytes()
        _same(mine, oracle)
        if rate is lr:
            lr *= 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mini_batches_of_a_transposed_x_are_copied_in_its_layout(dtype):
    """X = rows.T (Fortran order): its mini-batches were staged in C-order buffers, whose products round
    differently from the products of the batches themselves (the default ops' and array_api_strict's)."""
    from dlcore.optimizers import GradientDescent
    from dlcore.training import Plan, train

    rows = np.random.default_rng(0).standard_normal((1000, 20)).astype(dtype)
    Y = (rows[:, :1].T > 0).astype(dtype)
    acts = [get_activation("tanh"), get_activation("sigmoid")]
    params = dlcore.initialize_parameters([20, 30, 1], "xavier", NP, 1, dtype)
    got = []
    for ops in (OPS, DEFAULT):
        p = _copy(params)
        plan = Plan.of(1000, 64, None, 4)
        got.append(
            (train(p, acts, rows.T, Y, optimizer=GradientDescent(0.1), plan=plan, cost_every=2, ops=ops), p)
        )
    assert got[0][0].costs == got[1][0].costs
    _same(got[0][1], got[1][1])


class _PausingOps(NumpyOps):
    """NumpyOps whose first layer_forward in the thread named "A" waits there, inside the step A runs,
    until ``resume`` is set."""

    def __init__(self, xp):
        super().__init__(xp)
        self.paused, self.resume = threading.Event(), threading.Event()

    def layer_forward(self, *args):
        out = super().layer_forward(*args)
        if threading.current_thread().name == "A" and not self.paused.is_set():
            self.paused.set()
            assert self.resume.wait(10)
        return out


@contextlib.contextmanager
def _thread_a_paused(ops, work):
    """``work`` in thread A until it pauses inside a step of ``ops``; the block runs meanwhile in this
    thread; then A is released and finishes."""
    thread = threading.Thread(target=work, name="A")
    thread.start()
    assert ops.paused.wait(10)
    try:
        yield
    finally:
        ops.resume.set()
        thread.join()


def test_a_step_in_one_thread_lends_another_thread_neither_its_buffers_nor_its_tape():
    """NumPy releases the GIL inside its calls, and one NumpyOps serves every numpy network: networks
    trained in threads at once must not share the running step. Thread A pauses inside the step it is
    recording; thread B computes a layer meanwhile. B's arrays were A's workspace buffers (overwritten by
    A's next steps) and B's calls went onto A's tape: threaded fits ended 4e-3 from the same fits in turn."""
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 3000, "float64")  # 4 x 3000: workspace-sized
    ops = _PausingOps(NP.xp)
    mine, oracle = _copy(params), _copy(params)
    dlcore.train_step(X, Y, mine, acts, 0.1, ops=ops)  # the first call (main thread): nothing recorded

    def a():
        for _ in range(3):  # the second call records (B runs inside it), the third replays
            dlcore.train_step(X, Y, mine, acts, 0.1, ops=ops)

    XB = X.copy()
    with _thread_a_paused(ops, a):
        Z, A = ops.layer_forward(params["W1"], XB, params["b1"], acts[0])  # thread B, outside any step
        want = DEFAULT.layer_forward(params["W1"], XB, params["b1"], acts[0])
        XB[:] = 0.0  # B is done with its input: a replay of B's calls from A's tape would now change Z
    for _ in range(4):
        dlcore.train_step(X, Y, oracle, acts, 0.1, ops=DEFAULT)
    _same(mine, oracle)
    np.testing.assert_array_equal(Z, want[0])  # still B's: no step of A wrote into it
    np.testing.assert_array_equal(A, want[1])


def test_train_step_called_from_two_threads_keeps_each_threads_step():
    """dlcore.train_step captures one step per ops object: per thread too, since a captured step's
    buffers and recording serve one call at a time. Thread A pauses inside its recording; the main
    thread runs its own steps meanwhile on the same ops; both end as the default ops' steps, bit for bit."""
    XA, YA, acts, pA = _net([2, 4, 1], "tanh", "sigmoid", 3000, "float64", seed=0)
    XB, YB, _, pB = _net([2, 4, 1], "tanh", "sigmoid", 3000, "float64", seed=5)
    ops = _PausingOps(NP.xp)
    mineA, mineB = _copy(pA), _copy(pB)

    def a():
        for _ in range(3):
            dlcore.train_step(XA, YA, mineA, acts, 0.1, ops=ops)

    with _thread_a_paused(ops, a):
        for _ in range(3):
            dlcore.train_step(XB, YB, mineB, acts, 0.1, ops=ops)
    for X, Y, start, mine in ((XA, YA, pA, mineA), (XB, YB, pB, mineB)):
        oracle = _copy(start)
        for _ in range(3):
            dlcore.train_step(X, Y, oracle, acts, 0.1, ops=DEFAULT)
        _same(mine, oracle)


def test_shapes_are_checked_on_every_call_after_a_replay():
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 300, "float64")
    for _ in range(4):
        dlcore.train_step(X, Y, params, acts, 0.1)
    with pytest.raises(ValueError, match="Y must have"):
        dlcore.train_step(X, Y[:, :-1], params, acts, 0.1)
    with pytest.raises(ValueError, match="b1 must have shape"):
        dlcore.train_step(X, Y, {**params, "b1": params["b1"].ravel()}, acts, 0.1)
    params["W2"].resize((4, 1), refcheck=False)  # the same array, another shape
    with pytest.raises(ValueError, match="W2 must have shape"):
        dlcore.train_step(X, Y, params, acts, 0.1)


def test_a_step_not_handed_these_ops_is_never_recorded():
    """A wrapper that delegates capture to NumpyOps (as mixed precision's PrecisionOps does) computes
    outside the tape: the step it captures must not be replayed."""

    class Wrapper:
        def __init__(self, inner):
            self.inner, self.xp, self.name = inner, inner.xp, "wrapped"
            self.costs = 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def cost(self, head, Z, A, Y):  # its own computation, outside NumpyOps
            self.costs += 1
            return self.inner.cost(head, Z, A, Y) * 2.0

    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 300, "float64")
    wrapper = Wrapper(Spy(NP.xp))
    for _ in range(5):
        dlcore.train_step(X, Y, params, acts, 0.1, ops=wrapper)
    assert wrapper.costs == 5 and wrapper.inner.calls == 10


def test_a_step_using_an_unrecorded_primitive_is_never_replayed():
    """Every public Ops method NumpyOps does not record (Adam, dropout, ...) spoils a recording."""
    ops = Spy(NP.xp)
    rng = np.random.default_rng(0)
    W, dW = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    v, s = np.zeros_like(W), np.zeros_like(W)
    W_want, v_want, s_want = W.copy(), v.copy(), s.copy()

    def step(W, dW, v, s, ops):
        ops.layer_forward(W, dW.T, v[:, :1], ACTIVATIONS["tanh"])
        ops.adam_update(W, dW, v, s, 0.1, 0.9, 0.999, 1e-8, 1)

    run = ops.capture(step, replay=True)
    for _ in range(4):
        run(W, dW, v, s, ops)
        DEFAULT.adam_update(W_want, dW, v_want, s_want, 0.1, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_array_equal(W, W_want)
    assert ops.calls == 4  # every call ran the step
    for name, method in vars(Ops).items():
        if callable(method) and not name.startswith("_") and name not in NumpyOps.TAPED | {"capture"}:
            assert "spoils_a_recording" in getattr(NumpyOps, name).__qualname__, name


def test_the_recorder_refuses_a_call_without_out():
    recorder = _Recorder()
    a = np.ones((2, 3))
    recorder.add(a, 1.0, out=a)
    assert recorder.ok and len(recorder.tape) == 1
    recorder.add(a, 1.0)  # a fresh array each call: a replay would hand back the first one
    assert not recorder.ok


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:overflow:RuntimeWarning")
def test_the_recorder_types_python_scalars_without_changing_a_bit():
    """Recorded Python numbers become 0-D arrays of the operands' dtype: the same bits as NumPy's own
    promotion of the Python scalar (NEP 50), also where the scalar does not fit the dtype exactly."""
    rng = np.random.default_rng(3)
    for dtype in ("float16", "float32", "float64"):
        x = (rng.standard_normal((3, 50)) * 100).astype(dtype)
        for f in (np.add, np.subtract, np.multiply, np.divide, np.maximum, np.greater):
            for c in (0.0, 1.0, 0.1, 1e-5 / 7, 3, -2.5e-8):
                for args in ((x, c), (c, x)):
                    recorder = _Recorder()
                    want = f(*args)
                    got = np.empty_like(want)
                    getattr(recorder, f.__name__)(*args, out=got)
                    np.testing.assert_array_equal(got, want, strict=True)
                    got[:] = 0
                    recorder.tape[0]()  # the replay, with the typed scalar
                    assert got.tobytes() == want.tobytes(), (dtype, f, c)


def test_a_replayed_step_allocates_nothing_large():
    """A replayed step reuses every buffer of its recording (tracemalloc's peak above the baseline)."""
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 20_000, "float64")
    peak = step_peak_bytes(lambda: dlcore.train_step(X, Y, params, acts, 0.1))  # after 2 warm-up calls
    # the (1, m) and (4, m) float64 arrays are 160 and 640 KB; NumPy's own casting buffer (the sigmoid's
    # Z >= 0 written into a float array) is ~9 KB
    assert peak < 16 * 1024


def test_replay_is_opt_in_and_the_default_capture_is_the_identity():
    def step(x):
        return x

    assert DEFAULT.capture(step, replay=True) is step
    strict = get_backend("array_api_strict")
    assert strict.ops.capture(step, replay=True) is step


def test_the_replayed_step_matches_finite_differences(monkeypatch):
    """The gradient the replayed step applies (W_before - W_after) / lr is the cost's central difference."""
    X, Y, acts, params = _net([2, 3, 1], "tanh", "sigmoid", 40, "float64", seed=5)
    lr = 1e-3
    for _ in range(2):  # with this very lr (another is another step): run, then recorded
        dlcore.train_step(X, Y, params, acts, lr)
    before = _copy(params)
    primitives = []
    monkeypatch.setattr(OPS, "layer_forward", lambda *args: primitives.append(args))
    dlcore.train_step(X, Y, params, acts, lr)
    assert primitives == []  # replayed: the recording's NumPy calls, not the primitives
    monkeypatch.undo()
    for name, value in before.items():
        applied = (value - params[name]) / lr
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                p = _copy(before)
                p[name][idx] += sign * 1e-6
                AL, caches = dlcore.forward(X, p, acts, ops=DEFAULT)
                numeric[idx] += sign * float(dlcore.cost(caches, Y, acts)) / 2e-6
        np.testing.assert_allclose(applied, numeric, rtol=1e-5, atol=1e-8, err_msg=name)


class Sub(np.ndarray):
    """An ndarray subclass (as np.memmap is): compared by ``==`` it gives arrays, not one bool."""


def test_array_subclasses_are_arrays_to_the_replay():
    """A new (1, 1) parameter of a subclass with the same value is another array: recorded again, never
    replayed onto the old one (whose ``==`` would say True)."""
    X, Y, acts, params = _net([2, 4, 1], "tanh", "sigmoid", 300, "float64")
    spy = Spy(NP.xp)
    mine = {k: v.copy().view(Sub) for k, v in params.items()}
    oracle = _copy(params)

    def both():
        before = spy.calls
        J = dlcore.train_step(X, Y, mine, acts, 0.1, ops=spy)
        J_want = dlcore.train_step(X, Y, oracle, acts, 0.1, ops=DEFAULT)
        assert float(J) == float(J_want)
        for k in oracle:
            np.testing.assert_array_equal(np.asarray(mine[k]), oracle[k], err_msg=k)
        return spy.calls > before

    assert [both() for _ in range(4)] == [True, True, False, False]
    mine["b2"] = mine["b2"].copy().view(Sub)  # equal value, another object
    assert [both() for _ in range(3)] == [True, True, False]


def test_an_argument_whose_equality_is_ambiguous_never_replays():
    ops = Spy(NP.xp)
    W, A, b = np.ones((3, 2)), np.ones((2, 5)), np.ones((3, 1))
    tanh = ACTIVATIONS["tanh"]

    class Ambiguous:
        def __eq__(self, other):
            raise ValueError("the truth value of an array with more than one element is ambiguous")

        __hash__ = object.__hash__

    def step(W, A, b, odd, ops):
        ops.layer_forward(W, A, b, tanh)

    run = ops.capture(step, replay=True)
    for _ in range(4):
        run(W, A, b, Ambiguous(), ops)  # a new object each call: compared by ==, which raises
    assert ops.calls == 4


def test_a_new_array_inside_a_nested_container_is_recorded_again():
    """The fast test of a call's arguments compares containers one level deep by identity: an array
    swapped inside a dict held in a list (the same list and dict objects) is a new step, never a replay
    reading the old array."""
    ops = Spy(NP.xp)
    tanh = ACTIVATIONS["tanh"]
    nested = [{"W": np.ones((3, 2)), "A": np.ones((2, 5)), "b": np.ones((3, 1))}]
    out = []

    def step(nested, ops):
        Z, A = ops.layer_forward(nested[0]["W"], nested[0]["A"], nested[0]["b"], tanh)
        out[:] = [A.copy()]

    run = ops.capture(step, replay=True)
    for _ in range(3):
        run(nested, ops)
    assert ops.calls == 2  # run, record, replay
    nested[0]["W"] = np.full((3, 2), 2.0)  # the same shape, in the same dict and list
    run(nested, ops)
    assert ops.calls == 3
    np.testing.assert_array_equal(out[0], np.tanh(np.full((3, 5), 5.0)))


class _NotPlainGD(dlcore.GradientDescent):
    """Gradient descent that the loop does not recognise as plain: every step runs as two halves."""


@pytest.mark.parametrize("cost_every", [1, 7, 100])
@pytest.mark.parametrize(("dims", "hidden"), [([2, 4, 1], "tanh"), ([2, 8, 5, 1], "relu")])
def test_fit_replays_the_steps_between_cost_checks_with_the_same_bits(backend, cost_every, dims, hidden):
    """The loop's plain full-batch path (one replayable step between cost checks) against the two
    halves of every step: the same parameters, costs and step count, on every backend."""
    from dlcore.datasets import planar

    X, Y = planar(backend, m=400, dtype="float64")
    nets = [dlcore.Network(dims, hidden, backend=backend, seed=3) for _ in range(2)]
    plain, halves = dlcore.GradientDescent(0.5), _NotPlainGD(0.5)
    costs = [
        net.fit(X, Y, optimizer=opt, iterations=250, cost_every=cost_every).costs
        for net, opt in zip(nets, (plain, halves), strict=True)
    ]
    assert costs[0] == costs[1] and plain.t == halves.t == 250
    for name, value in nets[0].params.items():
        assert np.array_equal(backend.to_numpy(value), backend.to_numpy(nets[1].params[name])), name


@pytest.mark.parametrize("cost_every", [1, 4])
def test_plain_mini_batch_epochs_replay_with_the_same_bits(backend, cost_every):
    """Mini-batch gradient descent (400 columns in batches of 64: a last batch of 16) between cost
    checks: every batch is a new array, the step's input copies of one shape replay. The same parameters,
    costs and step count as the two halves of every step, on every backend."""
    from dlcore.datasets import planar

    X, Y = planar(backend, m=400, dtype="float64")
    nets = [dlcore.Network([2, 8, 5, 1], "relu", backend=backend, seed=3) for _ in range(2)]
    plain, halves = dlcore.GradientDescent(0.5), _NotPlainGD(0.5)
    costs = [
        net.fit(X, Y, optimizer=opt, epochs=12, batch_size=64, cost_every=cost_every).costs
        for net, opt in zip(nets, (plain, halves), strict=True)
    ]
    assert costs[0] == costs[1] and plain.t == halves.t == 12 * 7
    for name, value in nets[0].params.items():
        assert np.array_equal(backend.to_numpy(value), backend.to_numpy(nets[1].params[name])), name


def test_numpy_mini_batches_are_replayed_from_their_input_copies():
    """NumpyOps' layer_forward calls in 10 epochs (cost_every=5) of [2, 4, 1]: the recorded epochs 0
    and 5 run every step (7 a epoch of 400 in batches of 64) and the last cost one forward; of the 8
    unrecorded epochs the first runs its first batch (eager) and its second (recorded); the full batches
    replay after that, each last batch of 16 runs (never recorded: the tape stays the full batches'). A
    full batch is not copied; batches above STAGE_MAX_ELEMENTS neither: no replay."""
    from dlcore.datasets import planar

    def forwards(m, batch_size):
        spy = Spy(NP.xp)
        backend = type(NP)(NP.xp, NP.device, spy)
        X, Y = planar(backend, m=m, dtype="float64")
        net = dlcore.Network([2, 4, 1], "tanh", backend=backend, seed=3)
        net.fit(X, Y, learning_rate=0.5, epochs=10, batch_size=batch_size, cost_every=5)
        return spy.calls // 2  # two layers

    assert forwards(400, 64) == 2 * 7 + 1 + (2 + 1) + 7 * 1  # 25 of the 71 without replay
    assert forwards(400, 400) == 2 + 1 + 2  # a full batch: eager, recorded, replayed
    big = 20_000  # 2 x 20,000 elements > STAGE_MAX_ELEMENTS
    assert big * 2 > STAGE_MAX_ELEMENTS and forwards(2 * big, big) == 2 * 2 + 1 + 8 * 2


def test_mini_batches_of_a_step_that_cannot_replay_are_not_copied(monkeypatch):
    """A softmax head computes outside NumpyOps' tape: the plain mini-batch step's recording is refused
    once (its second batch), and from then on its batches run as they are, not copied into the step's
    buffers for a replay that cannot come."""
    copies = []
    copyto = np.copyto

    def counted(dst, src, **kwargs):
        copies.append(dst.shape)
        return copyto(dst, src, **kwargs)

    monkeypatch.setattr(np, "copyto", counted)
    X, labels = seeded_data(4, 400)
    Y = np.eye(3)[:, (labels[0] + (X[0] > 0)).astype(int)]  # 3 classes
    net = dlcore.Network([4, 16, 3], "relu", output_activation="softmax", backend=NP, seed=3)
    net.fit(X, Y, learning_rate=0.1, epochs=4, batch_size=64, cost_every=100)
    assert len(copies) == 2 * 2  # X{t} and Y{t} of the first two unrecorded batches, then none


@pytest.mark.parametrize(
    "fit", [{"iterations": 20, "cost_every": 10}, {"epochs": 6, "batch_size": 300, "cost_every": 3}]
)
def test_a_plain_fit_holds_one_steps_arrays_not_two(fit):
    """The replayable whole step is made of the loop's two captured halves and computes in their buffers:
    a plain fit's peak memory is that of a fit that runs the halves on every step (before, the whole step
    had a workspace of its own: 1.6x on the wide net). Mini-batches of 300 of 800 columns (a last batch
    of 200): the replay's buffers are the full batches' of the halves, kept apart from the last batch's."""
    X, Y = seeded_data(30, 800, seed=0)

    def peak(optimizer) -> int:
        net = dlcore.Network([30, 300, 300, 1], "relu", backend=NP, seed=3)
        tracemalloc.start()
        try:
            net.fit(X, Y, optimizer=optimizer, **fit)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(dlcore.GradientDescent(0.1))  # warm-up: imports, numba's kernels if installed
    plain, halves = peak(dlcore.GradientDescent(0.1)), peak(_NotPlainGD(0.1))
    activation = 300 * 800 * 8  # one (300, 800) float64 array: a step holds ~8 of them
    assert halves > 5 * activation  # the measure sees the step's buffers
    assert plain < halves + activation, (plain, halves)


def test_the_relu_masks_of_layers_of_one_width_share_one_buffer(monkeypatch):
    """A captured step holds each (n, m) array it needs between calls; the ReLU' masks are temporaries,
    so three hidden layers of one width hold one mask, not three (NumPy's path, numba's kernels off)."""
    from dlcore.backends import numpy_backend as nb

    monkeypatch.setattr(nb, "_KERNELS", [None])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 1000))
    Y = (rng.random((1, 1000)) > 0.5).astype(float)
    params = dlcore.initialize_parameters([20, 200, 200, 200, 1], "he", NP, 3, "float64")
    acts = [get_activation("relu")] * 3 + [get_activation("sigmoid")]
    ops = NumpyOps(NP.xp)
    tracemalloc.start()
    try:
        dlcore.train_step(X, Y, params, acts, 0.1, ops=ops)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    activation = 200 * 1000 * 8
    # Z and A of 3 layers, dA of 3 (the output's outer product, W3^T dZ3, W2^T dZ2), one mask: 10
    assert 10 * activation <= held < 11 * activation, held / activation
    mine = {k: v.copy() for k, v in params.items()}
    dlcore.train_step(X, Y, params, acts, 0.1, ops=ops)  # the same bits as the default ops
    dlcore.train_step(X, Y, mine, acts, 0.1, ops=DEFAULT)
    assert all(np.array_equal(params[k], mine[k]) for k in params)
