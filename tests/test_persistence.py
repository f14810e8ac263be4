"""Model files: round trips across backends, metadata, atomic writes, and refusing bad files."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
from dlcore.backends import get_backend, storage

from dlcore import Network
from dlcore.data import Normalization
from dlcore.datasets import planar
from dlcore.persistence import FORMAT_VERSION
from tests.conftest import to_host

TARGETS = ["numpy", "array_api_strict", "array_api_strict:device1"]


def _trained(backend, dtype="float64", hidden="tanh"):
    X, Y = planar(backend, m=60, dtype=dtype)
    net = Network([2, 5, 3, 1], hidden, init="xavier", backend=backend, seed=2, dtype=dtype)
    net.fit(X, Y, learning_rate=0.5, iterations=20)
    return net, X


@pytest.mark.parametrize("target", TARGETS)
def test_a_model_saved_on_one_backend_predicts_the_same_on_another(backend, dtype, tmp_path, target):
    net, X = _trained(backend, dtype, hidden="leaky_relu:0.2")
    norm = Normalization.fit(X, backend)
    before = to_host(backend, net.predict_proba(norm.apply(X, backend)))
    net.save(tmp_path / "m.npz", normalization=norm, info={"note": "test"})
    target_be = get_backend(target)
    loaded = Network.load(tmp_path / "m.npz", backend=target)
    assert loaded.backend.name == target_be.name and loaded.params["W1"].device == target_be.device
    assert loaded.layer_dims == [2, 5, 3, 1] and loaded.dtype_name == dtype
    assert [a.spec for a in loaded.activations] == ["leaky_relu:0.2", "leaky_relu:0.2", "sigmoid"]
    assert loaded.normalization == norm and loaded.info == {"note": "test"}
    for k, v in net.parameters_numpy().items():
        np.testing.assert_array_equal(loaded.parameters_numpy()[k], v)  # bit-exact weights
    # the loaded network applies its normalization itself: raw X in
    after = to_host(target_be, loaded.predict_proba(target_be.asarray(to_host(backend, X))))
    np.testing.assert_allclose(after, before, rtol=1e-12 if dtype == "float64" else 1e-5, atol=1e-7)
    np.testing.assert_array_equal(after > 0.5, before > 0.5)


def test_the_file_is_a_plain_npz_with_json_metadata(tmp_path):
    net, _ = _trained(get_backend("numpy"))
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["W1", "W2", "W3", "__meta__", "b1", "b2", "b3"]
        meta = json.loads(f["__meta__"].tobytes())
    # format 1: a dlcore that predates format 2 (target_normalization) still reads it
    assert meta["format"] == "dlcore-model" and meta["format_version"] == 1 < FORMAT_VERSION
    assert meta["layer_dims"] == [2, 5, 3, 1] and meta["dtype"] == "float64"
    assert meta["normalization"] is None and meta["dlcore_version"]


def test_saving_is_atomic(tmp_path, monkeypatch):
    net, _ = _trained(get_backend("numpy"))
    path = tmp_path / "m.npz"
    path.write_bytes(b"previous model")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == b"previous model"  # untouched
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    monkeypatch.undo()
    net.save(path)
    assert Network.load(path).layer_dims == net.layer_dims
    assert os.listdir(tmp_path) == ["m.npz"]


def test_saving_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(tmp_path):
    """A shared models/latest.npz -> runs/7/model.npz: os.replace onto the link made it a plain file."""
    net, _ = _trained(get_backend("numpy"))
    (tmp_path / "runs").mkdir()
    target, link = tmp_path / "runs" / "model.npz", tmp_path / "latest.npz"
    target.write_bytes(b"previous model")
    link.symlink_to(target)
    net.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert Network.load(target).layer_dims == net.layer_dims
    assert sorted(os.listdir(tmp_path / "runs")) == ["model.npz"]


def test_a_model_through_a_pipe_is_named_as_such(tmp_path):
    """dlcore predict --model <(cat m.npz): a whole, valid model was called "not a zip archive, or
    truncated" (an .npz is read by seeking, which a pipe cannot)."""
    if not os.path.isdir("/dev/fd"):
        pytest.skip("no /dev/fd on this system")
    Network([2, 3, 1], backend="numpy").save(tmp_path / "m.npz")
    read, write = os.pipe()
    try:
        os.write(write, (tmp_path / "m.npz").read_bytes())  # a small model: within the pipe's buffer
        os.close(write)
        with pytest.raises(
            ValueError, match=rf"^/dev/fd/{read} is a pipe or a stream, .*give the file itself$"
        ):
            Network.load(f"/dev/fd/{read}")
    finally:
        os.close(read)


