"""Backend lookup: the registry of backend classes, ``get_backend(name)``, ``auto``, ``backend_of(x)``.

Adding a backend is one :class:`~dlcore.backends.base.Backend` subclass plus one :func:`register_backend`
call (see the README's "Adding a backend").
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

from dlcore.backends.base import Backend, BackendError
from dlcore.backends.cupy_backend import CupyBackend
from dlcore.backends.numpy_backend import NumpyBackend
from dlcore.backends.strict_backend import ArrayApiStrictBackend
from dlcore.backends.torch_backend import TorchBackend

log = logging.getLogger("dlcore.backends")

ENV_VAR = "DLCORE_BACKEND"
REGISTRY: dict[str, type[Backend]] = {}
#: the order ``auto`` tries the GPU backends in, before falling back to NumPy
AUTO_PREFERENCE: list[str] = []


def _split_name(name: str) -> tuple[str, str | None]:
    base, _, dev = name.partition(":")
    return base.strip().lower().replace("-", "_"), (dev.strip() or None)


def register_backend(cls: type[Backend], *, auto: bool = False) -> type[Backend]:
    """Make ``cls`` available as ``get_backend(cls.name)``; ``auto=True`` lets ``auto`` choose it. The name
    is one :func:`get_backend` can find: lower case, ``_`` not ``-``, no ``:`` (ValueError otherwise)."""
    if _split_name(cls.name) != (cls.name, None) or not cls.name or cls.name == "auto":
        raise ValueError(
            f"a backend's name must be lower case without '-' or ':' and not 'auto'; got {cls.name!r} "
            f"(e.g. {_split_name(cls.name)[0] or 'mylib'!r})"
        )
    REGISTRY[cls.name] = cls
    if auto and cls.name not in AUTO_PREFERENCE:
        AUTO_PREFERENCE.append(cls.name)
    return cls


register_backend(NumpyBackend)
register_backend(CupyBackend, auto=True)
register_backend(ArrayApiStrictBackend)
register_backend(TorchBackend, auto=True)  # after CuPy: auto prefers CuPy, then PyTorch CUDA, then NumPy

#: array libraries whose arrays cannot be updated in place: the core's W -= dW would silently do nothing
IMMUTABLE = {
    "jax": "JAX arrays are immutable",
    "jaxlib": "JAX arrays are immutable",
    "dask": "Dask arrays are lazy and immutable (an in-place update is silently lost)",
}


def backend_names() -> tuple[str, ...]:
    """``"auto"`` and every registered name."""
    return ("auto", *REGISTRY)


def available_backends() -> dict[str, str]:
    """Every backend name mapped to ``""`` if usable here, or to the reason it is not."""
    return {name: cls.unavailable() for name, cls in REGISTRY.items()}


@cache
def _make_backend(name: str, device: str | None) -> Backend:
    cls = REGISTRY[name]
    reason = cls.unavailable()
    if reason:
        raise BackendError(f"cannot use the {name} backend: {reason}")
    return cls.create(device)


def _auto(device: str | None) -> Backend:
    reasons = []
    for name in AUTO_PREFERENCE:
        cls = REGISTRY[name]
        reason = cls.gpu_unavailable()
        if not reason:
            be = _make_backend(name, device or cls.auto_device)
            return be.with_note(f"auto: chose {name} on {be.device_name()}")
        reasons.append(reason.split(";")[0])
    be = _make_backend("numpy", None)
    unused = f" (device {device!r} was for a GPU backend and is not used)" if device else ""
    return be.with_note(
        f"auto: chose numpy on CPU because {'; '.join(reasons) or 'no GPU backend exists'}{unused}"
    )


def get_backend(name: str | Backend | None = None, device: str | None = None) -> Backend:
    """Return the backend called ``name``.

    Args:
        name: ``"auto"`` (a GPU backend when one answers, else NumPy), ``"numpy"``, ``"cupy"``,
            ``"torch"`` or ``"array_api_strict"``; an optional ``":device"`` suffix picks the device
            (``"cupy:1"``, ``"torch:cuda"``, ``"array_api_strict:device1"``). ``None`` reads the
            ``DLCORE_BACKEND`` environment variable, defaulting to ``"auto"``. A Backend is returned as is.
        device: the device, instead of the suffix.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        BackendError: the backend cannot work here (the message says why and how to fix it).
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        chosen = os.environ.get(ENV_VAR, "")
        if not chosen:
            return get_backend("auto", device)
        try:
            return get_backend(chosen, device)
        except ValueError as exc:  # BackendError too: say where the name came from
            raise type(exc)(f"${ENV_VAR}={chosen!r}: {exc}") from None
    base, suffix = _split_name(str(name))
    device = device or suffix
    if base in IMMUTABLE:
        raise ValueError(
            f"the {base} backend cannot work: {IMMUTABLE[base]}, and dlcore trains by updating the "
            "parameters in place; use numpy, torch or cupy (convert with numpy.asarray) instead"
        )
    if base not in backend_names():
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(backend_names())}")
    if base == "auto":
        be = _auto(device)
        log.info(be.note)
        return be
    return _make_backend(base, device)


def backend_of(x: Any) -> Backend:
    """The backend an array belongs to (NumPy, CuPy or array_api_strict, on its own device)."""
    module = type(x).__module__.split(".")[0]
    if module == "numpy":
        return get_backend("numpy")
    if module == "cupy":
        return get_backend("cupy", str(x.device.id))
    if module == "array_api_strict":
        return get_backend("array_api_strict", x.device._device)
    if module == "torch":
        return get_backend("torch", str(x.device))
    if module in IMMUTABLE:
        get_backend(module)  # raises, naming why
    raise ValueError(
        f"arrays of type {type(x).__name__} are not supported; use numpy, torch, cupy or array_api_strict"
    )
