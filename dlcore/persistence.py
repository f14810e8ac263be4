"""Model files: parameters plus the JSON config needed to rebuild the model; :meth:`Network.load`
builds the network from what :func:`read_model` returns.

A model file is an ``.npz`` archive (see :mod:`dlcore.backends.storage`): one array per parameter
(``W1``, ``b1``, ...) in the network's dtype, and JSON metadata::

    {"format": "dlcore-model", "format_version": 1, "dlcore_version": "0.1.0",
     "layer_dims": [2, 4, 1], "activations": ["tanh", "sigmoid"], "dtype": "float64",
     "normalization": {"mean": [...], "std": [...]} or null, "info": {...}}

A regression model may add ``"target_normalization": {"mean": [...], "std": [...]}`` (one entry per
output unit: its predictions are A[L] * std + mean); such a file is format 2, so a dlcore that predates it
refuses the file ("upgrade dlcore") instead of predicting in standardized units. Every other file is
still written as format 1.

``info`` is free-form (the training settings), except ``info["classes"]``: when present, the class
names the labels stood for (``["cat", "dog", "emu"]``: class index k is ``classes[k]``), one per
softmax unit, or two for a sigmoid output. Files without it (all files before it existed) have
integer classes; the format version stays 1.

Parameters are stored as host arrays, so a model trained on one backend (a GPU) loads on any other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from dlcore._version import __version__
from dlcore.activations import get_activation
from dlcore.backends import storage

FORMAT = "dlcore-model"
#: the newest format this dlcore reads and writes (2: with target_normalization; else 1 is written)
FORMAT_VERSION = 2


def model_config(
    layer_dims: Sequence[int],
    activations: Sequence[str],
    dtype: str,
    normalization: dict | None = None,
    info: dict | None = None,
    target_normalization: dict | None = None,
) -> dict:
    """The JSON metadata describing a network (everything but the parameter values)."""
    config = {
        "format": FORMAT,
        "format_version": 1 if target_normalization is None else 2,
        "dlcore_version": __version__,
        "layer_dims": list(layer_dims),
        "activations": list(activations),
        "dtype": dtype,
        "normalization": normalization,
        "info": storage.as_json(dict(info or {}), "info"),
    }
    if target_normalization is not None:
        config["target_normalization"] = target_normalization
    return config


def save_model(path: str | os.PathLike, arrays: dict[str, Any], config: dict) -> None:
    """Write host ``arrays`` and ``config`` to ``path`` atomically, after the checks :func:`read_model`
    makes (a ValueError, and ``path`` untouched, where load would refuse the file)."""
    problem = f"{path} not written"
    _check_shapes(config, arrays, problem)
    _check_finite(arrays, problem)
    storage.save_npz(path, arrays, config)


class NotAModelFile(ValueError):
    """The file holds no dlcore model metadata (another ``.npz``, or not an archive of ours)."""


def _check_config(meta: dict | None, path: Any) -> dict:
    if meta is None or meta.get("format") != FORMAT:
        raise NotAModelFile(f"{path} is not a dlcore model file (no dlcore metadata)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
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


def _check_shapes(config: dict, members: dict[str, Any], problem: str) -> None:
    """Every shape the metadata declares against the arrays actually in the file (their headers only),
    before anything is allocated: a 2 KB file claiming layers of 100,000 units is refused here. Saving
    runs the same checks on what it would write, so that no file is saved that load refuses.
    ``problem`` starts each message ('<path> is corrupt')."""
    dims = config["layer_dims"]
    if len(dims) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in dims):
        raise ValueError(f"{problem}: layer_dims {dims!r} are not at least two positive integers")
    L = len(dims) - 1
    if len(config["activations"]) != L:
        raise ValueError(f"{problem}: {len(config['activations'])} activations for {L} layers")
    for spec in config["activations"]:
        try:
            get_activation(spec)
        except ValueError as exc:
            raise ValueError(
                f"{problem}: {exc} (a model file names its activations: pickle a network with activations "
                "of your own)"
            ) from None
    expected = {}
    for l in range(1, L + 1):
        expected[f"W{l}"] = (dims[l], dims[l - 1])
        expected[f"b{l}"] = (dims[l], 1)
    for name, shape in expected.items():
        if name not in members:
            raise ValueError(f"{problem}: layer_dims {dims} need an array {name}, which is missing")
        if tuple(members[name].shape) != shape:
            raise ValueError(
                f"{problem}: {name} must have shape {shape} for layer_dims {dims}; "
                f"the file holds {tuple(members[name].shape)}"
            )
        if str(members[name].dtype) != config["dtype"]:
            raise ValueError(f"{problem}: {name} is stored as {members[name].dtype}, not {config['dtype']}")
    extra = set(members) - set(expected)
    if extra:
        raise ValueError(f"{problem}: unexpected arrays {sorted(extra)}")
    info = config.get("info")
    if info is not None and not isinstance(info, dict):
        raise ValueError(f"{problem}: info must be a JSON object; got {type(info).__name__}")
    classes = (info or {}).get("classes")
    if classes is not None and config["activations"][-1] == "linear":
        raise ValueError(f"{problem}: info.classes names classes, which a regression (linear) output has not")
    if classes is not None:
        expected_classes = 2 if config["activations"][-1] == "sigmoid" else dims[-1]
        if (
            not isinstance(classes, list)
            or not all(isinstance(c, str) for c in classes)
            or len(set(classes)) != len(classes)
            or len(classes) != expected_classes
        ):
            raise ValueError(
                f"{problem}: info.classes must be {expected_classes} distinct names (strings); "
                f"got {classes!r}"
            )
    records = (("normalization", "input", dims[0]), ("target_normalization", "output", dims[-1]))
    for record, layer, n in records:
        norm = config.get(record)
        if isinstance(norm, dict):
            for key in ("mean", "std"):
                if not isinstance(norm.get(key), list) or len(norm[key]) != n:
                    raise ValueError(
                        f"{problem}: the {record} does not match the {layer} layer ({key} needs {n} entries)"
                    )
                if not all(type(v) is float or type(v) is int for v in norm[key]):  # not "1.5", not true
                    raise ValueError(f"{problem}: the {record}'s {key} holds entries that are not numbers")
    if config.get("target_normalization") is not None and config["activations"][-1] != "linear":
        raise ValueError(f"{problem}: only a regression (linear) output has a target_normalization")


def read_model(path: str | os.PathLike) -> tuple[dict, dict[str, Any]]:
    """``(config, host arrays)`` of the model file at ``path``.

    The metadata is read first (bounded in size) and every declared shape is checked against the arrays'
    headers before any array is read; arrays holding NaN or inf are refused.

    Raises:
        ValueError: missing, truncated, corrupt, foreign or newer-format file, shapes that do not match the
            metadata, or non-finite weights; the message says which.
    """
    checked: dict = {}

    def check(meta: dict | None, members: dict[str, Any]) -> None:
        checked.update(_check_config(meta, path))
        _check_shapes(checked, members, f"{path} is corrupt")

    arrays, _ = storage.load_npz_with_meta(path, "model file", check)
    _check_finite(arrays, f"{path} is corrupt")
    return checked, arrays


def _check_finite(arrays: dict[str, Any], problem: str) -> None:
    """No weight NaN or inf (a file holding one loads a network that predicts NaN); ``problem`` as for
    :func:`_check_shapes`."""
    for name, value in arrays.items():
        if not storage.all_finite(value):
            raise ValueError(f"{problem}: {name} holds NaN or inf weights")