def test_a_loaded_model_saved_again_keeps_its_info(tmp_path):
    """save() writes the network's own info by default: class names survived a load only once (a copy of
    a model trained on names predicted 0/1)."""
    net, _ = _trained(get_backend("numpy"))
    net.save(tmp_path / "a.npz", info={"classes": ["cat", "dog"], "note": "x"})
    Network.load(tmp_path / "a.npz").save(tmp_path / "b.npz")
    assert Network.load(tmp_path / "b.npz").info == {"classes": ["cat", "dog"], "note": "x"}


def test_info_takes_what_json_holds_once_converted_and_names_what_it_cannot(tmp_path):
    """np.int64(3) was json's TypeError (no ValueError, no key), and class names as a tuple (or a NumPy
    array) were refused as "must be 2 distinct names (strings); got ('cat', 'dog')"."""
    net, _ = _trained(get_backend("numpy"))
    info = {"classes": ("cat", "dog"), "epochs": np.int64(3), "rate": np.float32(0.5), "w": np.arange(2)}
    net.save(tmp_path / "a.npz", info=info)
    want = {"classes": ["cat", "dog"], "epochs": 3, "rate": 0.5, "w": [0, 1]}
    assert Network.load(tmp_path / "a.npz").info == want
    net.save(tmp_path / "b.npz", info={"classes": np.array(["cat", "dog"])})
    assert Network.load(tmp_path / "b.npz").info == {"classes": ["cat", "dog"]}
    fix = r"; use numbers, strings, True/False/None and lists or dicts of them$"
    with pytest.raises(ValueError, match=r"^info holds \{1, 2\} \(set\), which JSON cannot store" + fix):
        net.save(tmp_path / "c.npz", info={"s": {1, 2}})
    # a key that is no string was written as one ("1"): info[1] was a KeyError once loaded
    for bad, key in (({1: "a", "b": 2}, "1"), ({"x": [{2: 3}]}, "2")):
        with pytest.raises(
            ValueError, match=rf"^info has the key {key}; JSON's keys are strings: use '{key}'$"
        ):
            net.save(tmp_path / "c.npz", info=bad)
    # any backend's arrays and scalars, not NumPy's only
    import array_api_strict as xs

    net.save(tmp_path / "d.npz", info={"b": xs.asarray([1, 2]), "c": xs.asarray(0.5)})
    assert Network.load(tmp_path / "d.npz").info == {"b": [1, 2], "c": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "d.npz"]


@pytest.mark.parametrize("target", TARGETS)
def test_a_regression_model_keeps_its_target_standardization(backend, dtype, tmp_path, target):
    """Predictions in Y's units survive a save and a load on another backend; the file says format 2,
    so a dlcore that predates target standardization refuses it rather than predict in standardized
    units."""
    rng = np.random.default_rng(4)
    Xh = rng.standard_normal((3, 40))
    Yh = np.stack([500.0 + 80.0 * Xh[0], -3.0 + 0.01 * Xh[1]])  # (2, m): two targets of different scales
    X, Y = backend.asarray(Xh, dtype=dtype), backend.asarray(Yh, dtype=dtype)
    net = Network([3, 5, 2], "tanh", "linear", backend=backend, seed=2, dtype=dtype)
    net.target_normalization = Normalization.fit(Y, backend, rows="target")
    net.fit(X, Y, learning_rate=0.1, iterations=200)
    before = to_host(backend, net.predict(X))
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        meta = json.loads(f["__meta__"].tobytes())
    assert meta["format_version"] == 2 and meta["target_normalization"] == net.target_normalization.to_dict()
    target_be = get_backend(target)
    loaded = Network.load(tmp_path / "m.npz", backend=target)
    assert loaded.target_normalization == net.target_normalization
    after = to_host(target_be, loaded.predict(target_be.asarray(Xh, dtype=dtype)))
    np.testing.assert_allclose(after, before, rtol=1e-12 if dtype == "float64" else 1e-5)
    # in Y's units (standardized predictions would be near 0 and 1 apart)
    assert np.all(np.abs(after.mean(axis=1) - Yh.mean(axis=1)) < 0.2 * Yh.std(axis=1))


