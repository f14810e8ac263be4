"""``array_api_strict``: the Array API standard and nothing else, on its CPU device or its simulated
second device (``array_api_strict:device1``), which catches arrays created on the wrong device.

It is the core's correctness referee: it runs the default :class:`dlcore.ops.Ops`, never a fused path.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from dlcore.backends.base import Backend
from dlcore.backends.host_memory import keep_freed_host_memory

FIX = "array-api-strict is not installed; pip install array-api-strict (it ships in dlcore[dev])"


class ArrayApiStrictBackend(Backend):
    name = "array_api_strict"
    low_precision = ()  # the standard has no float16 or bfloat16: no mixed precision

    @classmethod
    def unavailable(cls) -> str:
        try:
            importlib.import_module("array_api_strict")
        except ImportError:
            return FIX
        return ""

    @classmethod
    def create(cls, device: str | None) -> ArrayApiStrictBackend:
        import array_api_strict as xp

        keep_freed_host_memory()
        try:
            dev = xp.Device(device) if device else xp.Device()
        except ValueError:  # e.g. array_api_strict:gpu
            raise ValueError(
                f"array_api_strict has the devices CPU_DEVICE, device1 and device2; got {device!r}"
            ) from None
        return cls(xp, dev)

    def owns(self, x: Any) -> bool:
        return type(x).__module__.split(".")[0] == "array_api_strict" and x.device == self.device

    def from_host(self, host: np.ndarray) -> Any:
        """As the base's; float16 (which the standard lacks, and NumPy and PyTorch hold) widens exactly to
        float32 first, so float16 data trains here as on the other backends."""
        if host.dtype == np.float16:
            host = host.astype(np.float32)
        return super().from_host(host)

    def quiet_floating_point(self):
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    def device_spec(self) -> str | None:
        return self.device._device  # array_api_strict.Device("device1") -> "device1"

    def device_name(self) -> str:
        return f"CPU (array_api_strict {self.device!r})"
