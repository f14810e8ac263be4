"""The cupy backend without a GPU, against a small fake of the few CuPy calls dlcore makes.

- ``cupy_status`` tells apart two CuPy wheels, no NVIDIA driver, a driver older than the wheel's CUDA,
  no visible GPU and missing CUDA libraries, each with its own fix;
- ``cupy:1`` works on GPU 1: array-api-compat ignores ``device=`` for CuPy, so every allocation inside
  ``backend.activate()`` must land on the backend's device (the fake records the current device at
  each allocation);
- ``backend.rng(seed, on_device=True)`` draws on that GPU (cuRAND), the host draws stay the default.
"""

from __future__ import annotations

import sys
import types

import array_api_compat
import numpy as np
import pytest
from dlcore.backends import BackendError, HostRNG, get_backend
from dlcore.backends import cupy_backend as core

import tests.conftest
from dlcore.ops import ops_of
from dlcore.optimizers import GradientDescent
from dlcore.precision import MixedPrecision


class CUDARuntimeError(RuntimeError):
    """Stands in for ``cupy_backends.cuda.api.runtime.CUDARuntimeError``."""


class FakeArray:
    """A NumPy array that knows the GPU it was allocated on."""

    def __init__(self, data, device) -> None:
        self.data = np.asarray(data)
        self.device = device

    dtype = property(lambda self: self.data.dtype)
    shape = property(lambda self: self.data.shape)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __add__(self, other):
        return FakeArray(self.data + np.asarray(other), self.device)

    def __matmul__(self, other):
        return FakeArray(self.data @ np.asarray(other), self.device)

    def __imul__(self, k):
        self.data *= k
        return self

    def sum(self):
        return FakeArray(self.data.sum(), self.device)

    def __float__(self) -> float:
        return float(self.data)


class FakeCupy(types.ModuleType):
    """``cupy``: runtime versions and device count, ``cuda.Device`` as the current-device context,
    array creation that records ``(function, current device)``, and ``random.RandomState``."""

    def __init__(self, *, driver=13000, built=13020, devices=1, count_error=None, run_error=None,
                 curand_error=None) -> None:  # fmt: skip
        super().__init__("cupy")
        fake = self
        self.current = [0]  # the stack of current devices; CUDA's default is GPU 0
        self.allocations: list[tuple[str, int]] = []
        self.syncs: list[int] = []
        self.float32, self.float64, self.int64, self.bool_ = np.float32, np.float64, np.int64, np.bool_
        self.ndarray = FakeArray
        self.capability = "90"  # an H100/H200

        class Device:
            def __init__(self, id=None) -> None:
                self.id = fake.current[-1] if id is None else id

            compute_capability = property(lambda self: fake.capability)

            def __enter__(self):
                fake.current.append(self.id)
                return self

            def __exit__(self, *exc) -> None:
                fake.current.pop()

            def __eq__(self, other) -> bool:
                return isinstance(other, Device) and other.id == self.id

            __hash__ = object.__hash__

            def synchronize(self) -> None:
                fake.syncs.append(self.id)

        def version(value):
            def get():
                if isinstance(value, Exception):
                    raise value
                return value

            return get

        def count():
            if count_error is not None:
                raise count_error
            return devices

        self.cuda = types.SimpleNamespace(
            Device=Device,
            runtime=types.SimpleNamespace(
                driverGetVersion=version(driver), runtimeGetVersion=version(built), getDeviceCount=count
            ),
        )

        def allocate(name, make):
            def create(*args, dtype=None, **kwargs):
                if run_error is not None:
                    raise run_error
                fake.allocations.append((name, fake.current[-1]))
                data = make(*args)
                return FakeArray(data if dtype is None else data.astype(dtype), Device())

            return create

        self.zeros = allocate("zeros", np.zeros)
        self.ones = allocate("ones", np.ones)
        self.full = allocate("full", np.full)
        self.arange = allocate("arange", np.arange)
        self.linspace = allocate("linspace", np.linspace)
        self.asarray = allocate("asarray", lambda x: np.array(x))

        class RandomState:
            def __init__(self, seed=None) -> None:
                if curand_error is not None:
                    raise curand_error
                fake.allocations.append(("RandomState", fake.current[-1]))
                self.generator = np.random.default_rng(seed)

            def _out(self, name, data):
                fake.allocations.append((name, fake.current[-1]))
                return FakeArray(data, Device())

            @staticmethod
            def _check(dtype):  # CuPy 14's cupy/random/_generator.py: _check_and_get_dtype
                if np.dtype(dtype).char not in ("f", "d"):
                    raise TypeError("cupy.random only supports float32 and float64")
                return dtype

            def standard_normal(self, size, dtype=float):
                data = self.generator.standard_normal(size).astype(self._check(dtype))
                return self._out("standard_normal", data)

            def uniform(self, low, high, size, dtype=float):
                data = self.generator.uniform(low, high, size).astype(self._check(dtype))
                return self._out("uniform", data)

            def permutation(self, n):
                return self._out("permutation", self.generator.permutation(n))

        self.random = types.SimpleNamespace(RandomState=RandomState)