def test_save_into_a_missing_directory(tmp_path):
    net, _ = _trained(get_backend("numpy"))
    with pytest.raises(ValueError, match=r"the directory .*nowhere does not exist"):
        net.save(tmp_path / "nowhere" / "m.npz")


def test_training_a_loaded_model_is_reproducible(tmp_path):
    """Loaded networks had no seed: two fits of the same file with shuffles and dropout differed."""
    net, X = _trained(get_backend("numpy"))
    net.save(tmp_path / "m.npz")
    Y = net.predict(X)
    fits = []
    for _ in range(2):
        loaded = Network.load(tmp_path / "m.npz")
        loaded.fit(X, Y, learning_rate=0.5, epochs=2, batch_size=16, keep_prob=0.7)
        fits.append(loaded.parameters_numpy())
    for name in fits[0]:
        np.testing.assert_array_equal(fits[0][name], fits[1][name], err_msg=name)


def _scaled_tanh(Z):
    return 1.7159 * np.tanh(2 * Z / 3)


def _scaled_tanh_derivative(Z, A):
    return 1.7159 * (2 / 3) * (1 - (A / 1.7159) ** 2)


def test_a_model_that_load_would_refuse_is_not_written(backend, tmp_path):
    """A network with an activation of one's own, or with NaN weights, was saved, and load then called
    the file corrupt ("unknown activation 'scaled_tanh'", "W1 holds NaN"); a file already there stays."""
    from dlcore.activations import Activation

    path = tmp_path / "m.npz"
    path.write_bytes(b"kept")
    own = Activation("scaled_tanh", _scaled_tanh, _scaled_tanh_derivative)
    net = Network([2, 3, 1], own, backend="numpy", seed=0)
    with pytest.raises(
        ValueError,
        match=rf"^{path} not written: unknown activation 'scaled_tanh'; .* \(a model file names its "
        r"activations: pickle a network with activations of your own\)$",
    ):
        net.save(path)
    net = Network([2, 3, 1], "leaky_relu:0.2", backend=backend, seed=0)
    params = net.parameters_numpy()
    params["W1"][0, 1] = np.nan
    net.set_parameters(params)
    with pytest.raises(ValueError, match=rf"^{path} not written: W1 holds NaN or inf weights"):
        net.save(path)
    assert path.read_bytes() == b"kept" and os.listdir(tmp_path) == ["m.npz"]
    params["W1"][0, 1] = 0.5
    net.set_parameters(params)
    net.save(path)  # a built-in leaky ReLU with its slope: saved, and loads
    assert Network.load(path).activations[0].spec == "leaky_relu:0.2"


