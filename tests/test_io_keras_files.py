"""fastlstm.io.read_keras_weights: LSTM weights from Keras files, without Keras.

The golden files in tests/golden/keras were written by Keras 3.15 and tf_keras 2.21.
Damaged and unusual files are made here by editing copies of them with h5py (so the
layout stays Keras' own) or by writing small files in the same layout.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import GOLDEN
from fastlstm.io import (
    KerasBidirectionalWeights,
    KerasFileError,
    KerasLSTMWeights,
    UnsupportedLayerError,
    read_keras_weights,
)
from fastlstm.io.keras_h5 import GATE_ORDER
from mutations import apply_mutations, byte_mutations

KERAS = GOLDEN / "keras"
CORPUS = Path(__file__).parent / "fuzz_corpus" / "keras"
KERAS_FILES = sorted(p.name for p in KERAS.iterdir() if p.suffix in (".keras", ".h5"))


@pytest.fixture
def h5py():
    return pytest.importorskip("h5py")


def expected_for(name: str):
    stem = name.replace(".weights.h5", "").replace(".keras", "").replace(".h5", "")
    return np.load(KERAS / f"{stem}_expected.npz", allow_pickle=False)


def assert_same(array, want):
    assert array.dtype == want.dtype and array.shape == want.shape
    assert array.tobytes() == want.tobytes()
    assert array.flags.c_contiguous and array.flags.writeable and array.dtype.isnative


# ----------------------------------------------------------------------- the golden files


@pytest.mark.parametrize("name", ["stacked.keras", "stacked.weights.h5", "legacy_stacked.h5"])
def test_golden_stacked(h5py, name):
    want = expected_for(name)
    model = read_keras_weights(KERAS / name)
    assert [layer.name for layer in model.layers] == [str(n) for n in want["layer_names"]]
    for k, layer in enumerate(model.layers):
        assert isinstance(layer, KerasLSTMWeights)
        assert_same(layer.kernel, want[f"layer{k}_kernel"])
        assert_same(layer.recurrent_kernel, want[f"layer{k}_recurrent_kernel"])
        assert_same(layer.bias, want[f"layer{k}_bias"])
        assert layer.units == int(want[f"layer{k}_units"])
        assert layer.input_size == layer.kernel.shape[0]
        if name.endswith(".weights.h5"):
            assert layer.config is None
        else:
            assert (layer.config.activation, layer.config.recurrent_activation) == ("tanh", "sigmoid")
            assert layer.config.use_bias and layer.config.unit_forget_bias and layer.config.return_sequences
            assert not (layer.config.go_backwards or layer.config.return_state or layer.config.stateful)
            assert not layer.config.time_major
            assert layer.config.raw["units"] == layer.units


@pytest.mark.parametrize("name", ["bidi.keras", "bidi.weights.h5", "legacy_bidi.h5"])
def test_golden_bidirectional(h5py, name):
    want = expected_for(name)
    model = read_keras_weights(KERAS / name)
    (layer,) = model.layers
    assert isinstance(layer, KerasBidirectionalWeights)
    assert layer.name == "bidirectional"
    assert (layer.forward.name, layer.backward.name) == ("forward_lstm", "backward_lstm")
    for side in ("forward", "backward"):
        weights = getattr(layer, side)
        for field in ("kernel", "recurrent_kernel", "bias"):
            assert_same(getattr(weights, field), want[f"{side}_{field}"])
    if name.endswith(".weights.h5"):
        assert layer.config is None and layer.forward.config is None
    else:
        assert layer.config.merge_mode == str(want["merge_mode"]) == "concat"
        assert layer.forward.config.go_backwards is False
        assert layer.backward.config.go_backwards is True


@pytest.mark.parametrize(
    "name, file_format, version",
    [
        ("stacked.keras", "keras", "3.15.1"),
        ("bidi.weights.h5", "weights_h5", None),
        ("legacy_bidi.h5", "legacy_h5", "2.21.0"),
        ("hard_sigmoid.h5", "legacy_h5", "3.15.1"),
        ("keras220_weights.h5", "legacy_weights_h5", "2.2.0"),
    ],
)
def test_format_and_version(h5py, name, file_format, version):
    model = read_keras_weights(str(KERAS / name))
    assert (model.file_format, model.keras_version, model.path) == (file_format, version, str(KERAS / name))


def test_gate_order_is_keras_order():
    assert ",".join(GATE_ORDER) == str(expected_for("stacked.keras")["gate_order"]) == "i,f,c,o"


def test_format_is_recognised_by_content_not_name(h5py, tmp_path):
    shutil.copy(KERAS / "stacked.keras", tmp_path / "model.bin")
    shutil.copy(KERAS / "legacy_bidi.h5", tmp_path / "model.keras")
    assert read_keras_weights(tmp_path / "model.bin").file_format == "keras"
    assert read_keras_weights(tmp_path / "model.keras").file_format == "legacy_h5"


# -------------------------------------------------------------------- file-making helpers


def zip_parts(name: str) -> tuple[dict, bytes]:
    with zipfile.ZipFile(KERAS / name) as archive:
        return json.loads(archive.read("config.json")), archive.read("model.weights.h5")


def write_zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data if isinstance(data, bytes) else json.dumps(data))
    return path


def keras_file(tmp_path, config=None, weights=None, base="stacked.keras", metadata=None) -> Path:
    """A .keras zip: the golden ``base`` with its config and/or weights replaced."""
    golden_config, golden_weights = zip_parts(base)
    members = {
        "metadata.json": metadata or {"keras_version": "3.15.1"},
        "config.json": golden_config if config is None else config,
        "model.weights.h5": golden_weights if weights is None else weights,
    }
    return write_zip(tmp_path / "model.keras", members)


def edited_h5(h5py, tmp_path: Path, source: Path | bytes, edit) -> Path:
    """A copy of an HDF5 file (path or bytes) changed in place by ``edit(root)``."""
    path = tmp_path / "edited.h5"
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        shutil.copy(source, path)
    with h5py.File(path, "r+") as root:
        edit(root)
    return path


def keras3_weights(h5py, path: Path, layers) -> Path:
    """A Keras 3 .weights.h5 with ``layers``: (group name, layer name, arrays), written in order."""
    with h5py.File(path, "w") as root:
        root.create_group("vars").attrs["name"] = "sequential"
        for group_name, layer_name, arrays in layers:
            group = root.create_group(f"layers/{group_name}")
            group.create_group("vars").attrs["name"] = layer_name
            variables = group.create_group("cell/vars")
            variables.attrs["name"] = "lstm_cell"
            for i, array in enumerate(arrays):
                variables.create_dataset(str(i), data=array)
    return path


def lstm_arrays(input_size, units, dtype=np.float32, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1, 1, (input_size, 4 * units)), rng.uniform(-1, 1, (units, 4 * units))]
    if bias:
        arrays.append(rng.uniform(-1, 1, 4 * units))
    return [a.astype(dtype) for a in arrays]


def stacked_config(layers: list) -> dict:
    config, _ = zip_parts("stacked.keras")
    config["config"]["layers"] = config["config"]["layers"][:1] + layers
    return config


def lstm_config(name: str, units: int, **options) -> dict:
    config, _ = zip_parts("stacked.keras")
    layer = json.loads(json.dumps(config["config"]["layers"][1]))
    layer["config"].update(name=name, units=units, **options)
    return layer


# ------------------------------------------------- legacy weights-only .h5 (model.save_weights)


def legacy_weights_file(h5py, path: Path, layers, version="2.2.0") -> Path:
    """A Keras 2 weights-only .h5 in Keras 2.2.0's layout; ``layers``: (name, {weight name: array})."""
    with h5py.File(path, "w") as root:
        if version is not None:
            root.attrs.create("keras_version", version.encode(), dtype=h5py.string_dtype("ascii"))
        root.attrs.create("backend", b"tensorflow", dtype=h5py.string_dtype("ascii"))
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        for name, weights in layers:
            group = root.create_group(name)
            group.attrs["weight_names"] = np.array([w.encode() for w in weights]) if weights else np.zeros(0)
            for weight_name, array in weights.items():
                group[weight_name] = array
    return path


