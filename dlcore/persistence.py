"""Model files: parameters plus the JSON config needed to rebuild the model; :meth:`Network.load`
builds the network from what :func:`read_model` returns.

A model file is an ``.npz`` archive (see :mod:`dlcore.backends.storage`): one array per parameter
(``W1``, ``b1``, ...) in the network's dtype, and JSON metadata::

    {"format": "dlcore-model", "format_version": 1, "dlcore_version": "0.1.0",
     "layer_dims": [2, 4, 1], "activations": ["tanh", "sigmoid"], "dtype": "float64",
     "normalization": {"mean": [...], "std": [...]} or null, "info": {...}}

Parameters are stored as host arrays, so a model trained on one backend (a GPU) loads on any other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from dlcore._version import __version__
from dlcore.backends import storage

FORMAT = "dlcore-model"
FORMAT_VERSION = 1


def model_config(
    layer_dims: Sequence[int],
    activations: Sequence[str],
    dtype: str,
    normalization: dict | None = None,
    info: dict | None = None,
) -> dict:
    """The JSON metadata describing a network (everything but the parameter values)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dlcore_version": __version__,
        "layer_dims": list(layer_dims),
        "activations": list(activations),
        "dtype": dtype,
        "normalization": normalization,
        "info": dict(info or {}),
    }


def save_model(path: str | os.PathLike, arrays: dict[str, Any], config: dict) -> None:
    """Write host ``arrays`` and ``config`` to ``path`` atomically."""
    storage.save_npz(path, arrays, config)


def _check_config(meta: dict | None, path: Any) -> dict:
    if meta is None or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dlcore model file (no dlcore metadata); save one with --out")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path} is corrupt: format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by dlcore {meta.get('dlcore_version', '?')} in model format {version}; "
            f"this dlcore ({__version__}) reads up to format {FORMAT_VERSION}: upgrade dlcore"
        )
    for key, kind in (("layer_dims", list), ("activations", list), ("dtype", str)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"{path} is corrupt: its metadata lacks a valid {key!r}")
    return meta


def read_model(path: str | os.PathLike) -> tuple[dict, dict[str, Any]]:
    """``(config, host arrays)`` of the model file at ``path``.

    Raises:
        ValueError: missing, truncated, corrupt, foreign or newer-format file; the message says which.
    """
    arrays, meta = storage.load_npz_with_meta(path, "model file")
    config = _check_config(meta, path)
    for name, value in arrays.items():
        if str(value.dtype) != config["dtype"]:
            raise ValueError(f"{path} is corrupt: {name} is stored as {value.dtype}, not {config['dtype']}")
    return config, arrays
