"""Every device -> host conversion in a training run, counted: the loop syncs only at the cost checks.

On a GPU a conversion of a device array to a host value (``float(J)``, ``bool(x.all())``, a copy to
NumPy) waits for all queued work. array_api_strict's ``Array`` is a Python class, so its conversion
methods (``__float__``, ``__bool__``, ``__int__``, ``__index__``, ``__complex__``, ``__array__``,
``__buffer__``, ``__dlpack__``, ``__iter__``, ``__repr__``/``__str__``, ``__reduce__``) are wrapped here
with counters that record the line of dlcore that asked. Host -> device copies (``Backend.from_host``) are
counted apart: they are no device -> host conversion, but from pageable host memory CUDA performs a
stream sync before each (CUDA runtime docs, "API synchronization behavior"), so on a GPU they matter too.

What ``Network.fit(X, Y, iterations=N, cost_every=k)`` converts (binary head, full batch):

- before the loop, 5 fixed: ``validation.count_non_finite`` for X and for Y (one ``bool`` each),
  ``validation.check_labels`` (Y in {0, 1}: one ``bool``), ``Network._warn_single_class`` (``float`` of
  min(Y) and of max(Y));
- in the loop, ``ceil(N / k)`` cost checks (epochs 0, k, 2k, ... < N: one ``float`` each, in
  ``training.train``'s ``check``), and one more for the cost after the last update;
- after the loop: none.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dlcore.backends import get_backend

import dlcore
from dlcore import datasets
from dlcore.activations import get_activation
from dlcore.optimizers import Adam, GradientDescent
from dlcore.training import Plan, train

xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
STRICT_ARRAY = type(xs.asarray([1.0]))
CONVERSIONS = (
    "__float__",
    "__bool__",
    "__int__",
    "__index__",
    "__complex__",
    "__array__",
    "__buffer__",
    "__dlpack__",
    "__iter__",
    "__repr__",
    "__str__",
    "__reduce__",
)
ROOT = Path(dlcore.__file__).resolve().parent.parent
#: the fixed conversions of Network.fit before the loop (see the module docstring)
FIT_INPUT_CHECKS = Counter(
    {
        ("__bool__", "dlcore/validation.py", "count_non_finite"): 2,
        ("__bool__", "dlcore/validation.py", "check_labels"): 1,
        ("__float__", "dlcore/model.py", "_warn_single_class"): 2,
    }
)
COST_CHECK = ("__float__", "dlcore/training.py", "check")


class SyncCounter:
    """Counts conversions of array_api_strict arrays (``syncs``) and host -> device copies
    (``uploads``), each as (method, file, function) of the innermost frame in dlcore/ or backends/."""

    def __init__(self) -> None:
        self.syncs: Counter = Counter()
        self.uploads: Counter = Counter()
        self.lines: list[str] = []  # file:line of every sync, for the failure message
        self.active = False

    def _site(self, method: str) -> tuple[str, str, str]:
        for frame in reversed(traceback.extract_stack()[:-2]):
            path = Path(frame.filename).resolve()
            if ROOT in path.parents and "tests" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                rel = rel.replace("backends/", "dlcore/backends/", 1) if rel.startswith("backends/") else rel
                self.lines.append(f"{rel}:{frame.lineno} ({method})")
                return method, rel, frame.name
        self.lines.append(f"outside dlcore ({method})")
        return method, "outside", ""

    @contextlib.contextmanager
    def counting(self, monkeypatch: pytest.MonkeyPatch, backend_cls: type):
        for name in CONVERSIONS:
            original = getattr(STRICT_ARRAY, name)

            def counted(self_, *args, _name=name, _original=original, **kwargs):
                if self.active:
                    self.syncs[self._site(_name)] += 1
                return _original(self_, *args, **kwargs)

            monkeypatch.setattr(STRICT_ARRAY, name, counted)
        from_host = backend_cls.from_host

        def upload(self_, host, _original=from_host):
            if self.active:
                self.uploads[self._site("from_host")[1:]] += 1
            return _original(self_, host)

        monkeypatch.setattr(backend_cls, "from_host", upload)
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def reset(self) -> None:
        self.syncs.clear()
        self.uploads.clear()
        self.lines.clear()

    def total(self) -> int:
        return sum(self.syncs.values())


@pytest.fixture(params=["array_api_strict", "array_api_strict:device1"])
def strict(request):
    return get_backend(request.param)


@pytest.fixture
def counter(strict, monkeypatch):
    c = SyncCounter()
    with c.counting(monkeypatch, type(strict)):
        yield c


def _planar(backend, m=120, dims=(2, 4, 1)):
    X, Y = datasets.planar(backend, m=m, seed=4, dtype="float32")
    acts = [get_activation("tanh")] * (len(dims) - 2) + [get_activation("sigmoid")]
    params = dlcore.initialize_parameters(list(dims), "xavier", backend, 2, "float32")
    return X, Y, params, acts


# -- the counter itself --------------------------------------------------------------------------------
def test_the_counter_sees_every_kind_of_conversion(strict, monkeypatch):
    c = SyncCounter()
    x = strict.asarray(np.random.default_rng(1).standard_normal((3,)), dtype="float32")
    with c.counting(monkeypatch, type(strict)):
        float(x[0])
        bool(x[0] > 0)
        int(strict.xp.astype(x[1], strict.xp.int64))
        strict.to_numpy(x)  # through DLPack
        repr(x)
        strict.asarray(np.ones(2))  # an upload, not a sync
    kinds = {method for method, _, _ in c.syncs}
    assert {"__float__", "__bool__", "__int__", "__dlpack__", "__repr__"} <= kinds
    assert sum(c.uploads.values()) == 1


# -- the loop ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("iterations", "cost_every"), [(10, 3), (12, 4), (7, 1), (5, 10)])
def test_the_loop_syncs_once_per_cost_check_and_once_at_the_end(strict, counter, iterations, cost_every):
    X, Y, params, acts = _planar(strict)
    counter.reset()
    history = train(
        params,
        acts,
        X,
        Y,
        optimizer=GradientDescent(0.5),
        plan=Plan.of(X.shape[1], None, iterations, None),
        cost_every=cost_every,
        ops=strict.ops,
        progress=lambda i: None,  # a count: no sync
    )
    expected = math.ceil(iterations / cost_every) + 1
    assert len(history) == expected
    assert counter.syncs == Counter({COST_CHECK: expected}), counter.lines
    assert sum(counter.uploads.values()) == 0  # full batch: no shuffle, no mask


def test_mini_batches_adam_dropout_l2_sync_once_per_recorded_epoch(strict, counter):
    """Per recorded epoch one sync (the epoch's batch costs are summed on the device), plus the final
    cost. Uploads: with the host RNG (the default) one permutation per epoch and one dropout mask per
    hidden layer and batch; ``device_rng`` removes them on backends with a device generator."""
    X, Y, params, acts = _planar(strict, m=100, dims=(2, 5, 3, 1))
    epochs, batch, every = 5, 32, 2
    counter.reset()
    history = train(
        params,
        acts,
        X,
        Y,
        optimizer=Adam(0.01, decay_rate=0.1),
        plan=Plan.of(100, batch, None, epochs),
        cost_every=every,
        l2=0.05,
        keep_prob=0.8,
        rng=strict.rng(3),
        ops=strict.ops,
    )
    expected = math.ceil(epochs / every) + 1
    assert len(history) == expected
    assert counter.syncs == Counter({COST_CHECK: expected}), counter.lines
    batches = math.ceil(100 / batch)
    assert sum(counter.uploads.values()) == epochs * (1 + 2 * batches)  # 1 shuffle + 2 masks per batch


def test_validation_adds_one_sync_per_recorded_epoch(strict, counter):
    X, Y, params, acts = _planar(strict)
    Xv, Yv, _, _ = _planar(strict, m=40)
    counter.reset()
    epochs, every = 6, 2
    train(
        params,
        acts,
        X,
        Y,
        optimizer=GradientDescent(0.5),
        plan=Plan.of(X.shape[1], 40, None, epochs),
        cost_every=every,
        validation=(Xv, Yv),
        rng=strict.rng(1),
        ops=strict.ops,
    )
    records = math.ceil(epochs / every)
    validation = ("__float__", "dlcore/training.py", "validation_cost")  # J_val as a float, checked finite
    # and one for the final parameters (epoch 6 was not recorded): "at the end" in the CLI's summary
    assert counter.syncs == Counter({COST_CHECK: records + 1, validation: records + 1}), counter.lines


# -- Network.fit: the loop plus the input checks --------------------------------------------------------
@pytest.mark.parametrize(("iterations", "cost_every"), [(10, 3), (20, 5)])
def test_fit_syncs_at_the_input_checks_and_the_cost_checks_only(strict, counter, iterations, cost_every):
    X, Y, _, _ = _planar(strict)
    net = dlcore.Network([2, 4, 1], backend=strict, dtype="float32", seed=1)
    counter.reset()
    net.fit(X, Y, iterations=iterations, cost_every=cost_every, learning_rate=0.5)
    loop = math.ceil(iterations / cost_every) + 1
    assert counter.syncs == FIT_INPUT_CHECKS + Counter({COST_CHECK: loop}), counter.lines
    assert counter.total() == 5 + loop


# -- launches per step (benchmarks/launches.py), the CPU proxy for GPU kernel launches ------------------
def test_the_launch_counter_counts_what_the_fused_kernels_replace():
    launches = pytest.importorskip("dlcore.benchmarks.launches")
    default, fused = launches.count_step("planar", "gd"), launches.count_step("planar", "gd", fused=True)
    adam = launches.count_step("planar", "adam", fused=True)
    assert default["gemm"] == fused["gemm"] == 4  # 2 forward, 2 dW (layer 1 needs no dA[0])
    # bias + activation x 2, tanh', the output gradient, one update per parameter (4)
    assert fused["fused_kernels"] == adam["fused_kernels"] == 8
    assert fused["launches"] == adam["launches"] < default["launches"]
    # the kernels keep the default's roundings (1 - beta rounded once, as the default's Python float is)
    assert launches.check_fused_matches_unfused("planar", "adam") == 0.0


@pytest.mark.parametrize(
    ("dims", "out", "Y_of"),
    [
        ((2, 8, 1), "sigmoid", lambda lab: (lab > 0)[None].astype("float64")),
        ((2, 8, 3), "softmax", lambda lab: np.eye(3)[:, lab]),
        ((2, 8, 2), "linear", lambda lab: np.stack([lab, -lab]).astype("float64")),
    ],
)
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_a_torch_fit_makes_no_tensor_from_a_python_number(monkeypatch, dims, out, Y_of, optimizer):
    """What array_api_strict cannot show: a library wrapper that turns a Python number into a tensor
    (array_api_compat's torch ``maximum(Z, 0.0)`` did, on every ReLU and cost) copies it host -> device on
    CUDA, a stream sync each time and what CUDA graph capture forbids. A fit on torch (mini-batch, L2,
    dropout, every optimizer and head, ReLU) makes none; its host -> device copies are the inputs and the
    host-drawn shuffles and masks (``from_host``)."""
    torch = pytest.importorskip("torch")
    backend = get_backend("torch")
    lab = np.random.default_rng(0).integers(0, 3, 200)
    X = backend.asarray(np.random.default_rng(1).standard_normal((dims[0], 200)), dtype="float32")
    Y = backend.asarray(Y_of(lab), dtype="float32")
    net = dlcore.Network(list(dims), hidden_activation="relu", output_activation=out, backend=backend, seed=1)
    made = []
    for name in ("asarray", "tensor", "as_tensor", "scalar_tensor", "full"):
        original = getattr(torch, name)

        def spy(*args, _f=original, **kwargs):
            if args and isinstance(args[0], (bool, int, float)):
                made.append(traceback.extract_stack(limit=4)[0])
            return _f(*args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    net.fit(X, Y, learning_rate=0.01, epochs=3, batch_size=64, optimizer=optimizer, l2=0.01, keep_prob=0.9)
    assert made == []
