"""Backend shim: hands the core an array namespace (``xp``), its ops, and the device-specific helpers.

The vectorized core in :mod:`dlcore` only ever touches ``backend.xp``, ``backend.ops`` and the few
helpers on the :class:`Backend` object (randomness, host transfer, synchronisation). Everything that
depends on *which* array library is underneath lives here, one small class per library.

>>> from dlcore.backends import get_backend
>>> be = get_backend("numpy")
>>> be.name, be.is_gpu
('numpy', False)
"""

from dlcore.backends.base import RNG, Backend, BackendError, HostRNG, to_numpy
from dlcore.backends.cupy_backend import cupy_status
from dlcore.backends.registry import (
    REGISTRY,
    available_backends,
    backend_names,
    backend_of,
    get_backend,
    register_backend,
)

BACKEND_NAMES = backend_names()

__all__ = [
    "BACKEND_NAMES",
    "REGISTRY",
    "Backend",
    "BackendError",
    "HostRNG",
    "RNG",
    "available_backends",
    "backend_names",
    "backend_of",
    "cupy_status",
    "get_backend",
    "register_backend",
    "to_numpy",
]