def lstm_named(layer_name, input_size, units, scope=None, seed=0, bias=True):
    prefix = f"{layer_name}/{scope}" if scope else layer_name
    arrays = lstm_arrays(input_size, units, bias=bias, seed=seed)
    return dict(zip([f"{prefix}/{n}:0" for n in ("kernel", "recurrent_kernel", "bias")], arrays))


@pytest.mark.parametrize(
    "name, version, names",
    [
        ("keras220_weights.h5", "2.2.0", ["lstm_1", "lstm_2"]),
        ("legacy_weights_stacked.h5", "2.21.0", ["lstm", "lstm_1"]),
    ],
)
def test_golden_legacy_weights_only_stacked(h5py, name, version, names):
    want = expected_for(name)
    model = read_keras_weights(KERAS / name)
    assert (model.file_format, model.keras_version) == ("legacy_weights_h5", version)
    assert [layer.name for layer in model.layers] == names == [str(n) for n in want["layer_names"]]
    for k, layer in enumerate(model.layers):
        assert isinstance(layer, KerasLSTMWeights) and layer.config is None
        assert_same(layer.kernel, want[f"layer{k}_kernel"])
        assert_same(layer.recurrent_kernel, want[f"layer{k}_recurrent_kernel"])
        assert_same(layer.bias, want[f"layer{k}_bias"])


def test_golden_legacy_weights_only_bidirectional(h5py):
    want = expected_for("legacy_weights_bidi.h5")
    model = read_keras_weights(KERAS / "legacy_weights_bidi.h5")
    (layer,) = model.layers
    assert isinstance(layer, KerasBidirectionalWeights) and layer.config is None
    assert (layer.name, layer.forward.name, layer.backward.name) == (
        "bidirectional",
        "forward_lstm",
        "backward_lstm",
    )
    for side in ("forward", "backward"):
        for field in ("kernel", "recurrent_kernel", "bias"):
            assert_same(getattr(getattr(layer, side), field), want[f"{side}_{field}"])


