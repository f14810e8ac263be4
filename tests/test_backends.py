"""The backend shim: lookup, errors, transfer, and seeded randomness identical on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from dlcore.backends import BackendError, available_backends, backend_of, cupy_status, get_backend
from dlcore.backends.base import Backend
from dlcore.backends.registry import REGISTRY, register_backend
from dlcore.backends.strict_backend import ArrayApiStrictBackend

import dlcore
from dlcore._namespace import namespace
from dlcore.data import Normalization
from tests.conftest import to_host


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'.*numpy.*cupy.*array_api_strict"):
        get_backend("tensorflow")


def test_env_var_sets_the_default(monkeypatch):
    monkeypatch.setenv("DLCORE_BACKEND", "array_api_strict")
    assert get_backend().name == "array_api_strict"
    monkeypatch.setenv("DLCORE_BACKEND", "nope")
    with pytest.raises(ValueError, match=r"^\$DLCORE_BACKEND='nope': unknown backend 'nope'; choose one of"):
        get_backend()
    # a known backend that cannot work here said why but not that the name came from the environment
    monkeypatch.setattr(ArrayApiStrictBackend, "unavailable", classmethod(lambda cls: "it is broken here"))
    monkeypatch.setenv("DLCORE_BACKEND", "array_api_strict:device2")
    with pytest.raises(BackendError, match=r"^\$DLCORE_BACKEND='array_api_strict:device2': cannot use the "):
        get_backend()
    assert get_backend("numpy").name == "numpy"  # a name given is not the environment's


@pytest.mark.parametrize("name", ["MyLib", "my-lib", "my:lib", "auto"])
def test_a_backend_registered_under_a_name_get_backend_cannot_find_is_refused(name):
    """register_backend kept "MyLib"; get_backend("MyLib") then looked up "mylib" and listed "MyLib" as
    a choice in the refusal."""
    other = type("Other", (Backend,), {"name": name})
    with pytest.raises(ValueError, match=rf"a backend's name must be lower case .*; got {name!r}"):
        register_backend(other)
    assert other not in REGISTRY.values()


def test_auto_says_what_it_chose():
    be = get_backend("auto")
    if cupy_status()[0] is None:
        assert be.name == "numpy"
        assert "auto: chose numpy" in be.note and "because" in be.note
    else:
        assert be.name == "cupy" and be.is_gpu


def test_auto_with_a_gpu_device_and_no_gpu_says_the_device_is_not_used():
    """With no GPU, "auto:1" ran NumPy and said nothing of the device asked for."""
    if get_backend("auto").name != "numpy":
        pytest.skip("a GPU backend is present here")
    be = get_backend("auto:1")
    assert be.name == "numpy" and be.note.endswith("(device '1' was for a GPU backend and is not used)")
    assert "not used" not in get_backend("auto").note


@pytest.mark.skipif(cupy_status()[0] is not None, reason="a working GPU is present here")
def test_cupy_without_gpu_is_one_clear_error():
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert message.startswith("cannot use the cupy backend: ")
    why, fix = message.split("; ", 1)  # why it cannot run here; how to fix that
    assert fix.endswith("or use the numpy backend")
    assert "\n" not in message
    assert available_backends()["cupy"] == cupy_status()[1] != ""


def test_cupy_error_explains_missing_install(monkeypatch):
    import dlcore.backends.cupy_backend as core

    core.cupy_status.cache_clear()
    monkeypatch.setattr(core, "_installed_cupy_packages", lambda: [])
    real_import = core.importlib.import_module

    def fake_import(name, *a, **k):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(core.importlib, "import_module", fake_import)
    try:
        _, reason = core.cupy_status()
        assert reason.startswith("CuPy is not installed; ")
        assert 'pip install "dlcore[cuda13]" if nvidia-smi shows "CUDA Version: 13.x"' in reason
        assert '"dlcore[cuda12]" if it shows 12.x' in reason
    finally:
        core.cupy_status.cache_clear()


def test_two_cupy_packages_are_reported(monkeypatch):
    import dlcore.backends.cupy_backend as core

    core.cupy_status.cache_clear()
    monkeypatch.setattr(core, "_installed_cupy_packages", lambda: ["cupy-cuda12x", "cupy-cuda13x"])
    try:
        _, reason = core.cupy_status()
        assert reason.startswith("several CuPy packages are installed at once (cupy-cuda12x, cupy-cuda13x)")
        assert "pip uninstall -y cupy-cuda12x cupy-cuda13x" in reason and "dlcore[cuda13]" in reason
    finally:
        core.cupy_status.cache_clear()


def test_asarray_and_to_numpy_round_trip(backend, dtype, host_rng):
    host = host_rng.standard_normal((3, 5))
    x = backend.asarray(host, dtype=dtype)
    assert x.dtype == backend.dtype(dtype)
    assert x.device == backend.device
    back = to_host(backend, x)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host.astype(dtype))
    assert backend.asarray(x) is x  # already there: no copy
    backend.synchronize()


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_big_endian_host_arrays_are_taken_as_their_values(backend, dtype):
    """Data from a big-endian file: torch refused it ("byte order different"), named as not numeric."""
    host = np.arange(6.0).reshape(2, 3).astype(">f8")
    x = backend.asarray(host, dtype=dtype)
    if dtype is not None:
        assert x.dtype == backend.dtype(dtype)
    np.testing.assert_array_equal(to_host(backend, x), np.arange(6.0).reshape(2, 3))  # NumPy keeps '>f8'
    assert float(backend.xp.sum(x)) == 15.0


def test_torch_takes_tensors_that_require_grad_without_building_a_graph():
    """Weights from an nn.Module (nn.Parameter) or an X that requires grad: each update extended an autograd
    graph holding every step's activations (memory grew by ~1 GB per 300 iterations)."""
    torch = pytest.importorskip("torch")
    from dlcore import Network

    net = Network([2, 4, 1], "tanh", backend="torch", seed=0)
    start = {k: torch.nn.Parameter(v.clone()) for k, v in net.params.items()}
    before = {k: v.detach().clone() for k, v in start.items()}
    net.set_parameters(start)
    X = torch.randn(2, 50, dtype=torch.float64, requires_grad=True)
    Y = (X[:1].detach() > 0).double()
    net.fit(X, Y, 0.1, iterations=3)
    assert all(not v.requires_grad and v.grad_fn is None for v in net.params.values())
    assert not net.predict_proba(X).requires_grad
    for k, v in start.items():  # the module's own parameters are left alone: still its, still tracked
        assert v.requires_grad and torch.equal(v.detach(), before[k]), k