def _model_bytes(tmp_path) -> bytes:
    net, _ = _trained(get_backend("numpy"))
    net.save(tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


def _as_float32(tmp_path) -> dict:
    """_meta_file's changes for a float32 model (its arrays written in float32)."""
    return {"dtype": "float32", "arrays_dtype": np.float32}


def _meta_file(tmp_path, arrays_dtype=np.float64, **changes):
    net, _ = _trained(get_backend("numpy"))
    arrays = {k: v.astype(arrays_dtype) for k, v in net.parameters_numpy().items()}
    meta = {"format": "dlcore-model", "format_version": 1, "layer_dims": [2, 5, 3, 1], "dtype": "float64"}
    meta["activations"] = ["tanh", "tanh", "sigmoid"]
    meta.update(changes)
    storage.save_npz(tmp_path / "m.npz", arrays, meta)


def _raw_meta_file(tmp_path, text: str) -> None:
    net, _ = _trained(get_backend("numpy"))
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    np.savez(tmp_path / "m.npz", **net.parameters_numpy(), __meta__=raw)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, r"no such model file: .*m\.npz"),
        (lambda p: (p / "m.npz").write_text("hello"), r"m\.npz is not a model file in \.npz format"),
        (lambda p: np.savez(p / "m.npz", X=np.ones(3)), r"m\.npz is not a dlcore model file"),
        (lambda p: (p / "m.npz").write_bytes(_model_bytes(p)[:-100]), r"not a model file .*truncated"),
        (lambda p: (p / "m.npz").write_bytes(_model_bytes(p)[:200]), r"not a model file .*truncated"),
        (
            lambda p: _meta_file(p, format_version=99),
            r"model format 99; this dlcore .* reads up to format 2: upgrade",
        ),
        (lambda p: _meta_file(p, format="other"), r"is not a dlcore model file"),
        (lambda p: _meta_file(p, layer_dims=[2, 4, 3, 1]), r"is corrupt: W1 must have shape \(4, 2\)"),
        (lambda p: _meta_file(p, dtype="float32"), r"is corrupt: .* stored as float64, not float32"),
        (
            lambda p: _meta_file(p, activations=["tanh", "swish", "sigmoid"]),
            r"is corrupt: unknown activation",
        ),
        (lambda p: _meta_file(p, normalization={"mean": [0], "std": [1]}), r"normalization does not match"),
        (
            lambda p: _meta_file(
                p, activations=["tanh", "tanh", "linear"], target_normalization={"mean": [0]}
            ),
            r"is corrupt: the target_normalization does not match the output layer \(std needs 1 entries\)",
        ),
        (
            lambda p: _meta_file(p, target_normalization={"mean": [0.0], "std": [2.0]}),
            r"is corrupt: only a regression \(linear\) output has a target_normalization",
        ),
        (
            lambda p: _meta_file(
                p, activations=["tanh", "tanh", "linear"], target_normalization={"mean": [0.0], "std": [-1.0]}
            ),
            r"is corrupt: bad normalization record: each std must be finite and > 0",
        ),
        (
            lambda p: _meta_file(p, **_as_float32(p), normalization={"mean": [1e39, 0.0], "std": [1.0, 1.0]}),
            r"is corrupt: the normalization holds values float32 cannot represent",
        ),
        (
            lambda p: _meta_file(
                p,
                **_as_float32(p),
                activations=["tanh", "tanh", "linear"],
                target_normalization={"mean": [0.0], "std": [1e-40]},
            ),
            r"is corrupt: the target normalization holds values float32 cannot represent",
        ),
        (lambda p: _meta_file(p, layer_dims="2,5"), r"is corrupt: its metadata lacks a valid 'layer_dims'"),
        (lambda p: _meta_file(p, info=[1, 2]), r"m\.npz is corrupt: info must be a JSON object; got list"),
        (lambda p: _meta_file(p, info="abc"), r"m\.npz is corrupt: info must be a JSON object; got str"),
        # found by a review: each of these loaded, or gave a traceback or Python's own advice
        (lambda p: _meta_file(p, format_version=True), r"is corrupt: format_version True is not a positive"),
        (
            lambda p: _meta_file(p, normalization={"mean": ["1.5", 0.0], "std": [1.0, 1.0]}),
            r"is corrupt: the normalization's mean holds entries that are not numbers",
        ),
        (
            lambda p: _meta_file(p, normalization={"mean": [0.0, 0.0], "std": [True, 1.0]}),
            r"is corrupt: the normalization's std holds entries that are not numbers",
        ),
        (
            lambda p: _meta_file(p, normalization={"mean": [10**400, 0.0], "std": [1.0, 1.0]}),
            r"is corrupt: bad normalization record \(OverflowError",
        ),
        (
            lambda p: _raw_meta_file(p, '{"format": "dlcore-model", "n": ' + "1" * 5000 + "}"),
            r"m\.npz is corrupt: its metadata is not valid JSON \(Exceeds the limit",
        ),
        (
            lambda p: _meta_file(p, activations=["tanh", "tanh", "linear"], info={"classes": ["a"]}),
            r"is corrupt: info\.classes names classes, which a regression \(linear\) output has not",
        ),
    ],
)
def test_bad_model_files_are_refused_clearly(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(ValueError, match=message):
        Network.load(tmp_path / "m.npz")


def test_corrupt_bytes_inside_the_archive_are_detected(tmp_path):
    data = bytearray(_model_bytes(tmp_path))
    with zipfile.ZipFile(tmp_path / "good.npz") as z:
        info = z.getinfo("W2.npy")
    middle = info.header_offset + 30 + len(info.filename) + info.file_size - 4  # inside W2's bytes
    data[middle] ^= 0xFF
    (tmp_path / "m.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"m\.npz is corrupt or truncated .*CRC"):
        Network.load(tmp_path / "m.npz")