def test_legacy_weights_only_layouts(h5py, tmp_path):
    """Keras 2.2 scopes (bidirectional_1/forward_lstm_1/kernel:0), no bias, layers without weights."""
    bidi = lstm_named("bidirectional_1", 3, 2, "forward_lstm_1", bias=False)
    bidi.update(lstm_named("bidirectional_1", 3, 2, "backward_lstm_1", seed=1, bias=False))
    layers = [
        ("input_1", {}),
        ("bidirectional_1", bidi),
        ("dropout_1", {}),
        ("lstm_1", lstm_named("lstm_1", 4, 5, seed=2)),
    ]
    model = read_keras_weights(legacy_weights_file(h5py, tmp_path / "w.h5", layers))
    first, second = model.layers
    assert (first.name, first.forward.name, first.backward.name) == (
        "bidirectional_1",
        "forward_lstm_1",
        "backward_lstm_1",
    )
    assert first.forward.bias is None and first.backward.bias is None
    assert first.backward.kernel.tobytes() == lstm_arrays(3, 2, bias=False, seed=1)[0].tobytes()
    assert second.name == "lstm_1" and second.units == 5 and second.input_size == 4


@pytest.mark.parametrize(
    "layers, error, message",
    [
        ([("dense_1", {"dense_1/kernel:0": np.ones((3, 4), np.float32), "dense_1/bias:0": np.ones(4, np.float32)})],
         UnsupportedLayerError, r"layer 'dense_1' holds \['dense_1/kernel:0', 'dense_1/bias:0'\] of shapes \[\(3, 4\), \(4,\)\], which are not an LSTM's"),
        ([("gru_1", {"gru_1/kernel:0": np.ones((3, 12), np.float32), "gru_1/recurrent_kernel:0": np.ones((4, 12), np.float32),
                     "gru_1/bias:0": np.ones(12, np.float32)})],
         UnsupportedLayerError, r"layer 'gru_1' holds .* of shapes \[\(3, 12\), \(4, 12\), \(12,\)\], which are not an LSTM's"),
        ([("cu_dnnlstm_1", {"cu_dnnlstm_1/kernel:0": np.ones((3, 8), np.float32), "cu_dnnlstm_1/recurrent_kernel:0": np.ones((2, 8), np.float32),
                            "cu_dnnlstm_1/bias:0": np.ones(16, np.float32)})],
         UnsupportedLayerError, r"layer 'cu_dnnlstm_1' .* \(16,\)\], which are not an LSTM's .* CuDNNLSTM"),
        ([("lstm_1", lstm_named("lstm_1", 3, 2)), ("lstm_2", lstm_named("lstm_2", 7, 2))],
         KerasFileError, r"layer 'lstm_2' takes inputs of size 7, but the layer before it, 'lstm_1', outputs \[2\]"),
        ([("input_1", {})], KerasFileError, r"none of its layers holds an LSTM's weights"),
        ([("lstm_1", {"lstm_1/recurrent_kernel:0": np.ones((2, 8), np.float32), "lstm_1/kernel:0": np.ones((3, 8), np.float32)})],
         UnsupportedLayerError, r"layer 'lstm_1' holds \['lstm_1/recurrent_kernel:0', 'lstm_1/kernel:0'\]"),
        ([("lstm_1", {"lstm_1/kernel:0": np.ones((3, 8), np.float32), "lstm_1/recurrent_kernel:0": np.ones((2, 8), np.float16)})],
         KerasFileError, r"LSTM 'lstm_1': the weights have different dtypes"),
        ([("bidi", {**lstm_named("bidi", 3, 2, "forward_lstm"), **lstm_named("bidi", 3, 2, "forward_lstm_2")})],
         UnsupportedLayerError, r"layer 'bidi' holds .* which are not an LSTM's"),
    ],
    ids=["dense", "gru", "cudnn-lstm", "chain", "no-lstm", "weight-order", "mixed-dtypes", "two-forwards"],
)  # fmt: skip
def test_legacy_weights_only_refusals(h5py, tmp_path, layers, error, message):
    with pytest.raises(error, match=message) as info:
        read_keras_weights(legacy_weights_file(h5py, tmp_path / "w.h5", layers))
    assert str(info.value).startswith(str(tmp_path / "w.h5"))
    if error is UnsupportedLayerError:
        assert "a tf.keras weights-only .h5 (model.save_weights) holds no model config" in str(info.value)


