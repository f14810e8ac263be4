"""``namespace(x)``: the Array-API namespace of an array, memoized on its type.

``array_api_compat.array_namespace`` inspects its argument on every call (a few microseconds); the
small networks of the course make tens of array operations per training step, so the hot path looks
the namespace up once per array type instead.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from array_api_compat import array_namespace

_BY_TYPE: dict[type, ModuleType] = {}


def namespace(x: Any) -> ModuleType:
    """``array_namespace(x)`` for one array, cached by ``type(x)``."""
    xp = _BY_TYPE.get(type(x))
    if xp is None:
        xp = _BY_TYPE[type(x)] = array_namespace(x)
    return xp


def check_together(a: Any, b: Any, a_name: str, b_name: str) -> None:
    """A ValueError unless ``a`` and ``b`` can meet in one operation: arrays of one library (a NumPy array
    and a torch tensor are not: their dtypes differ too, float64 and torch.float64, which would be the
    wrong thing to fix) on one device (each library refuses two in words of its own, or not at all)."""
    if type(a) is not type(b) and namespace(a) is not namespace(b):  # an ndarray and a subclass are one
        raise ValueError(
            f"{a_name} and {b_name} are arrays of two libraries ({array_kind(a)}, {array_kind(b)}): put both "
            "on one backend (backend.asarray(x) moves x there)"
        )
    a_device, b_device = getattr(a, "device", None), getattr(b, "device", None)  # NumPy < 2: none, cpu
    if a_device != b_device:
        raise ValueError(
            f"{a_name} is on {a_device} but {b_name} on {b_device}: put both on one device "
            "(backend.asarray(x) moves x to the backend's)"
        )


def array_kind(x: Any) -> str:
    """An array's library and type, as messages name it: ``numpy.ndarray``, ``torch.Tensor``."""
    return f"{type(x).__module__.partition('.')[0]}.{type(x).__name__}"


def check_dense(x: Any, name: str) -> None:
    """A ValueError when ``x`` is a sparse tensor (torch's COO or CSR layouts): no backend computes with
    them here, and each library fails in words of its own."""
    layout = getattr(x, "layout", None)  # a torch tensor's: strided, or one of the sparse layouts
    if layout is not None and str(layout) != "torch.strided":
        raise ValueError(f"{name} is a sparse tensor ({layout}); pass a dense one ({name}.to_dense())")
