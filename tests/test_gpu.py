"""CPU/GPU parity and GPU memory, on a real CUDA device (skipped with the reason elsewhere).

Run by scripts/gpu_validate.sh on the lent GPU machine; the same seed must train the same network
on numpy and cupy, a model saved on the GPU must predict on the CPU, and CuPy's memory pool must stay
flat over 1,000 steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from dlcore.backends import get_backend

from dlcore import Network
from dlcore.datasets import planar
from tests.conftest import cupy_skip_reason

SKIP = cupy_skip_reason()  # "" with DLCORE_REQUIRE_CUPY=1: then a missing GPU fails these tests
pytestmark = pytest.mark.skipif(bool(SKIP), reason=SKIP)
PARITY = {"float64": {"rtol": 1e-9, "atol": 1e-12}, "float32": {"rtol": 2e-3, "atol": 1e-5}}


def _train(backend_name, dtype, iterations=2000):
    backend = get_backend(backend_name)
    X, Y = planar(backend, dtype=dtype)
    net = Network([2, 4, 1], "tanh", init="small", backend=backend, seed=1, dtype=dtype)
    history = net.fit(X, Y, learning_rate=1.2, iterations=iterations, cost_every=100)
    return net, history, backend.to_numpy(net.predict_proba(X))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_seed_trains_the_same_on_cpu_and_gpu(dtype):
    cpu_net, cpu_hist, cpu_p = _train("numpy", dtype)
    gpu_net, gpu_hist, gpu_p = _train("cupy", dtype)
    assert gpu_net.backend.is_gpu and not cpu_net.backend.is_gpu
    assert gpu_hist.iterations == cpu_hist.iterations
    np.testing.assert_allclose(gpu_hist.costs, cpu_hist.costs, **PARITY[dtype])
    np.testing.assert_allclose(gpu_p, cpu_p, **PARITY[dtype])
    decided = np.abs(cpu_p - 0.5) > 1e-3  # away from the boundary, labels must agree exactly
    np.testing.assert_array_equal((gpu_p > 0.5)[decided], (cpu_p > 0.5)[decided])


def test_model_saved_on_gpu_predicts_on_cpu(tmp_path):
    gpu_net, _, gpu_p = _train("cupy", "float64", iterations=300)
    path = tmp_path / "model.npz"
    gpu_net.save(path)
    cpu_net = Network.load(path, backend="numpy")
    X, _ = planar(get_backend("numpy"))
    np.testing.assert_allclose(np.asarray(cpu_net.predict_proba(X)), gpu_p, **PARITY["float64"])


def test_numpy_input_into_a_gpu_network_is_moved_not_mixed():
    X, Y = planar(get_backend("numpy"), m=40)
    net = Network([2, 3, 1], backend="cupy")
    net.fit(X, Y, 0.1, 3)
    assert type(net.predict(X)).__module__.startswith("cupy")


def test_gpu_memory_is_steady_over_1000_steps():
    backend = get_backend("cupy")
    X, Y = planar(backend, dtype="float32")
    net = Network([2, 64, 64, 1], "relu", backend=backend, dtype="float32")
    used = []
    net.fit(
        X,
        Y,
        0.05,
        1000,
        cost_every=100,
        callback=lambda i, J: used.append(backend.memory_info()["pool_used"]),
    )
    assert len(used) == 11
    assert max(used[2:]) - used[2] <= 64 * 1024, f"CuPy pool grew: {used}"