def huge_unwritten_lstm_2(root):
    """lstm_2 declared with 16384 units (a 4 GiB recurrent kernel) but nothing stored: refused unread."""
    group = root["lstm_2/lstm_2"]
    for name, shape in (
        ("kernel:0", (5, 65536)),
        ("recurrent_kernel:0", (16384, 65536)),
        ("bias:0", (65536,)),
    ):
        del group[name]
        group.create_dataset(name, shape=shape, dtype=np.float32)
    group["kernel:0"][...] = 0.0


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda root: root.attrs.__setitem__("layer_names", [b"lstm_1", b"a/b"]), r"layer_names holds the invalid layer name 'a/b'"),
        (lambda root: root.attrs.__setitem__("layer_names", [b"lstm_1", b"lstm_9"]), r"layer_names lists 'lstm_9' but the file has no group /lstm_9"),
        (lambda root: root.attrs.__setitem__("layer_names", np.arange(3)), r"attribute 'layer_names' of / is not a string or a list of strings"),
        (lambda root: root["lstm_1"].attrs.__setitem__("weight_names", [b"lstm_1/kernel:0", b"lstm_1/../x:0", b"lstm_1/bias:0"]),
         r"'lstm_1/\.\./x:0' is not a valid HDF5 path"),
        (lambda root: root["lstm_1"].attrs.__setitem__("weight_names", [b"lstm_1/kernel:0", b"lstm_1/nothing:0", b"lstm_1/bias:0"]),
         r"/lstm_1/lstm_1/nothing:0 is missing"),
        (lambda root: root.attrs.__setitem__("keras_version", np.float64(2.2)), r"attribute 'keras_version' of / is not a string or a list of strings"),
        (huge_unwritten_lstm_2, r"/lstm_2/lstm_2/recurrent_kernel:0: shape \(16384, 65536\) needs 4294967296 bytes but 0 are stored"),
        (lambda root: (root.__delitem__("lstm_2/lstm_2/bias:0"), root.create_dataset("lstm_2/lstm_2/bias:0", shape=(16,), dtype=np.float32)),
         r"/lstm_2/lstm_2/bias:0: shape \(16,\) needs 64 bytes but 0 are stored"),
    ],
    ids=["bad-name", "missing-group", "names-not-text", "dotdot", "missing-weight", "version-not-text", "huge-kernel", "unwritten"],
)  # fmt: skip
def test_legacy_weights_only_damage(h5py, tmp_path, edit, message):
    path = edited_h5(h5py, tmp_path, KERAS / "keras220_weights.h5", edit)
    with pytest.raises(KerasFileError, match=message) as info:
        read_keras_weights(path)
    assert "edited.h5" in str(info.value)


def test_legacy_weights_only_without_version(h5py, tmp_path):
    path = legacy_weights_file(
        h5py, tmp_path / "w.h5", [("lstm_1", lstm_named("lstm_1", 3, 2))], version=None
    )
    model = read_keras_weights(path)
    assert (model.file_format, model.keras_version) == ("legacy_weights_h5", None)


# -------------------------------------------------------------- what the reader supports


def test_weights_only_layer_order_is_write_order_not_alphabetical(h5py, tmp_path):
    """lstm, lstm_1, ..., lstm_10: HDF5 lists lstm_10 before lstm_2; Keras wrote it last."""
    units = [3 + i % 4 for i in range(12)]
    layers = []
    for i, u in enumerate(units):
        group = "lstm" if i == 0 else f"lstm_{i}"
        layers.append((group, f"enc{i}", lstm_arrays(4 if i == 0 else units[i - 1], u, seed=i)))
    model = read_keras_weights(keras3_weights(h5py, tmp_path / "m.weights.h5", layers))
    assert [layer.name for layer in model.layers] == [f"enc{i}" for i in range(12)]
    assert [layer.units for layer in model.layers] == units


def test_weights_only_mixed_classes_keep_write_order(h5py, tmp_path):
    """An LSTM written before a Bidirectional stays first although 'bidirectional' < 'lstm'."""
    path = keras3_weights(h5py, tmp_path / "m.weights.h5", [("lstm", "first", lstm_arrays(3, 4))])
    with h5py.File(path, "r+") as root:
        for side, seed in (("forward_layer", 1), ("backward_layer", 2)):
            variables = root.create_group(f"layers/bidirectional/{side}/cell/vars")
            for i, array in enumerate(lstm_arrays(4, 2, seed=seed)):
                variables.create_dataset(str(i), data=array)
    model = read_keras_weights(path)
    assert [type(layer).__name__ for layer in model.layers] == [
        "KerasLSTMWeights",
        "KerasBidirectionalWeights",
    ]
    assert (model.layers[1].forward.name, model.layers[1].backward.name) == (
        "forward_layer",
        "backward_layer",
    )


def test_weights_only_skips_layers_without_weights(h5py, tmp_path):
    path = keras3_weights(h5py, tmp_path / "m.weights.h5", [("lstm", "a", lstm_arrays(3, 4))])
    with h5py.File(path, "r+") as root:
        root.create_group("layers/dropout/vars").attrs["name"] = "dropout"
    assert [layer.name for layer in read_keras_weights(path).layers] == ["a"]


