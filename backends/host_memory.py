"""A memory pool for host (CPU) arrays: glibc's malloc told to keep freed blocks for reuse.

A training step allocates and frees the same large arrays every time (Z, A, dA, dW: 8 MiB each for
the wide [784, 1024, 1024, 1] net at m=2048 in float32). By default glibc hands such blocks back to
the kernel when they are freed (blocks above its mmap threshold, or a heap top above
``M_TRIM_THRESHOLD``), so the next step pays a page fault and a zero-fill for every page again: about
10% of the wide net's step on 2 cores. This is the CPU counterpart of CuPy's memory pool:
allocations up to 32 MiB (glibc's largest mmap threshold) come from the heap, and up to
``POOL_BYTES`` of freed heap stays mapped for the next step. The memory is still freed to the
process, only not returned to the kernel: the resident size stays near the peak of the run.

Set ``DLCORE_HOST_POOL=0`` to leave malloc's defaults alone. Other C libraries (macOS, Windows,
musl) are left alone too; :func:`host_pool_status` says which case applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

from dlcore.backends.base import switched_on

ENV_VAR = "DLCORE_HOST_POOL"
POOL_BYTES = 512 << 20  # freed heap kept mapped (M_TRIM_THRESHOLD)
HEAP_MAX_BLOCK = 32 << 20  # blocks up to this size come from the heap (M_MMAP_THRESHOLD; glibc's max)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>

_status: str | None = None


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_host_memory() -> str:
    """Turn the host memory pool on (once per process); returns :func:`host_pool_status`."""
    global _status
    if _status is not None:
        return _status
    if not switched_on(ENV_VAR):
        _status = f"off (${ENV_VAR}=0): malloc's defaults"
        return _status
    libc = _glibc()
    if libc is None:
        _status = f"off: not glibc ({platform.system()} {'/'.join(platform.libc_ver()) or 'unknown libc'})"
        return _status
    ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(HEAP_MAX_BLOCK)) == 1
    ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(POOL_BYTES)) == 1
    _status = (
        f"on: glibc malloc keeps up to {POOL_BYTES >> 20} MiB of freed arrays "
        f"(blocks up to {HEAP_MAX_BLOCK >> 20} MiB) for reuse"
        if ok
        else "off: glibc refused mallopt"
    )
    return _status


def host_pool_status() -> str:
    """Whether the pool is on, and why not; ``"not started"`` before a CPU backend was created."""
    return _status or "not started (no CPU backend created yet)"
