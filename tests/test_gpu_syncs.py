"""On a real GPU, the training loop waits for the device only at its cost checks (issue 19, step 5).

tests/test_host_sync.py counts every conversion on array_api_strict, whose arrays are a Python class. On
a GPU the libraries' own detectors say it: PyTorch's ``torch.cuda.set_sync_debug_mode("error")`` raises at
a synchronizing call (a device -> host copy, a blocking host -> device copy, a synchronize); CuPy's
``cupyx.allow_synchronize(False)`` at a device -> host copy or a synchronize (not at an upload: on cupy
those are counted on the CPU, by tests/test_host_sync.py). Both libraries' detectors call themselves
incomplete. The loop runs with them on, on each backend's default ops (fused kernels, CUDA graphs) and
on its plain ones; the one ``float(J)`` of each cost check in ``training.train``'s ``check`` is let
through and counted. Skipped (one short reason) where no GPU answers.
"""

from __future__ import annotations

import builtins
import contextlib
import math

import pytest
from dlcore.backends import get_backend

from dlcore import datasets, training
from dlcore.activations import get_activation
from dlcore.initializers import initialize_parameters
from dlcore.optimizers import Adam, GradientDescent
from dlcore.training import Plan, train
from tests.conftest import _backend_param


@pytest.fixture(params=[_backend_param(name) for name in ("cupy", "torch:cuda")])
def gpu(request):
    return get_backend(request.param)


@pytest.fixture(params=["default", "plain"])
def ops(request, gpu):
    """The backend's ops, or the same library without its speed-ups (no fused kernels, no graphs)."""
    if request.param == "default":
        return gpu.ops
    if gpu.name == "cupy":
        from dlcore.backends.cupy_kernels import CupyOps

        return CupyOps(gpu.xp, gpu.lib, fused=False)
    from dlcore.backends.torch_backend import TorchOps

    return TorchOps(gpu.xp, gpu.lib, graphs=False)


def _detector(backend):
    """(forbid, allow): context managers that make a synchronizing call raise, and let one through."""
    if backend.name == "cupy":
        import cupyx

        if not hasattr(cupyx, "allow_synchronize"):  # deprecated since CuPy 10; gone in some release
            pytest.skip("this CuPy has no cupyx.allow_synchronize")
        return (lambda: cupyx.allow_synchronize(False)), (lambda: cupyx.allow_synchronize(True))
    torch = backend.lib

    @contextlib.contextmanager
    def mode(level):
        before = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(level)
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(before)

    return (lambda: mode("error")), (lambda: mode(0))


def _run(gpu, ops, monkeypatch, **options) -> tuple[int, int]:
    """(cost checks let through, length of the History) of ``train`` under the detector."""
    X, Y = datasets.planar(gpu, m=200, seed=4, dtype="float32")
    dims = [2, 5, 3, 1]
    acts = [get_activation("tanh")] * (len(dims) - 2) + [get_activation("sigmoid")]
    params = initialize_parameters(dims, "xavier", gpu, 2, "float32")
    gpu.synchronize()  # the set-up's uploads done before the detector goes on
    forbid, allow = _detector(gpu)
    checks = []

    def counted_float(x):
        if not isinstance(x, int | float | str):  # a device value, not check_divergence_factor's number
            checks.append(1)
        with allow():
            return builtins.float(x)

    monkeypatch.setattr(training, "float", counted_float, raising=False)  # check()'s float(J) only
    with forbid():
        history = train(params, acts, X, Y, ops=ops, **options)
    return len(checks), len(history)


def test_a_full_batch_run_waits_for_the_gpu_only_at_its_cost_checks(gpu, ops, monkeypatch):
    iterations, every = 12, 4
    checks, records = _run(
        gpu,
        ops,
        monkeypatch,
        optimizer=GradientDescent(0.5),
        plan=Plan.of(200, None, iterations, None),
        cost_every=every,
    )
    assert checks == records == math.ceil(iterations / every) + 1


def test_mini_batch_adam_dropout_l2_with_device_draws_waits_only_at_its_cost_checks(gpu, ops, monkeypatch):
    """Shuffles and dropout masks drawn on the GPU (``on_device=True``): no upload in the loop either
    (seen by PyTorch's detector; CuPy's does not see uploads)."""
    epochs, every = 5, 2
    checks, records = _run(
        gpu,
        ops,
        monkeypatch,
        optimizer=Adam(0.01, decay_rate=0.1),
        plan=Plan.of(200, 64, None, epochs),
        cost_every=every,
        l2=0.05,
        keep_prob=0.8,
        rng=gpu.rng(3, on_device=True),
    )
    assert checks == records == math.ceil(epochs / every) + 1