def test_no_bias_and_float64(h5py, tmp_path):
    arrays = lstm_arrays(3, 5, dtype=np.float64, bias=False)
    config = stacked_config([lstm_config("only", 5, use_bias=False, go_backwards=True, activation="relu")])
    path = keras_file(
        tmp_path, config, keras3_weights(h5py, tmp_path / "w.h5", [("lstm", "only", arrays)]).read_bytes()
    )
    (layer,) = read_keras_weights(path).layers
    assert layer.bias is None and layer.kernel.dtype == np.float64
    assert layer.config.use_bias is False and layer.config.go_backwards is True
    assert layer.config.activation == "relu"
    np.testing.assert_array_equal(layer.recurrent_kernel, arrays[1])


def test_dropout_and_input_layers_are_skipped_in_configs(h5py, tmp_path):
    config, _ = zip_parts("stacked.keras")
    layers = config["config"]["layers"]
    dropout = {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "dropout", "rate": 0.5}}
    config["config"]["layers"] = [layers[0], layers[1], dropout, layers[2]]
    model = read_keras_weights(keras_file(tmp_path, config))
    assert [layer.name for layer in model.layers] == ["lstm", "lstm_1"]


def test_legacy_bidirectional_with_sum_merge(h5py, tmp_path):
    def edit(root):
        config = json.loads(root.attrs["model_config"])
        config["config"]["layers"][1]["config"]["merge_mode"] = "sum"
        root.attrs["model_config"] = json.dumps(config)

    (layer,) = read_keras_weights(edited_h5(h5py, tmp_path, KERAS / "legacy_bidi.h5", edit)).layers
    assert layer.config.merge_mode == "sum"


# ------------------------------------------------------------------------------ bad files


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Keras file .*absent\.keras does not exist"):
        read_keras_weights(tmp_path / "absent.keras")


def test_directory(tmp_path):
    with pytest.raises(
        IsADirectoryError, match=r"is a directory; pass a \.keras, \.weights\.h5 or \.h5 file"
    ):
        read_keras_weights(tmp_path)


def test_not_a_keras_file(tmp_path):
    (tmp_path / "model.keras").write_text("hello")
    with pytest.raises(KerasFileError, match=r"model\.keras: neither a \.keras zip nor an HDF5 file"):
        read_keras_weights(tmp_path / "model.keras")


def test_missing_h5py_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(
        ImportError, match=r"needs the optional dependency h5py: pip install fastlstm\[keras\]"
    ):
        read_keras_weights(KERAS / "stacked.weights.h5")


@pytest.mark.parametrize("name", KERAS_FILES)
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_files(h5py, tmp_path, name, keep):
    data = (KERAS / name).read_bytes()
    (tmp_path / name).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(KerasFileError, match=r"damaged|truncated|missing|not a Keras") as info:
        read_keras_weights(tmp_path / name)
    assert name in str(info.value)


def test_corrupted_zip_member_fails_its_crc(tmp_path):
    data = bytearray((KERAS / "stacked.keras").read_bytes())
    data[data.index(b'"units": 5') + 10] ^= 1  # stored (uncompressed) config.json
    (tmp_path / "m.keras").write_bytes(bytes(data))
    with pytest.raises(
        KerasFileError, match=r"cannot read the zip archive.*Bad CRC-32 for file 'config\.json'"
    ):
        read_keras_weights(tmp_path / "m.keras")


@pytest.mark.parametrize(
    "members, message",
    [
        ({"config.json": {}}, r"must hold config\.json and model\.weights\.h5; it holds \['config\.json'\]"),
        ({"config.json": b"{nope", "model.weights.h5": b""}, r"config\.json: not valid JSON"),
        ({"config.json": b"[" * 100000, "model.weights.h5": b""}, r"config\.json: not valid JSON"),
        ({"config.json": [], "model.weights.h5": b""}, r"the model config is not a JSON object"),
        ({"config.json": {"class_name": "Sequential", "config": {}}, "model.weights.h5": b""},
         r"the Sequential config has no 'layers' list"),
    ],
    ids=["no-weights", "bad-json", "deep-json", "not-object", "no-layers"],
)  # fmt: skip
def test_malformed_keras_zips(tmp_path, members, message):
    with pytest.raises(KerasFileError, match=message):
        read_keras_weights(write_zip(tmp_path / "m.keras", members))


