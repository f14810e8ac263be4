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
