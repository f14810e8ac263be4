"""Backend shim: hands out an array namespace (``xp``) plus the device-specific helpers.

The vectorized core in :mod:`dlcore` only ever touches ``backend.xp`` and the few helpers on the
:class:`Backend` object (randomness, host transfer, synchronisation). Everything that depends on
*which* array library is underneath lives here.

>>> from dlcore.backends import get_backend
>>> be = get_backend("numpy")
>>> be.name, be.is_gpu
('numpy', False)
"""

from dlcore.backends._core import (
    BACKEND_NAMES,
    Backend,
    BackendError,
    HostRNG,
    available_backends,
    backend_of,
    cupy_status,
    get_backend,
    to_numpy,
)

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendError",
    "HostRNG",
    "available_backends",
    "backend_of",
    "cupy_status",
    "get_backend",
    "to_numpy",
]