def test_zip_member_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("fastlstm.io.keras_h5.MAX_JSON_BYTES", 100)
    with pytest.raises(
        KerasFileError, match=r"zip member config\.json claims 3379 bytes, more than the 100 allowed"
    ):
        read_keras_weights(KERAS / "stacked.keras")


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"class_name": "GRU", "config": {"name": "gru", "units": 4}},
         r"config\.json: layer 'gru' \(GRU\) is not supported; fastlstm reads only LSTM and Bidirectional\(LSTM\)"),
        ({"class_name": "Dense", "config": {"name": "head", "units": 4}}, r"layer 'head' \(Dense\) is not supported"),
        ({"class_name": "SimpleRNN", "config": {"name": "rnn"}}, r"layer 'rnn' \(SimpleRNN\) is not supported"),
        ({"class_name": "ConvLSTM1D", "config": {"name": "c"}}, r"layer 'c' \(ConvLSTM1D\) is not supported"),
        ({"class_name": "Bidirectional", "config": {"name": "b", "layer": {"class_name": "GRU", "config": {}}}},
         r"layer 'b' \(Bidirectional\): Bidirectional\(GRU\) is not supported; only Bidirectional\(LSTM\) is"),
    ],
    ids=["gru", "dense", "simple-rnn", "conv-lstm", "bidirectional-gru"],
)  # fmt: skip
def test_unsupported_layers_are_named(h5py, tmp_path, layer, message):
    config, _ = zip_parts("stacked.keras")
    # Dense layers are read after the LSTM layers (issue 14): a Dense is refused in front of them.
    position = 1 if layer["class_name"] == "Dense" else len(config["config"]["layers"])
    config["config"]["layers"].insert(position, layer)
    with pytest.raises(UnsupportedLayerError, match=message):
        read_keras_weights(keras_file(tmp_path, config))


def test_unsupported_model_class_and_activation(h5py, tmp_path):
    config, _ = zip_parts("stacked.keras")
    with pytest.raises(
        UnsupportedLayerError, match=r"model class 'MyModel' is not supported; fastlstm reads Sequ"
    ):
        read_keras_weights(keras_file(tmp_path, dict(config, class_name="MyModel")))
    # Functional models are read when they are plain chains (tests/test_io_keras_graph.py); this one has no graph
    with pytest.raises(KerasFileError, match=r"the Functional config has no 'input_layers' list"):
        read_keras_weights(keras_file(tmp_path, dict(config, class_name="Functional")))
    config["config"]["layers"][1]["config"]["activation"] = {"class_name": "function", "config": "my_act"}
    with pytest.raises(
        UnsupportedLayerError, match=r"layer 'lstm': activation = \{.*\} is not the name of a built-in"
    ):
        read_keras_weights(keras_file(tmp_path, config))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(units=6), r"LSTM 'lstm': config says units = 6, the weights have 5"),
        (lambda c: c.update(units=0), r"units = 0 is not a positive integer"),
        (lambda c: c.update(units="5"), r"units = '5' is not a positive integer"),
        (lambda c: c.update(use_bias=False), r"config says use_bias = False, the file has 3 arrays"),
        (lambda c: c.update(go_backwards="yes"), r"go_backwards = 'yes' is not a boolean"),
        (lambda c: c.update(name="a/b"), r"layer name 'a/b' is missing or invalid"),
        (lambda c: c.update(name="enc"), r"layers/lstm holds the weights of layer 'lstm', but .* layer 'enc' there"),
    ],
    ids=["units", "units-zero", "units-str", "use-bias", "bad-flag", "bad-name", "name-mismatch"],
)  # fmt: skip
def test_config_disagrees_with_weights(h5py, tmp_path, change, message):
    config, _ = zip_parts("stacked.keras")
    change(config["config"]["layers"][1]["config"])
    with pytest.raises(KerasFileError, match=message):
        read_keras_weights(keras_file(tmp_path, config))


def test_bidirectional_config_errors(h5py, tmp_path):
    config, _ = zip_parts("bidi.keras")
    config["config"]["layers"][1]["config"]["merge_mode"] = "max"
    with pytest.raises(KerasFileError, match=r"merge_mode = 'max' is not one of"):
        read_keras_weights(keras_file(tmp_path, config, base="bidi.keras"))
    config["config"]["layers"][1]["config"].update(merge_mode="concat", backward_layer=None)
    with pytest.raises(KerasFileError, match=r"the Bidirectional config has no backward_layer"):
        read_keras_weights(keras_file(tmp_path, config, base="bidi.keras"))


