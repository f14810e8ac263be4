"""Saving and loading networks: parameters plus everything needed to rebuild the model.

A model file is an ``.npz`` archive (see :mod:`dlcore.backends.storage`): one array per parameter
(``W1``, ``b1``, ...) in the network's dtype, and JSON metadata::

    {"format": "dlcore-model", "format_version": 1, "dlcore_version": "0.1.0",
     "layer_dims": [2, 4, 1], "activations": ["tanh", "sigmoid"], "dtype": "float64",
     "normalization": {"mean": [...], "std": [...]} or null, "info": {...}}

Parameters are stored as host arrays, so a model trained on one backend (a GPU) loads on any other.
"""

from __future__ import annotations

import os
from typing import Any

from dlcore.activations import get_activation
from dlcore.backends import get_backend, storage
from dlcore.data import Normalization

FORMAT = "dlcore-model"
FORMAT_VERSION = 1


def _version() -> str:
    from dlcore import __version__

    return __version__


def network_config(net: Any, normalization: Normalization | None = None, info: dict | None = None) -> dict:
    """The JSON metadata describing ``net`` (everything but the parameter values)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dlcore_version": _version(),
        "layer_dims": list(net.layer_dims),
        "activations": [a.spec for a in net.activations],
        "dtype": net.dtype_name,
        "normalization": None if normalization is None else normalization.to_dict(),
        "info": dict(info or {}),
    }


def save_network(
    net: Any, path: str | os.PathLike, normalization: Normalization | None = None, info: dict | None = None
) -> None:
    """Write ``net`` (parameters and config) to ``path`` atomically; ``info`` is free-form JSON."""
    if normalization is None:
        normalization = getattr(net, "normalization", None)
    storage.save_npz(path, net.parameters_numpy(), network_config(net, normalization, info))


def _check_config(meta: dict | None, path: Any) -> dict:
    if meta is None or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dlcore model file (no dlcore metadata); save one with --out")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path} is corrupt: format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by dlcore {meta.get('dlcore_version', '?')} in model format {version}; "
            f"this dlcore ({_version()}) reads up to format {FORMAT_VERSION}: upgrade dlcore"
        )
    for key, kind in (("layer_dims", list), ("activations", list), ("dtype", str)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"{path} is corrupt: its metadata lacks a valid {key!r}")
    return meta


def load_network(path: str | os.PathLike, backend: Any = None) -> Any:
    """Rebuild the network saved at ``path`` on ``backend`` (any backend, whatever it was trained on).

    The returned network carries ``normalization`` (a :class:`Normalization` or ``None``) and ``info``.

    Raises:
        ValueError: missing, truncated, corrupt, foreign or newer-format file; the message says which.
    """
    from dlcore.model import Network

    backend = get_backend(backend)
    arrays, meta = storage.load_npz_with_meta(path, "model file")
    meta = _check_config(meta, path)
    try:
        activations = [get_activation(a) for a in meta["activations"]]
        net = Network(
            meta["layer_dims"],
            activations=activations,
            init="zeros",
            backend=backend,
            seed=None,
            dtype=meta["dtype"],
        )
        for name, value in arrays.items():
            if str(value.dtype) != meta["dtype"]:
                raise ValueError(f"{name} is stored as {value.dtype}, not {meta['dtype']}")
        net.set_parameters(arrays)
        extra = set(arrays) - set(net.params)
        if extra:
            raise ValueError(f"unexpected arrays {sorted(extra)}")
        norm = meta.get("normalization")
        net.normalization = None if norm is None else Normalization.from_dict(norm)
        if net.normalization is not None and net.normalization.n_x != net.layer_dims[0]:
            raise ValueError("the normalization does not match the input layer")
    except ValueError as exc:
        raise ValueError(f"{path} is corrupt: {exc}") from None
    net.info = dict(meta.get("info") or {})
    return net
