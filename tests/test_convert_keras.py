"""fastlstm.from_keras against the outputs of real Keras 3.15 / tf_keras 2.21 (tests/golden/keras).

Keras is not installed here: files come from the golden set, and layer/model
objects are stand-ins with Keras' own class names, ``get_config()`` dicts (taken
from the golden ``.keras`` files) and ``get_weights()`` arrays.
"""

from __future__ import annotations

import json
import sys
import types
import zipfile

import numpy as np
import pytest

import fastlstm
import fastlstm.convert.keras
from conftest import GOLDEN

KERAS = GOLDEN / "keras"
FILES = [
    "stacked.keras",
    "stacked.weights.h5",
    "legacy_stacked.h5",
    "bidi.keras",
    "bidi.weights.h5",
    "legacy_bidi.h5",
]


def expected(stem):
    return np.load(KERAS / f"{stem}_expected.npz", allow_pickle=False)


def keras_config(stem):
    """The layer configs of a golden ``.keras`` model, as Keras' get_config() gives them."""
    with zipfile.ZipFile(KERAS / f"{stem}.keras") as archive:
        return json.loads(archive.read("config.json"))["config"]["layers"]


def stand_in(class_name, module="keras.src.layers", **attributes):
    """An object with a Keras class name and module (what from_keras duck-types on)."""
    cls = type(class_name, (), {"__module__": module})
    obj = cls()
    for key, value in attributes.items():
        setattr(obj, key, value)
    return obj


def lstm(config, weights, module="keras.src.layers"):
    return stand_in(
        "LSTM",
        module,
        name=config["name"],
        get_config=lambda: dict(config),
        get_weights=lambda: list(weights),
    )


def stacked_model():
    want, configs = expected("stacked"), keras_config("stacked")
    layers = [stand_in("InputLayer", name="input")]
    for k, spec in enumerate(configs[1:]):
        layers.append(
            lstm(spec["config"], [want[f"layer{k}_{n}"] for n in ("kernel", "recurrent_kernel", "bias")])
        )
        layers.append(stand_in("Dropout", name=f"dropout_{k}"))
    return stand_in("Functional", name="functional", layers=layers, get_config=dict)


def bidi_layer(merge_mode="concat", backward_options=None):
    want, (_, spec) = expected("bidi"), keras_config("bidi")
    config = dict(spec["config"], merge_mode=merge_mode)
    sides = []
    for side, key in (("forward", "layer"), ("backward", "backward_layer")):
        side_config = dict(config[key]["config"], **((backward_options or {}) if side == "backward" else {}))
        sides.append(lstm(side_config, [want[f"{side}_{n}"] for n in ("kernel", "recurrent_kernel", "bias")]))
    return stand_in(
        "Bidirectional",
        name=config["name"],
        get_config=lambda: config,
        forward_layer=sides[0],
        backward_layer=sides[1],
    )


@pytest.mark.parametrize("name", FILES)
def test_golden_files(name):
    pytest.importorskip("h5py")
    want = expected(name.split(".")[0])
    model = fastlstm.from_keras(KERAS / name)
    outputs, _ = model(want["inputs"])
    assert outputs.dtype == np.float32 and outputs.shape == want["outputs"].shape
    assert np.abs(outputs - want["outputs"]).max() < 2e-6
    cells = [cell for layer in model.layers for cell in (layer if isinstance(layer, tuple) else (layer,))]
    assert all(cell.forget_bias == 0.0 for cell in cells)


def test_file_path_as_str_and_structure():
    pytest.importorskip("h5py")
    stacked = fastlstm.from_keras(str(KERAS / "stacked.keras"))
    assert [cell.name for cell in stacked.layers] == ["lstm", "lstm_1"]
    assert [cell.num_units for cell in stacked.layers] == [5, 4]
    ((fw, bw),) = fastlstm.from_keras(KERAS / "legacy_bidi.h5").layers
    assert (fw.name, bw.name) == ("forward_lstm", "backward_lstm")


def test_get_weights_lists_layer_by_layer():
    want = expected("stacked")
    cells = [
        fastlstm.from_keras([want[f"layer{k}_{n}"] for n in ("kernel", "recurrent_kernel", "bias")]).layers[0]
        for k in range(2)
    ]
    outputs, _ = fastlstm.LSTMModel(cells)(want["inputs"])
    assert np.abs(outputs - want["outputs"]).max() < 2e-6