def replace_dataset(path: str, data):
    def edit(root):
        del root[path]
        root.create_dataset(path, data=data)

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (replace_dataset("layers/lstm/cell/vars/1", np.zeros((5, 16), np.float32)),
         r"layers/lstm: LSTM 'lstm': recurrent_kernel shape \(5, 16\) is not \[units, 4 \* units\]"),
        (replace_dataset("layers/lstm/cell/vars/0", np.zeros((3, 16), np.float32)),
         r"kernel shape \(3, 16\) is not \[input_size, 20\]"),
        (replace_dataset("layers/lstm/cell/vars/2", np.zeros(21, np.float32)), r"bias shape \(21,\) is not \(20,\)"),
        (replace_dataset("layers/lstm/cell/vars/2", np.zeros(20, np.float64)),
         r"the weights have different dtypes \['float32', 'float64'\]"),
        (replace_dataset("layers/lstm/cell/vars/2", np.zeros(20, np.int32)),
         r"vars/2: dtype int32 is not float16, float32 or float64"),
        (replace_dataset("layers/lstm/cell/vars/2", np.zeros((2, 2, 5), np.float32)), r"shape \(2, 2, 5\) is not 1-D or 2-D"),
        (replace_dataset("layers/lstm_1/cell/vars/0", np.zeros((6, 16), np.float32)),
         r"layer 'lstm_1' takes inputs of size 6, but the layer before it, 'lstm', outputs \[5\]"),
        (lambda root: root["layers/lstm/cell/vars"].create_dataset("3", data=[1.0]),
         r"cell/vars holds \['0', '1', '2', '3'\], not an LSTM's variables"),
        (lambda root: root.move("layers/lstm_1", "layers/lstm_2"), r"/layers/lstm_1 is missing"),
    ],
    ids=["recurrent-shape", "kernel-shape", "bias-shape", "mixed-dtypes", "int-dtype", "3-d", "chain", "extra-var",
         "missing-group"],
)  # fmt: skip
def test_inconsistent_weights(h5py, tmp_path, edit, message):
    _, weights = zip_parts("stacked.keras")
    weights = edited_h5(h5py, tmp_path, weights, edit).read_bytes()
    with pytest.raises(KerasFileError, match=message):
        read_keras_weights(keras_file(tmp_path, weights=weights))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda root: root.__setitem__("layers/gru/cell/vars/0", np.zeros((3, 12), np.float32)),
         r"layer group layers/gru \(layer 'gru'\) holds weights but is not an LSTM"),
        (lambda root: root.__setitem__("layers/dense/vars/0", np.zeros((4, 2), np.float32)),
         r"layers/dense \(layer 'dense'\) holds weights"),
        (lambda root: root.move("layers/lstm", "layers/lstm_2"),
         r"cannot tell the layer order \(layers/lstm_1 was written before a lower-numbered lstm group\)"),
        (lambda root: root.__setitem__("layers/lstm_1/cell/vars/x", root["layers/lstm_1/cell/vars/2"]),
         r"holds \['0', '1', '2', 'x'\]"),
    ],
    ids=["gru", "dense", "order", "stray"],
)  # fmt: skip
def test_weights_only_files(h5py, tmp_path, edit, message):
    with pytest.raises(KerasFileError, match=message):
        read_keras_weights(edited_h5(h5py, tmp_path, KERAS / "stacked.weights.h5", edit))


def test_weights_only_unsupported_layer_is_an_unsupported_layer_error(h5py, tmp_path):
    def edit(root):
        root["layers/gru/cell/vars/0"] = np.zeros((3, 12), np.float32)
        root.create_group("layers/gru/vars").attrs["name"] = "my_gru"

    with pytest.raises(UnsupportedLayerError, match=r"layers/gru \(layer 'my_gru'\)"):
        read_keras_weights(edited_h5(h5py, tmp_path, KERAS / "stacked.weights.h5", edit))


def link_edit(kind):
    def edit(root):
        import h5py

        del root["layers/lstm/cell/vars/2"]
        target = (
            h5py.SoftLink("/layers/lstm_1/cell/vars/2")
            if kind == "soft"
            else h5py.ExternalLink("/etc/passwd", "/x")
        )
        root["layers/lstm/cell/vars"]["2"] = target

    return edit


@pytest.mark.parametrize("kind, link", [("soft", "SoftLink"), ("external", "ExternalLink")])
def test_links_are_not_followed(h5py, tmp_path, kind, link):
    path = edited_h5(h5py, tmp_path, KERAS / "stacked.weights.h5", link_edit(kind))
    with pytest.raises(
        KerasFileError, match=rf"/layers/lstm/cell/vars/2 is a {link}; only plain groups and datasets"
    ):
        read_keras_weights(path)


@pytest.mark.parametrize("storage", ["gzip", "external"])
def test_compressed_or_external_datasets_are_refused(h5py, tmp_path, storage):
    def edit(root):
        data = root["layers/lstm/cell/vars/2"][()]
        del root["layers/lstm/cell/vars/2"]
        if storage == "gzip":
            root.create_dataset("layers/lstm/cell/vars/2", data=data, compression="gzip")
        else:
            raw = tmp_path / "raw.bin"
            raw.write_bytes(data.tobytes())
            root.create_dataset(
                "layers/lstm/cell/vars/2", shape=data.shape, dtype=data.dtype, external=[(str(raw), 0, 80)]
            )

    path = edited_h5(h5py, tmp_path, KERAS / "stacked.weights.h5", edit)
    with pytest.raises(
        KerasFileError, match=r"the dataset is compressed, virtual or stored outside the file"
    ):
        read_keras_weights(path)


