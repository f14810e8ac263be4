"""A Network pickles and deep-copies on every backend (the backend by name, parameters on the host), and
the public exceptions say nothing about command-line flags."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from dlcore.backends import available_backends, get_backend

import dlcore
from dlcore import BackendError, Network
from dlcore.activations import ACTIVATIONS, get_activation


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 40))
    Y = (X[0:1] + X[1:2] > 0).astype(np.int64)
    return X, Y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", ["tanh", "leaky_relu:0.2"])  # leaky ReLU's functions once were closures
def test_a_trained_network_survives_pickle_and_deepcopy(backend, dtype, hidden):
    X, Y = _data()
    net = Network([3, 5, 1], hidden, backend=backend, dtype=dtype, seed=3)
    net.fit(X, Y, learning_rate=0.5, iterations=20)
    before = backend.to_numpy(net.predict_proba(X))
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other.backend.spec() == backend.spec() and other.dtype_name == dtype
        assert other.task == net.task and other.layer_dims == net.layer_dims
        np.testing.assert_array_equal(backend.to_numpy(other.predict_proba(X)), before)
        assert all(other.params[k] is not net.params[k] for k in net.params)
        other.fit(X, Y, learning_rate=0.5, iterations=5)  # trains on its own parameters
        np.testing.assert_array_equal(backend.to_numpy(net.predict_proba(X)), before)


@pytest.mark.parametrize("spec", [*ACTIVATIONS, "softmax", "leaky_relu:0.2"])
def test_every_activation_pickles(spec):
    g = get_activation(spec)
    copied = pickle.loads(pickle.dumps(g))
    assert copied.spec == g.spec
    Z = np.random.default_rng(1).standard_normal((3, 7))
    np.testing.assert_array_equal(copied.forward(Z), g.forward(Z))
    if spec != "softmax":
        np.testing.assert_array_equal(copied.derivative(Z, g.forward(Z)), g.derivative(Z, g.forward(Z)))


@pytest.mark.parametrize("compute", ["float16", "bfloat16"])
def test_mixed_precision_pickles_and_goes_on_as_the_original(backend, compute):
    """It held the namespace (a module): a fitted DLClassifier(precision="mixed") failed to pickle."""
    if compute not in backend.low_precision_dtypes():
        pytest.skip(f"{backend.spec()} has no {compute}")
    X, Y = _data()
    to_host = backend.to_numpy
    net = Network([3, 5, 1], backend=backend, dtype="float32", seed=3)
    mixed = dlcore.precision.MixedPrecision(dlcore.optimizers.Adam(0.01), compute, loss_scale="dynamic")
    net.fit(X, Y, iterations=10, precision=mixed)
    copies = [pickle.loads(pickle.dumps((net, mixed))), copy.deepcopy((net, mixed))]
    for other, other_mixed in copies:
        assert other_mixed.xp is mixed.xp and float(other_mixed.loss_scale) == float(mixed.loss_scale)
        other.fit(X, Y, iterations=5, precision=other_mixed)
    net.fit(X, Y, iterations=5, precision=mixed)
    for other, _ in copies:
        np.testing.assert_array_equal(to_host(other.predict_proba(X)), to_host(net.predict_proba(X)))


def test_the_pickle_holds_the_backend_by_name_and_host_arrays(backend):
    net = Network([2, 3, 1], backend=backend)
    state = net.__getstate__()
    assert state["backend"] == backend.spec() and get_backend(state["backend"]).spec() == backend.spec()
    assert all(type(v) is np.ndarray for v in state["params"].values())


def test_softmax_regression_and_normalization_survive_pickle():
    X, _ = _data()
    Y = np.arange(40).reshape(1, -1) % 3
    net = Network.for_data(X, Y, [3, 4, 3], backend="numpy")
    net.normalization = dlcore.data.Normalization((0.0, 1.0, 2.0), (1.0, 2.0, 3.0))
    other = pickle.loads(pickle.dumps(net))
    assert other.n_classes == 3 and other.normalization == net.normalization
    np.testing.assert_array_equal(other.predict(X), net.predict(X))
    reg = Network.for_data(X, X[:1] * 0.5, task="regression", backend="numpy")
    assert pickle.loads(pickle.dumps(reg)).task == "regression"


def test_backend_error_is_public_and_speaks_python():
    assert dlcore.BackendError is BackendError and issubclass(BackendError, ValueError)
    unusable = [name for name, why in available_backends().items() if why]
    for name in unusable:
        with pytest.raises(BackendError) as info:
            get_backend(name)
        assert "--" not in str(info.value).replace("--force-reinstall", ""), str(info.value)
    for why in available_backends().values():
        assert "--backend" not in why


def test_a_backend_pickles_and_copies_by_name(backend):
    assert pickle.loads(pickle.dumps(backend)).spec() == backend.spec()
    assert copy.deepcopy(backend) is get_backend(backend.spec())


def test_a_divergence_crosses_a_process_boundary_whole(backend):
    """TrainingDiverged pickled its message alone and its __init__ wants five arguments: unpickling
    raised TypeError, which hung a multiprocessing pool whose worker diverged and broke joblib's."""
    X, Y = _data()
    with pytest.raises(dlcore.TrainingDiverged) as info:
        Network([3, 4, 1], backend=backend, seed=1).fit(X, Y, learning_rate=1e6, iterations=50)
    exc = info.value
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is dlcore.TrainingDiverged and str(back) == str(exc)
    assert (back.iteration, back.learning_rate, back.cost) == (exc.iteration, exc.learning_rate, exc.cost)
    assert back.history.costs == exc.history.costs and back.history.updates == exc.history.updates