def test_gate_order_and_bias_mapping():
    """Keras (i, f, c, o) blocks become TF (i, j=c, f, o); the kernel stacks input and recurrent rows."""
    kernel, recurrent, bias = (
        np.arange(2 * 8.0).reshape(2, 8),
        -np.arange(2 * 8.0).reshape(2, 8),
        np.arange(8.0),
    )
    cell = fastlstm.from_keras([kernel, recurrent, bias], dtype=np.float64).layers[0]
    order = [0, 1, 4, 5, 2, 3, 6, 7]  # units=2: blocks i=0:2, f=2:4, c=4:6, o=6:8
    assert np.array_equal(cell.kernel, np.concatenate([kernel, recurrent])[:, order])
    assert np.array_equal(cell.bias, bias[order]) and cell.forget_bias == 0.0


def test_use_bias_false_gives_a_zero_bias():
    want = expected("stacked")
    kernel, recurrent = want["layer0_kernel"], want["layer0_recurrent_kernel"]
    cell = fastlstm.from_keras([kernel, recurrent]).layers[0]
    assert cell.bias.dtype == np.float32 and not cell.bias.any()
    config = dict(keras_config("stacked")[1]["config"], use_bias=False)
    (same,) = fastlstm.from_keras(lstm(config, [kernel, recurrent])).layers
    assert np.array_equal(same.kernel, cell.kernel) and not same.bias.any()


def test_model_and_layer_objects():
    want = expected("stacked")
    outputs, _ = fastlstm.from_keras(stacked_model())(want["inputs"])
    assert np.abs(outputs - want["outputs"]).max() < 2e-6
    want = expected("bidi")
    for source in (bidi_layer(), stand_in("Sequential", layers=[bidi_layer()], get_config=dict)):
        outputs, _ = fastlstm.from_keras(source)(want["inputs"])
        assert np.abs(outputs - want["outputs"]).max() < 2e-6


def test_top_layer_without_return_sequences_is_the_final_state():
    want, configs = expected("stacked"), keras_config("stacked")
    config = dict(configs[1]["config"], return_sequences=False)
    model = fastlstm.from_keras(
        lstm(config, [want[f"layer0_{n}"] for n in ("kernel", "recurrent_kernel", "bias")])
    )
    outputs, (state,) = model(want["inputs"])
    assert np.array_equal(outputs[:, -1], state.h)


def test_activations_by_keras_version(monkeypatch):
    want = expected("stacked")
    weights = [want[f"layer0_{n}"] for n in ("kernel", "recurrent_kernel", "bias")]
    base = keras_config("stacked")[1]["config"]
    silu = fastlstm.from_keras(lstm(dict(base, activation="silu"), weights)).layers[0]
    assert silu.activation == "swish"
    tf_keras = types.ModuleType("tf_keras")
    tf_keras.__version__ = "2.21.0"
    monkeypatch.setitem(sys.modules, "tf_keras", tf_keras)
    legacy = lstm(dict(base, activation="hard_sigmoid"), weights, module="tf_keras.src.layers.rnn.lstm")
    assert fastlstm.from_keras(legacy).layers[0].activation == "hard_sigmoid"
    with pytest.raises(ValueError, match=r"'hard_sigmoid' from Keras 3 .* is relu6\(x \+ 3\) / 6"):
        fastlstm.from_keras(lstm(dict(base, activation="hard_sigmoid"), weights))


def test_save_load_round_trip(tmp_path):
    want = expected("bidi")
    model = fastlstm.from_keras(bidi_layer())
    fastlstm.save(tmp_path / "bidi.npz", model)
    restored = fastlstm.load(tmp_path / "bidi.npz")
    assert np.array_equal(restored(want["inputs"])[0], model(want["inputs"])[0])


# ----------------------------------------------------------------------------- errors


def stacked_weights(k=0):
    want = expected("stacked")
    return [want[f"layer{k}_{n}"] for n in ("kernel", "recurrent_kernel", "bias")]