def test_unwritten_dataset_is_refused(h5py, tmp_path):
    def edit(root):
        del root["layers/lstm/cell/vars/2"]
        root.create_dataset("layers/lstm/cell/vars/2", shape=(20,), dtype=np.float32)  # never written

    path = edited_h5(h5py, tmp_path, KERAS / "stacked.weights.h5", edit)
    with pytest.raises(KerasFileError, match=r"vars/2: shape \(20,\) needs 80 bytes but 0 are stored"):
        read_keras_weights(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda root: root["model_weights"].attrs.__setitem__("layer_names", ["lstm"]),
         r"the layers with weights \['lstm'\] do not match the LSTM layers of model_config \['lstm', 'lstm_1'\]"),
        (lambda root: root["model_weights/lstm"].attrs.__setitem__(
            "weight_names", ["lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/kernel:0", "lstm/lstm_cell/bias:0"]),
         r"model_weights/lstm: weights \[.*\] are not an LSTM's \['kernel', 'recurrent_kernel', 'bias'\]"),
        (lambda root: root.attrs.__setitem__("model_config", "{"), r"model_config: not valid JSON"),
        (lambda root: root.attrs.__setitem__("model_config", np.int64(3)), r"attribute 'model_config' of / is not a string or a list of strings"),
        (lambda root: root.attrs.__delitem__("model_config"),
         r"an HDF5 file, but not a Keras one"),
        (lambda root: (root.attrs.__delitem__("model_config"), root.attrs.__setitem__("layer_names", ["lstm"])),
         r"a tf\.keras weights-only \.h5 \(model\.save_weights\) holds no model config"),
    ],
    ids=["layer-names", "weight-order", "bad-json", "config-not-text", "no-config", "weights-only"],
)  # fmt: skip
def test_legacy_files(h5py, tmp_path, edit, message):
    with pytest.raises(KerasFileError, match=message):
        read_keras_weights(edited_h5(h5py, tmp_path, KERAS / "legacy_stacked.h5", edit))


def test_hdf5_that_is_not_keras(h5py, tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as root:
        root["x"] = np.zeros(3)
    with pytest.raises(KerasFileError, match=r"other\.h5: an HDF5 file, but not a Keras one"):
        read_keras_weights(tmp_path / "other.h5")


# -------------------------------------------------------------------------------- fuzzing


MUTATIONS = byte_mutations(max_position=2**16, max_delete=64)


def check_model(model) -> None:
    """A file that reads without error gives layers whose arrays fit together."""
    for layer in model.layers:
        for lstm in (
            (layer.forward, layer.backward) if isinstance(layer, KerasBidirectionalWeights) else (layer,)
        ):
            units = lstm.recurrent_kernel.shape[0]
            assert lstm.recurrent_kernel.shape == (units, 4 * units)
            assert lstm.kernel.shape[1] == 4 * units
            assert lstm.bias is None or lstm.bias.shape == (4 * units,)
            assert lstm.kernel.dtype == lstm.recurrent_kernel.dtype


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(KERAS_FILES), mutations=MUTATIONS)
def test_fuzz_byte_mutations(h5py, tmp_path, name, mutations):
    """Flip, insert, delete, truncate: the only possible failure is a KerasFileError."""
    path = tmp_path / name
    path.write_bytes(apply_mutations((KERAS / name).read_bytes(), mutations))
    try:
        check_model(read_keras_weights(path))
    except KerasFileError as error:
        assert name in str(error)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["stacked.keras", "bidi.keras"]), mutations=MUTATIONS)
def test_fuzz_keras_weights_inside_zip(h5py, tmp_path, name, mutations):
    """The same, aimed at the HDF5 file inside a valid .keras zip (which the zip CRC would catch)."""
    config, weights = zip_parts(name)
    path = keras_file(tmp_path, config, apply_mutations(weights, mutations), base=name)
    try:
        check_model(read_keras_weights(path))
    except KerasFileError as error:
        assert "model.keras" in str(error)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["keras220_weights.h5", "legacy_weights_stacked.h5", "legacy_weights_bidi.h5"]),
    mutations=MUTATIONS,
)
def test_fuzz_legacy_weights_only(h5py, tmp_path, name, mutations):
    """Weights-only files, whose layers are identified from the bytes alone: only KerasFileError."""
    path = tmp_path / name
    path.write_bytes(apply_mutations((KERAS / name).read_bytes(), mutations))
    try:
        check_model(read_keras_weights(path))
    except KerasFileError as error:
        assert str(error).startswith(str(path))


# ---------------------------------------------------------------------- regression corpus


def corpus_cases():
    return json.loads((CORPUS / "manifest.json").read_text())["cases"]


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda c: c["name"])
def test_fuzz_corpus_replays(h5py, case):
    """Mutated files kept from fuzzing: each still gives its documented outcome."""
    with pytest.raises(KerasFileError, match=case["error"]):
        read_keras_weights(CORPUS / case["name"])


def test_zip_is_read_in_memory(h5py, tmp_path, monkeypatch):
    """Nothing is extracted to disk: the weights are opened from bytes."""
    opened = []
    real_file = h5py.File

    def spy(name, *args, **kwargs):
        opened.append(name)
        return real_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    read_keras_weights(KERAS / "bidi.keras")
    assert len(opened) == 1 and isinstance(opened[0], io.BytesIO)