def test_arrays_from_another_backend_are_moved(backend):
    other = get_backend("array_api_strict:device1")
    x = other.asarray(np.arange(6.0).reshape(2, 3))
    y = backend.asarray(x, dtype="float64")
    assert y.device == backend.device
    np.testing.assert_array_equal(to_host(backend, y), np.arange(6.0).reshape(2, 3))


def test_rng_is_bit_identical_across_backends(backend, dtype):
    ref = get_backend("numpy")
    for draw in (
        lambda be: be.rng(7).normal((4, 3), dtype=dtype, scale=0.5),
        lambda be: be.rng(7).uniform((5,), -1.0, 2.0, dtype=dtype),
        lambda be: be.rng(7).permutation(9),
    ):
        got, want = to_host(backend, draw(backend)), to_host(ref, draw(ref))
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert not np.array_equal(
        to_host(backend, backend.rng(7).normal((3,))), to_host(backend, backend.rng(8).normal((3,)))
    )


def test_dtype_lookup_refuses_unknown_names(backend):
    assert backend.dtype("float32") == backend.xp.float32
    with pytest.raises(ValueError, match="unsupported dtype 'float16'"):
        backend.dtype("float16")


@pytest.mark.parametrize("given", ["float32", np.float32, np.dtype("float32"), "xp"])
def test_a_network_takes_its_dtype_by_name_numpy_dtype_or_its_namespace_dtype(backend, given):
    dtype = backend.xp.float32 if given == "xp" else given
    net = dlcore.Network([2, 3, 1], backend=backend, dtype=dtype)
    assert net.dtype == backend.xp.float32 and net.params["W1"].dtype == backend.xp.float32
    assert net.dtype_name == "float32"