def fake_xp(cupy: FakeCupy) -> types.ModuleType:
    """``array_api_compat.cupy``: creation functions that take ``device=`` and ignore it, as it does."""
    xp = types.ModuleType("array_api_compat.cupy")

    def ignoring_device(create):
        return lambda *args, device=None, **kwargs: create(*args, **kwargs)

    for name in ("zeros", "ones", "full", "arange", "linspace", "asarray"):
        setattr(xp, name, ignoring_device(getattr(cupy, name)))
    xp.float16, xp.float32, xp.float64 = np.float16, np.float32, np.float64
    xp.int64, xp.bool = np.int64, np.bool_
    xp.astype = lambda x, dtype: FakeArray(x.data.astype(dtype), x.device)
    return xp


def status(monkeypatch, fake: FakeCupy, packages=("cupy-cuda13x",)) -> tuple:
    """``cupy_status()`` with ``fake`` as the imported cupy and ``packages`` as the installed wheels."""
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(core, "_installed_cupy_packages", lambda: list(packages))
    core.cupy_status.cache_clear()
    try:
        return core.cupy_status()
    finally:
        core.cupy_status.cache_clear()


def cupy_backend(monkeypatch, fake: FakeCupy, device: str | None = None) -> core.CupyBackend:
    """``CupyBackend.create(device)`` on the fake (the registry's cache left alone); one
    ``array_api_compat.cupy`` per fake, as there is one per process."""
    xp = fake.compat_xp = getattr(fake, "compat_xp", None) or fake_xp(fake)
    monkeypatch.setattr(core, "cupy_status", lambda: (fake, ""))
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", xp)
    monkeypatch.setattr(array_api_compat, "cupy", xp, raising=False)
    return core.CupyBackend.create(device)


def why(reason: str) -> str:
    return reason.split(";")[0]


# -- cupy_status: why CuPy cannot run here, and the fix for that reason ------------------------------
def test_a_working_gpu_is_ok(monkeypatch):
    fake = FakeCupy()
    assert status(monkeypatch, fake) == (fake, "")
    assert [name for name, _ in fake.allocations] == ["ones"]  # the probe ran a kernel and a product


def test_no_driver_says_install_the_driver_not_cupy(monkeypatch):
    _, reason = status(monkeypatch, FakeCupy(driver=0))
    assert why(reason) == "CuPy is installed but no NVIDIA driver was found (CUDA driver version 0)"
    assert "install the NVIDIA driver" in reason and "pip install" not in reason


def test_driver_older_than_the_wheels_cuda_says_which_wheel_fits_it(monkeypatch):
    _, reason = status(monkeypatch, FakeCupy(driver=12040, built=13020))
    assert why(reason) == (
        "CuPy is installed but the NVIDIA driver (CUDA 12.4) is older than this CuPy's CUDA 13.2 "
        "(cupy-cuda13x, CUDA 13 needs a newer driver)"
    )
    fix = reason.split("; ", 1)[1]
    assert fix.startswith("update the NVIDIA driver, or switch to the wheel for CUDA 12: ")
    assert 'pip uninstall -y cupy-cuda13x && pip install "dlcore[cuda12]"' in fix
    _, reason = status(monkeypatch, FakeCupy(driver=11080, built=12080), packages=["cupy-cuda12x"])
    assert "(CUDA 11.8) is older than this CuPy's CUDA 12.8" in reason
    assert "update the NVIDIA driver" in reason and "cuda11" not in reason  # no CuPy 14 wheel for it


def test_an_older_minor_version_of_the_same_cuda_is_fine(monkeypatch):
    fake = FakeCupy(driver=13000, built=13020)  # CUDA's minor-version compatibility
    assert status(monkeypatch, fake) == (fake, "")