def test_layers_that_are_not_lstm():
    gru = stand_in("GRU", name="gru", get_config=dict, get_weights=list)
    with pytest.raises(ValueError, match=r"from_keras: layer 'gru' \(GRU\): GRU is not supported"):
        fastlstm.from_keras(gru)
    model = stand_in("Sequential", layers=[stand_in("Dense", name="dense")], get_config=dict)
    with pytest.raises(
        ValueError, match=r"Sequential model: layer 'dense' \(Dense\): Dense is not supported"
    ):
        fastlstm.from_keras(model)
    inner = bidi_layer()
    inner.backward_layer = gru
    with pytest.raises(
        ValueError, match=r"Bidirectional 'bidirectional': layer 'gru' \(GRU\): GRU is not supported"
    ):
        fastlstm.from_keras(inner)
    with pytest.raises(ValueError, match="has no LSTM or Bidirectional"):
        fastlstm.from_keras(stand_in("Sequential", layers=[stand_in("InputLayer")], get_config=dict))
    with pytest.raises(TypeError, match="from_keras takes a Keras file path.*got int"):
        fastlstm.from_keras(42)
    with pytest.raises(TypeError, match="not a list of layers"):
        fastlstm.from_keras([gru])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"activation": "gelu"}, r"LSTM 'lstm': activation 'gelu' is not supported; fastlstm has the Keras"),
        ({"activation": {"class_name": "function", "config": "mine"}}, r"activation \{.*\} is not supported"),
        ({"recurrent_activation": "hard_sigmoid"}, r"recurrent_activation 'hard_sigmoid' is not supported"),
        (
            {"go_backwards": True},
            r"LSTM 'lstm' has go_backwards=True: Keras then returns the outputs in reversed",
        ),
    ],
)
def test_unsupported_layer_options(options, message):
    config = dict(keras_config("stacked")[1]["config"], **options)
    with pytest.raises(ValueError, match=message):
        fastlstm.from_keras(lstm(config, stacked_weights()))


def test_unsupported_bidirectional_options():
    with pytest.raises(
        ValueError, match=r"Bidirectional 'bidirectional' has merge_mode='sum'; fastlstm supports only"
    ):
        fastlstm.from_keras(bidi_layer(merge_mode="sum"))
    with pytest.raises(
        ValueError, match=r"backward layer has go_backwards=False; a Bidirectional backward layer"
    ):
        fastlstm.from_keras(bidi_layer(backward_options={"go_backwards": False}))


def test_return_sequences_false_below_another_layer():
    configs = keras_config("stacked")
    layers = [
        lstm(dict(configs[1]["config"], return_sequences=False), stacked_weights(0)),
        lstm(configs[2]["config"], stacked_weights(1)),
    ]
    with pytest.raises(ValueError, match=r"LSTM 'lstm' has return_sequences=False but another layer follows"):
        fastlstm.from_keras(stand_in("Sequential", layers=layers, get_config=dict))


@pytest.mark.parametrize(
    "weights, message",
    [
        ([], r"got 0 weight arrays; an LSTM has \[kernel, recurrent_kernel, bias\].*is the layer built\?"),
        ([np.zeros((3, 8))], r"got 1 weight arrays"),
        (
            [np.zeros((3, 8)), np.zeros((2, 6))],
            r"recurrent_kernel has shape \(2, 6\); expected \[units, 4 \* units\]",
        ),
        ([np.zeros((3, 12)), np.zeros((2, 8))], r"kernel has shape \(3, 12\); expected \[input_size, 8\]"),
        ([np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(6)], r"bias has shape \(6,\); expected \(8,\)"),
        (
            [np.zeros((3, 8), int), np.zeros((2, 8))],
            r"kernel has dtype int64; LSTM weights must be floating point",
        ),
    ],
)
def test_wrong_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.from_keras(weights)


def test_use_bias_disagreeing_with_the_weights():
    config = dict(keras_config("stacked")[1]["config"], use_bias=False)
    with pytest.raises(ValueError, match=r"use_bias=False but 3 weight arrays were given"):
        fastlstm.from_keras(lstm(config, stacked_weights()))


def test_layers_that_do_not_chain():
    configs = keras_config("stacked")
    layers = [lstm(configs[1]["config"], stacked_weights(0)), lstm(configs[2]["config"], stacked_weights(0))]
    with pytest.raises(
        ValueError, match=r"layer 'lstm_1' takes inputs of depth 3 but the layer below, 'lstm', outputs 5"
    ):
        fastlstm.from_keras(stand_in("Sequential", layers=layers, get_config=dict))