@pytest.mark.parametrize("given", [None, "int64", "bool", np.float16, np.int64, "xp.int64"])
def test_a_network_refuses_a_dtype_it_cannot_train_in(backend, given):
    """None was taken as bfloat16 by name while the weights were float64 (a fitted estimator then failed
    to unpickle); int64 and bool made integer weights whose fit failed inside the array library."""
    dtype = backend.xp.int64 if given == "xp.int64" else given
    with pytest.raises(ValueError, match=r"unsupported dtype .*; use one of float32, float64$"):
        dlcore.Network([2, 3, 1], backend=backend, dtype=dtype)


@pytest.mark.parametrize(
    ("name", "why"), [("jax", "JAX arrays are immutable"), ("dask", "Dask arrays are lazy")]
)
def test_immutable_namespaces_are_refused_with_the_reason(name, why):
    """The core updates parameters in place (W -= dW): on JAX that is an error, on Dask a silent no-op."""
    with pytest.raises(ValueError, match=rf"the {name} backend cannot work: {why}.*use numpy, torch or cupy"):
        get_backend(name)
    fake = type("Array", (), {"__module__": f"{name}.core"})()
    with pytest.raises(ValueError, match=why):
        backend_of(fake)
    library = pytest.importorskip(f"{name}.numpy" if name == "jax" else "dask.array")
    with pytest.raises(ValueError, match=why):
        backend_of(library.ones((2, 2)))