def test_insufficient_driver_from_the_runtime_is_still_named(monkeypatch):
    error = CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    _, reason = status(monkeypatch, FakeCupy(driver=RuntimeError("?"), count_error=error))
    assert why(reason).startswith(
        "CuPy is installed but the NVIDIA driver is too old for this CuPy's CUDA 13.2"
    )


def test_no_visible_gpu_names_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    error = CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    _, reason = status(monkeypatch, FakeCupy(count_error=error))
    assert why(reason) == "CuPy and the NVIDIA driver are installed but no GPU is visible"
    assert "check that nvidia-smi lists one" in reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _, reason = status(monkeypatch, FakeCupy(devices=0))
    assert (
        why(reason)
        == 'CuPy and the NVIDIA driver are installed but no GPU is visible (CUDA_VISIBLE_DEVICES="")'
    )


@pytest.mark.parametrize(
    ("package", "error", "library"),
    [
        ("cupy-cuda13x", ImportError("libcublas.so.13: cannot open shared object file: No such file"),
         "libcublas.so.13 (cuBLAS)"),
        ("cupy-cuda12x", RuntimeError('Failure finding "libnvrtc.so.12": No such file: libnvrtc.so.12'),
         "libnvrtc.so.12 (NVRTC)"),
        ("cupy-cuda13x", RuntimeError("nvrtc: error: failed to open libnvrtc-builtins.so.13.0."),
         "libnvrtc-builtins.so.13.0 (NVRTC)"),  # it fell through to "could not run on it"
    ],
)  # fmt: skip
def test_missing_cuda_libraries_point_to_the_ctk_extra(monkeypatch, package, error, library):
    major = package[len("cupy-cuda") : -1]
    _, reason = status(monkeypatch, FakeCupy(built=int(major) * 1000, run_error=error), packages=[package])
    assert why(reason) == f"CuPy found a GPU but cannot load {library}"
    assert f'pip install "dlcore[cuda{major}]" (it pulls cupy-cuda{major}x[ctk])' in reason


def test_every_reason_is_one_line_with_its_own_why_and_the_numpy_fallback(monkeypatch):
    no_device = CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    reasons = [
        status(monkeypatch, FakeCupy(), packages=["cupy-cuda12x", "cupy-cuda13x"])[1],
        status(monkeypatch, FakeCupy(driver=0))[1],
        status(monkeypatch, FakeCupy(driver=12080))[1],
        status(monkeypatch, FakeCupy(count_error=no_device))[1],
        status(monkeypatch, FakeCupy(run_error=ImportError("libcublas.so.13: cannot open")))[1],
        status(monkeypatch, FakeCupy(run_error=CUDARuntimeError("cudaErrorLaunchFailure: unspecified")))[1],
        status(monkeypatch, FakeCupy(count_error=CUDARuntimeError("cudaErrorUnknown: unknown\nerror")))[1],
    ]
    assert all(reasons) and len({why(r) for r in reasons}) == len(reasons)
    for reason in reasons:
        assert "\n" not in reason and reason.endswith("or use the numpy backend")
        assert len(why(reason)) < 160, why(reason)  # the skip reason of the cupy tests


def test_the_tests_skip_with_the_first_clause_only(monkeypatch):
    monkeypatch.setattr(tests.conftest, "cupy_status", lambda: (None, "no GPU here; the long fix"))
    monkeypatch.delenv("DLCORE_REQUIRE_CUPY", raising=False)
    assert tests.conftest.cupy_skip_reason() == "cupy backend unavailable: no GPU here"
    monkeypatch.setenv("DLCORE_REQUIRE_CUPY", "1")  # scripts/gpu_validate.sh on a GPU: fail, do not skip
    assert tests.conftest.cupy_skip_reason() == ""


# -- cupy:1 ---------------------------------------------------------------------------------------
def test_every_cupy_backend_shares_the_one_registered_ops(monkeypatch):
    """A second backend (another GPU, or the same one asked for again) once registered a new CupyOps for
    cupy.ndarray, so the functional API's ops_of() no longer answered the first backend's ops (seen on an
    H200: tests/test_ops.py failed for cupy after another test had made its own backend)."""
    fake = FakeCupy(devices=2)
    first, second = cupy_backend(monkeypatch, fake, "0"), cupy_backend(monkeypatch, fake, "1")
    assert first.ops is second.ops
    assert ops_of(first.asarray(np.ones((2, 2)))) is first.ops


def test_cupy_1_allocates_on_gpu_1_inside_activate(monkeypatch):
    fake = FakeCupy(devices=2)
    be = cupy_backend(monkeypatch, fake, "1")
    assert be.device.id == 1 and fake.current == [0]
    be.xp.zeros((2, 2), device=be.device)  # outside: array-api-compat ignores device= ...
    assert fake.allocations == [("zeros", 0)]  # ... and CuPy allocates on the current device, GPU 0
    fake.allocations.clear()
    with be.activate():  # what Network's fit / predict / cost / accuracy enter once
        be.xp.zeros((2, 3), device=be.device)
        be.xp.full((2,), 1.0, device=be.device)
        be.xp.arange(3, device=be.device)
        be.xp.linspace(0.0, 1.0, 5, device=be.device)
        x = be.asarray(np.ones((2, 2)), dtype="float32")
        w = be.rng(1).normal((3, 2), dtype="float64")
        with be.activate():  # re-entrant
            be.xp.zeros((1,), device=be.device)
    assert [device for _, device in fake.allocations] == [1] * 7, fake.allocations
    assert fake.current == [0]  # left again
    assert be.owns(x) and be.owns(w) and x.dtype == np.float32 and be.asarray(x) is x
    y = be.asarray(np.zeros(3))  # a move outside activate() enters the device itself
    assert y.device.id == 1 and fake.allocations[-1] == ("asarray", 1)
    be.synchronize()
    assert fake.syncs == [1]


def test_cupy_without_a_device_number_is_gpu_0_and_a_missing_gpu_is_one_error(monkeypatch):
    fake = FakeCupy(devices=2)
    assert cupy_backend(monkeypatch, fake).device.id == 0
    with pytest.raises(BackendError, match="GPU 2 does not exist; this machine has 2"):
        cupy_backend(monkeypatch, fake, "2")
    with pytest.raises(ValueError, match="a cupy device is a GPU number like cupy:1"):
        cupy_backend(monkeypatch, fake, "gpu1")


# -- device-side random draws -----------------------------------------------------------------------
def test_device_rng_draws_on_the_backends_gpu_without_a_host_copy(monkeypatch):
    fake = FakeCupy(devices=2)
    be = cupy_backend(monkeypatch, fake, "1")
    assert isinstance(be.rng(7), HostRNG)  # the default: host draws, bit-identical on every backend
    rng = be.rng(7, on_device=True)
    assert isinstance(rng, core.CupyDeviceRNG)
    z = rng.normal((3, 4), dtype="float32", scale=0.5)
    u = rng.uniform((5,), -1.0, 2.0, dtype="float64")
    p = rng.permutation(9)
    names = [name for name, _ in fake.allocations]
    assert names == ["RandomState", "standard_normal", "uniform", "permutation"]  # no asarray: no copy
    assert {device for _, device in fake.allocations} == {1} and fake.current == [0]
    assert (z.dtype, u.dtype, p.dtype) == (np.float32, np.float64, np.int64)
    assert z.shape == (3, 4) and u.shape == (5,) and sorted(np.asarray(p)) == list(range(9))
    assert np.all((np.asarray(u) >= -1.0) & (np.asarray(u) < 2.0))
    again = be.rng(7, on_device=True)  # reproducible for a seed on one device
    np.testing.assert_array_equal(np.asarray(again.normal((3, 4), dtype="float32", scale=0.5)), z)
    assert not np.array_equal(np.asarray(be.rng(8, on_device=True).normal((3, 4), "float32", 0.5)), z)


def test_device_rng_without_curand_says_how_to_install_it(monkeypatch):
    missing = ImportError('Failure finding "libcurand.so.11 or libcurand.so.10": No such file')
    be = cupy_backend(monkeypatch, FakeCupy(curand_error=missing))
    with pytest.raises(
        BackendError, match=r"device random draws need libcurand\.so\.11 \(cuRAND\); .*\[ctk\]"
    ):
        be.rng(1, on_device=True)


@pytest.mark.parametrize(
    "name",
    [
        tests.conftest._backend_param(n)
        for n in ("numpy", "array_api_strict", "array_api_strict:device1", "torch")
    ],
)
def test_cpu_backends_draw_on_the_host_when_asked_for_device_draws(name):
    """As Backend.rng says (torch:cpu drew with torch's generator: other numbers than numpy's)."""
    be = get_backend(name)
    assert isinstance(be.rng(7, on_device=True), HostRNG)
    for draw in (
        lambda rng: rng.normal((4, 3), dtype="float32", scale=0.5),
        lambda rng: rng.uniform((5,), -1.0, 2.0, dtype="float64"),
        lambda rng: rng.permutation(9),
    ):
        np.testing.assert_array_equal(
            be.to_numpy(draw(be.rng(7, on_device=True))), be.to_numpy(draw(be.rng(7)))
        )