def test_torch_backend_names_and_auto(monkeypatch):
    torch = pytest.importorskip("torch")
    be = get_backend("torch:cpu")
    assert get_backend("torch").device == be.device and be.name == "torch" and not be.is_gpu
    x = be.asarray(np.arange(6.0).reshape(2, 3), dtype="float32")
    assert isinstance(x, torch.Tensor) and be.asarray(x) is x and backend_of(x).device == be.device
    with pytest.raises(ValueError, match="a torch device is cpu, cuda or cuda:N"):
        get_backend("torch:tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match=r"^cannot use torch:cuda: this PyTorch .*; use torch:cpu$"):
            get_backend("torch:cuda")
        assert "this PyTorch " in get_backend("auto").note or get_backend("auto").is_gpu


def test_torch_says_why_it_sees_no_gpu(monkeypatch):
    """It said "this PyTorch has no CUDA GPU here" for a CPU-only build and for a CUDA build whose GPU
    CUDA_VISIBLE_DEVICES hides alike, where the cupy probe names the variable."""
    from dlcore.backends.torch_backend import _no_gpu

    cpu_build = types.SimpleNamespace(version=types.SimpleNamespace(cuda=None))
    cuda_build = types.SimpleNamespace(version=types.SimpleNamespace(cuda="13.0"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _no_gpu(cpu_build) == "this PyTorch is a CPU-only build (no CUDA)"
    assert _no_gpu(cuda_build) == "this PyTorch (CUDA 13.0) sees no GPU"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert _no_gpu(cuda_build) == 'this PyTorch (CUDA 13.0) sees no GPU (CUDA_VISIBLE_DEVICES="")'


def test_a_torch_that_fails_to_import_leaves_auto_to_the_others(tmp_path):
    """PyTorch's import can raise ValueError or OSError (a CUDA build missing a library): only ImportError
    was caught, so every command, the default `dlcore train` included, ended with that message."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text('raise ValueError("libnvrtc.so not found")\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path), DLCORE_BACKEND="auto")

    def dlcore_cli(*argv):
        return subprocess.run(
            [sys.executable, "-m", "dlcore", *argv], capture_output=True, text=True, env=env
        )

    auto = dlcore_cli("train", "--iterations", "3")
    assert auto.returncode == 0, auto.stderr
    info = dlcore_cli("info")
    assert "not available: PyTorch is installed but fails to import (libnvrtc.so not found)" in info.stdout
    torch = dlcore_cli("train", "--backend", "torch")
    assert torch.returncode == 2 and torch.stderr == (
        "dlcore: error: cannot use the torch backend: PyTorch is installed but fails to import (libnvrtc.so "
        "not found); reinstall it (the CPU build: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu), or use the numpy backend\n"
    )


def test_tf32_is_a_gpus_mode_and_torch_puts_its_switch_back(monkeypatch):
    """torch:cuda switches cuBLAS's float32 products to TF32 inside ``tf32()`` and back after it (even
    after an error); a CPU backend refuses with one sentence naming the GPU backends."""
    refusal = r"has no TF32 mode: it is an NVIDIA GPU's \(cupy, torch:cuda\)"
    for name in ("numpy", "array_api_strict"):
        with pytest.raises(BackendError, match=refusal), get_backend(name).tf32():
            pass
    if available_backends()["torch"]:
        pytest.skip(available_backends()["torch"])
    import torch

    cpu = get_backend("torch")
    with pytest.raises(BackendError, match=refusal), cpu.tf32():
        pass
    matmul = torch.backends.cuda.matmul
    name = "fp32_precision" if hasattr(matmul, "fp32_precision") else "allow_tf32"
    before = getattr(matmul, name)
    gpu = type(cpu)(cpu.xp, torch.device("cuda", 0), torch, cpu.ops)  # the switch is global: no GPU needed
    monkeypatch.setattr(type(gpu), "device_name", lambda self: "GPU 0")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (7, 5))
    with pytest.raises(BackendError, match="GPU 0 has no TF32 tensor cores"), gpu.tf32():
        pass
    assert getattr(matmul, name) == before
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (9, 0))
    with pytest.raises(RuntimeError, match="inside"), gpu.tf32():
        assert getattr(matmul, name) in ("tf32", True)
        raise RuntimeError("inside")
    assert getattr(matmul, name) == before


@pytest.mark.parametrize("layout", ["reversed", "float16"])
def test_host_arrays_numpy_holds_train_alike_on_every_backend(backend, layout):
    """torch refused a reversed view (negative strides: "X must be a numeric array; could not convert
    it") and array_api_strict float16 data (the standard has no float16); NumPy trains on both."""
    X, Y = dlcore.datasets.planar("numpy", m=40)
    if layout == "reversed":
        given, same = (
            (X[:, ::-1], Y[:, ::-1]),
            (np.ascontiguousarray(X[:, ::-1]), np.ascontiguousarray(Y[:, ::-1])),
        )
    else:
        given = (X.astype(np.float16), Y.astype(np.float16))
        same = tuple(a.astype(np.float32) for a in given)
    nets = [dlcore.Network([2, 3, 1], backend=backend, seed=0) for _ in range(2)]
    for net, (Xg, Yg) in zip(nets, (given, same), strict=True):
        net.fit(Xg, Yg, learning_rate=0.5, iterations=3)
    for name, value in nets[1].parameters_numpy().items():
        np.testing.assert_array_equal(nets[0].parameters_numpy()[name], value)


def test_arrays_of_two_libraries_are_named_as_such_not_as_two_dtypes(backend):
    """A NumPy X with torch parameters was refused as "X is float64 but W1 is torch.float64 (xp.astype(X,
    W1.dtype))", a fix that cannot work; the metrics raised TypeErrors from inside array_api_compat."""
    if backend.name == "numpy":
        pytest.skip("numpy against numpy is one library")
    host = np.random.default_rng(0).standard_normal((2, 30))
    X, Y = backend.asarray(host), backend.asarray((host[:1] > 0) * 1.0)
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
    params = dlcore.initialize_parameters([2, 3, 1], "he", backend, 0, "float64")
    kind = {"torch": "torch.Tensor", "array_api_strict": "array_api_strict.Array", "cupy": "cupy.ndarray"}[
        backend.name.split(":")[0]
    ]
    fix = "put both on one backend (backend.asarray(x) moves x there)"
    labels = np.asarray((host[:1] > 0) * 1, dtype=np.int64)
    two = "are arrays of two libraries"
    cases = [
        (lambda: dlcore.forward(np.asarray(host), params, acts), f"X and W1 {two} (numpy.ndarray, {kind})"),
        (
            lambda: dlcore.train_step(X, np.asarray(host[:1]), params, acts, 0.1),
            f"Y and the output A[L] {two} (numpy.ndarray, {kind})",
        ),
        (
            lambda: dlcore.accuracy(backend.asarray(labels), labels),
            f"predictions and labels {two} ({kind}, numpy.ndarray)",
        ),
        (
            lambda: dlcore.confusion_matrix(labels, backend.asarray(labels), 2),
            f"labels and predictions {two} (numpy.ndarray, {kind})",
        ),
        (
            lambda: dlcore.r2_score(Y, np.asarray(host[:1])),
            f"predictions A and targets Y {two} ({kind}, numpy.ndarray)",
        ),
    ]
    for call, start in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"{start}: {fix}"
    assert dlcore.accuracy(backend.asarray(labels), backend.asarray(labels)) == 1.0


def test_arrays_on_two_devices_are_named_as_such(backend):
    """X on the CPU with torch parameters on the GPU failed inside torch ("Expected all tensors to be on
    the same device ... wrapper_CUDA_mm"), array_api_strict's two devices in its own words, a metric's
    arguments likewise: each names the two devices now, before any array work."""
    host = np.random.default_rng(0).standard_normal((2, 30))
    X, Y = backend.asarray(host), backend.asarray((host[:1] > 0) * 1.0)
    if backend.name == "array_api_strict":
        other = [d for d in namespace(X).__array_namespace_info__().devices() if d != X.device][0]

        def away(x):
            return namespace(x).asarray(x, device=other)

    elif backend.name == "torch":  # on the CPU, a tensor of torch's "meta" device (shapes, no values)
        other = "cpu" if X.device.type != "cpu" else "meta"

        def away(x):
            return x.to(other)

    else:
        pytest.skip(f"{backend.name}: one device here")
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
    params = dlcore.initialize_parameters([2, 3, 1], "he", backend, 0, "float64")
    labels = backend.asarray(np.asarray((host[:1] > 0) * 1, dtype=np.int64))
    here, there = X.device, away(X).device
    fix = "put both on one device (backend.asarray(x) moves x to the backend's)"
    cases = [
        (lambda: dlcore.forward(away(X), params, acts), f"X is on {there} but W1 on {here}"),
        (
            lambda: dlcore.train_step(X, away(Y), params, acts, 0.1),
            f"Y is on {there} but the output A[L] on {here}",
        ),
        (lambda: dlcore.accuracy(labels, away(labels)), f"predictions is on {here} but labels on {there}"),
    ]
    for call, start in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"{start}: {fix}"


@pytest.mark.parametrize("given", ["int64", None, "float16", np.float32])
def test_initialize_parameters_takes_the_dtypes_a_network_takes(backend, given):
    """int64 truncated the weights to integers without a word (numpy), None gave float64 W and float32 b
    (torch), np.float32 was 'not understood' (torch): Network refused or took them alike everywhere."""
    dims = [3, 4, 1]
    if given is np.float32:
        params = dlcore.initialize_parameters(dims, "he", backend, 1, given)
        assert {backend.dtype_name(v.dtype) for v in params.values()} == {"float32"}
        return
    with pytest.raises(ValueError, match=r"^unsupported dtype .*; use one of float32, float64$"):
        dlcore.initialize_parameters(dims, "he", backend, 1, given)


@pytest.mark.parametrize("kind", ["int64", "bool", "numpy", "float64"])
def test_train_refuses_targets_every_backend_would_not_train_on(backend, kind):
    """dlcore.train checked Y's shape only: numpy trained on integer, boolean and NumPy targets, torch
    on integers but not booleans, array_api_strict on none (TypeErrors from inside the loss)."""
    from dlcore.optimizers import GradientDescent
    from dlcore.training import Plan

    host = np.random.default_rng(0).standard_normal((2, 20))
    X, labels = backend.asarray(host), host[:1] > 0
    Y = labels if kind == "numpy" else backend.asarray(labels, dtype=kind)
    if kind == "numpy" and backend.name == "numpy":
        Y = labels * 1  # int64 NumPy targets: the numpy backend's case of the same refusal
    params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 1, "float64")
    if kind == "float64":  # float64 targets of float32 parameters (torch, strict: inside the products)
        X, Y = backend.asarray(host, dtype="float32"), backend.asarray(labels, dtype="float64")
        params = dlcore.initialize_parameters([2, 3, 1], "xavier", backend, 1, "float32")
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
    refused = r"^(Y is ((torch|array_api_strict)\.)?(int64|bool|float64) but W1 is|Y and W1 are arrays)"
    with pytest.raises(ValueError, match=refused):
        dlcore.train(params, acts, X, Y, optimizer=GradientDescent(0.5), plan=Plan.of(20, None, 5, None))


def test_a_tensor_that_requires_grad_is_refused_by_the_functional_step(backend):
    """train_step on a torch tensor made with requires_grad=True failed inside torch ("tanh_backward():
    functions with out=... arguments don't support automatic differentiation")."""
    if backend.name != "torch":
        pytest.skip("autograd is torch's")
    X = backend.asarray(np.random.default_rng(0).standard_normal((2, 10)))
    Y = backend.asarray((np.arange(10)[None] % 2) * 1.0)
    params = dlcore.initialize_parameters([2, 3, 1], "he", backend, 0, "float64")
    acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
    before = {k: to_host(backend, v) for k, v in params.items()}
    refused = (
        r"^{} requires grad \(torch autograd\), but dlcore computes its own gradients: pass {}\.detach\(\)"
    )
    with pytest.raises(ValueError, match=refused.format("X", "X")):
        dlcore.train_step(X.clone().requires_grad_(True), Y, params, acts, 0.1)
    with pytest.raises(ValueError, match=refused.format("Y", "Y")):
        dlcore.train_step(X, Y.clone().requires_grad_(True), params, acts, 0.1)
    params["W2"].requires_grad_(True)
    with pytest.raises(ValueError, match=refused.format("W2", "W2")):
        dlcore.train_step(X, Y, params, acts, 0.1)
    params["W2"].requires_grad_(False)
    for k, v in params.items():
        np.testing.assert_array_equal(to_host(backend, v), before[k])
    assert float(dlcore.train_step(X, Y, params, acts, 0.1)) > 0


@pytest.mark.parametrize("layout", ["to_sparse", "to_sparse_csr"])
def test_a_sparse_torch_tensor_is_refused_alike_on_every_backend(backend, layout):
    """The torch backend raised torch's NotImplementedError ('aten::ne.Scalar' ... 'SparseCPU') or
    RuntimeError (unsupported tensor layout), the others a conversion error quoting torch."""
    torch = pytest.importorskip("torch")
    X = torch.randn(3, 40, dtype=torch.float64)
    Y = (X[:1] > 0).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Sparse CSR tensor support is in beta state"
        sparse = getattr(X, layout)()
    kind = {"to_sparse": "torch.sparse_coo", "to_sparse_csr": "torch.sparse_csr"}[layout]
    refused = rf"^X is a sparse tensor \({kind}\); pass a dense one \(X\.to_dense\(\)\)$"
    with pytest.raises(ValueError, match=refused):
        dlcore.Network([3, 4, 1], backend=backend).fit(sparse, Y, 0.1, iterations=3)
    with pytest.raises(ValueError, match=rf"^X is a sparse tensor \({kind}\)"):
        Normalization.fit(sparse, backend)
    if backend.name == "torch":  # the functional API on torch's own tensors: X trained, Y raised in torch
        params = dlcore.initialize_parameters([3, 4, 1], "xavier", backend, 1, "float64")
        acts = [dlcore.get_activation("tanh"), dlcore.get_activation("sigmoid")]
        X_on = X.to(params["W1"].device)  # X of the parameters' device (the CPU's, here, on torch:cuda)
        for X_, Y_, name in ((sparse, Y, "X"), (X_on, getattr(Y, layout)(), "Y")):
            with pytest.raises(ValueError, match=rf"^{name} is a sparse tensor"):
                dlcore.train_step(X_, Y_, params, acts, 0.1)