def test_device_rng_draws_a_low_precision_dtype_in_float32_and_casts(monkeypatch):
    """cupy.random draws only float32 and float64 (a TypeError otherwise): under mixed precision a float16
    dropout mask (``--device-rng``) is drawn in float32 on the GPU and cast there, not refused."""
    fake = FakeCupy()
    be = cupy_backend(monkeypatch, fake)
    u = be.rng(5, on_device=True).uniform((4, 5), dtype=np.dtype("float16"))
    z = be.rng(5, on_device=True).normal((2, 3), dtype=np.dtype("float16"), scale=0.5)
    assert (u.dtype, z.dtype) == (np.float16, np.float16) and u.shape == (4, 5) and z.shape == (2, 3)
    assert np.all((np.asarray(u) >= 0.0) & (np.asarray(u) <= 1.0))
    z32 = be.rng(5, on_device=True).normal((2, 3), dtype="float32", scale=0.5)  # the same draws, cast
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z32).astype(np.float16))
    assert "asarray" not in [name for name, _ in fake.allocations]  # drawn on the device: no host copy


# -- mixed precision --------------------------------------------------------------------------------
def test_cupy_computes_in_float16_and_refuses_bfloat16_in_one_sentence(monkeypatch):
    """CuPy 14 knows ml_dtypes' bfloat16, but cupy.where and cupy.clip have no bfloat16 loops (CuPy 14.2's
    cupy/_sorting/search.py and _routines_math.pyx): they compute it in float32, so sigmoid's A[L] would
    leave bfloat16. Mixed precision on cupy computes in float16, and a bfloat16 request is one sentence
    naming the fix, before any array is touched (CLI: exit 2, as on numpy)."""
    fake = FakeCupy()
    fake.__version__ = "14.2.0"
    ml_dtypes = types.ModuleType("ml_dtypes")
    ml_dtypes.bfloat16 = np.float16  # any dtype: the question is whether cupy offers it
    monkeypatch.setitem(sys.modules, "ml_dtypes", ml_dtypes)
    be = cupy_backend(monkeypatch, fake)
    assert be.low_precision_dtypes() == ("float16",)
    assert be.low_precision_dtype("float16") == np.float16
    sentence = r"^the cupy backend cannot compute in bfloat16; use float16 or the torch backend "
    sentence += r"\(bfloat16, float16\)$"
    with pytest.raises(BackendError, match=sentence):
        be.low_precision_dtype("bfloat16")
    with pytest.raises(BackendError, match=sentence):
        MixedPrecision(GradientDescent(0.1), "bfloat16").prepare({"W1": object()}, be)


def test_tf32_sets_cupys_float32_compute_type_and_puts_it_back(monkeypatch):
    fake = FakeCupy()
    be = cupy_backend(monkeypatch, fake)
    monkeypatch.setattr(core.CupyBackend, "device_name", lambda self: "GPU 0")
    state = {"float32": 1}  # COMPUTE_TYPE_DEFAULT
    linalg = types.ModuleType("cupy._core._routines_linalg")
    linalg.get_compute_type = lambda dtype: state[np.dtype(dtype).name]
    linalg.set_compute_type = lambda dtype, kind: state.__setitem__(np.dtype(dtype).name, kind)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", linalg)
    with pytest.raises(RuntimeError, match="inside"), be.tf32():
        assert state == {"float32": core.CUPY_COMPUTE_TYPE_TF32}
        raise RuntimeError("inside")
    assert state == {"float32": 1}
    del linalg.set_compute_type
    with pytest.raises(BackendError, match="CUPY_TF32=1"), be.tf32():
        pass
    monkeypatch.delitem(sys.modules, "cupy._core._routines_linalg")  # CuPy moved it: the same sentence
    monkeypatch.setattr(
        core.importlib, "import_module", lambda name: (_ for _ in ()).throw(ImportError(name))
    )
    with pytest.raises(BackendError, match="CUPY_TF32=1"), be.tf32():
        pass
    fake.capability = "75"  # a Turing GPU: the switch would change nothing
    with (
        pytest.raises(BackendError, match=r"GPU 0 has no TF32 tensor cores \(compute capability 7.x"),
        be.tf32(),
    ):
        pass
