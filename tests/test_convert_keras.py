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
    return stand_in("Functional", name="functional", layers=layers, get_config=lambda: chain_config(layers))


def chain_config(layers, calls=None):
    """tf.keras' get_config() of a Functional model calling ``layers`` one after the other.

    ``calls`` maps a layer name to its inbound_nodes, replacing the chain's.
    """
    entries = []
    for previous, layer in zip([None, *layers], layers):
        nodes = [] if previous is None else [[[previous.name, 0, 0, {}]]]
        entries.append(
            {"class_name": type(layer).__name__, "name": layer.name, "config": {"name": layer.name},
             "inbound_nodes": (calls or {}).get(layer.name, nodes)}
        )  # fmt: skip
    return {
        "layers": entries,
        "input_layers": [[layers[0].name, 0, 0]],
        "output_layers": [[layers[-1].name, 0, 0]],
    }


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


def cells_of(model):
    return [cell for layer in model.layers for cell in (layer if isinstance(layer, tuple) else (layer,))]


@pytest.mark.parametrize(
    "name, options, key, gate",
    [
        ("hard_sigmoid.keras", {}, "outputs", "keras3_hard_sigmoid"),
        ("hard_sigmoid.h5", {}, "outputs", "keras3_hard_sigmoid"),  # Keras 3's legacy .h5: keras_version 3.15.1
        ("legacy_hard_sigmoid.h5", {}, "outputs", "hard_sigmoid"),
        ("legacy_weights_stacked.h5", {}, "outputs", "sigmoid"),
        ("legacy_weights_stacked.h5", {"recurrent_activation": "hard_sigmoid"}, "outputs_hard_sigmoid", "hard_sigmoid"),
        ("legacy_weights_bidi.h5", {}, "outputs", "sigmoid"),
        ("keras220_weights.h5", {}, "outputs", "hard_sigmoid"),
        ("keras220_weights.h5", {"recurrent_activation": ["sigmoid", "sigmoid"]}, "outputs_sigmoid", "sigmoid"),
    ],
)  # fmt: skip
def test_golden_gate_activations(name, options, key, gate):
    """Predictions of Keras 3 / tf_keras (hard_sigmoid gates, weights-only files) within 2e-6."""
    pytest.importorskip("h5py")
    want = expected(name.split(".")[0])
    model = fastlstm.from_keras(KERAS / name, **options)
    assert [cell.recurrent_activation for cell in cells_of(model)] == [gate] * len(cells_of(model))
    outputs, states = model(want["inputs"])
    # keras220_weights' top LSTM has return_sequences=False: Keras gives the final output.
    got = outputs if want[key].ndim == 3 else states[-1].h
    assert got.dtype == np.float32 and got.shape == want[key].shape
    assert np.abs(got - want[key]).max() <= 2e-6


def test_hard_sigmoid_object_override():
    """fastlstm.HardSigmoid(0.2, 0.5) is tf.keras' hard_sigmoid: the same predictions."""
    pytest.importorskip("h5py")
    want = expected("legacy_weights_stacked")
    gate = fastlstm.HardSigmoid(0.2, 0.5)
    model = fastlstm.from_keras(KERAS / "legacy_weights_stacked.h5", recurrent_activation=gate)
    assert all(cell.recurrent_activation == gate for cell in model.layers)
    assert np.abs(model(want["inputs"])[0] - want["outputs_hard_sigmoid"]).max() <= 2e-6


def weights_only_with_version(tmp_path, version):
    """keras220_weights.h5 with another (or no) keras_version root attribute."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "weights.h5"
    path.write_bytes((KERAS / "keras220_weights.h5").read_bytes())
    with h5py.File(path, "r+") as root:
        del root.attrs["keras_version"]
        if version is not None:
            root.attrs.create("keras_version", version.encode(), dtype=h5py.string_dtype("ascii"))
    return path


@pytest.mark.parametrize(
    "version, gate",
    [
        ("2.0.0", "hard_sigmoid"),  # Keras 2.0.0 - 2.2.5: LSTM(recurrent_activation="hard_sigmoid")
        ("2.2.0", "hard_sigmoid"),
        ("2.2.5", "hard_sigmoid"),
        ("2.3.0", "sigmoid"),  # Keras 2.3.0 changed the default
        ("2.3.1", "sigmoid"),
        ("2.0.8-tf", "hard_sigmoid"),  # tf.keras of TensorFlow 1.x before 1.13
        ("2.1.6-tf", "hard_sigmoid"),
        ("2.3.0-tf", "sigmoid"),  # TensorFlow 2.2
        ("2.4.0", "sigmoid"),  # TensorFlow 2.3 - 2.5
        ("2.6.0", "sigmoid"),
        ("2.21.0", "sigmoid"),  # tf_keras
        ("3.15.1", "sigmoid"),
    ],
)
def test_weights_only_defaults_by_keras_version(tmp_path, version, gate):
    model = fastlstm.from_keras(weights_only_with_version(tmp_path, version))
    assert [cell.recurrent_activation for cell in model.layers] == [gate, gate]
    assert [cell.activation for cell in model.layers] == ["tanh", "tanh"]


@pytest.mark.parametrize(
    "version, message",
    [
        ("2.2.4-tf", (r"keras_version '2\.2\.4-tf', which tf\.keras writes both in TensorFlow 1\.13 - 1\.15 "
                      r"\(LSTM default recurrent_activation 'hard_sigmoid'\) and in TensorFlow 2\.0 - 2\.1")),
        (None, r"records no keras_version, so the LSTMs' default recurrent_activation is unknown"),
        ("1.2.2", r"keras_version '1\.2\.2', whose LSTM default recurrent_activation is not known here"),
        ("2.5.0-tf", r"keras_version '2\.5\.0-tf', whose LSTM default"),
        ("nightly", r"keras_version 'nightly', whose LSTM default"),
    ],
)  # fmt: skip
def test_weights_only_versions_that_do_not_tell_the_default(tmp_path, version, message):
    path = weights_only_with_version(tmp_path, version)
    with pytest.raises(ValueError, match=message + r".*pass recurrent_activation='hard_sigmoid'"):
        fastlstm.from_keras(path)
    model = fastlstm.from_keras(path, recurrent_activation="hard_sigmoid")
    assert [cell.recurrent_activation for cell in model.layers] == ["hard_sigmoid"] * 2


def test_overrides_replace_the_saved_options():
    pytest.importorskip("h5py")
    model = fastlstm.from_keras(
        KERAS / "legacy_hard_sigmoid.h5", recurrent_activation="sigmoid", activation="relu"
    )
    assert [(c.recurrent_activation, c.activation) for c in model.layers] == [("sigmoid", "relu")] * 2
    model = fastlstm.from_keras(
        KERAS / "hard_sigmoid.keras",
        recurrent_activation=["hard_sigmoid", None],
        activation=[None, "softsign"],
    )
    assert [(c.recurrent_activation, c.activation) for c in model.layers] == [
        ("hard_sigmoid", "tanh"),
        ("keras3_hard_sigmoid", "softsign"),
    ]
    ((fw, bw),) = fastlstm.from_keras(
        KERAS / "legacy_weights_bidi.h5", recurrent_activation=["hard_sigmoid"]
    ).layers
    assert fw.recurrent_activation == bw.recurrent_activation == "hard_sigmoid"
    with pytest.raises(ValueError, match=r"recurrent_activation has 3 entries but the model has 2 cells"):
        fastlstm.from_keras(KERAS / "legacy_hard_sigmoid.h5", recurrent_activation=["sigmoid"] * 3)
    with pytest.raises(ValueError, match=r"activation has 2 entries but the model has 1 cells"):
        fastlstm.from_keras(KERAS / "legacy_weights_bidi.h5", activation=["tanh", "tanh"])


def test_recurrent_activation_by_keras_version(monkeypatch):
    """A layer object's hard_sigmoid gates: Keras 2's formula for tf_keras, Keras 3's for keras 3."""
    weights = stacked_weights()
    base = dict(keras_config("stacked")[1]["config"], recurrent_activation="hard_sigmoid")
    for package, module, version, gate in (
        ("tf_keras", "tf_keras.src.layers.rnn.lstm", "2.21.0", "hard_sigmoid"),
        ("keras", "keras.src.layers", "3.15.1", "keras3_hard_sigmoid"),
    ):
        stand_in_package = types.ModuleType(package)
        stand_in_package.__version__ = version
        monkeypatch.setitem(sys.modules, package, stand_in_package)
        assert fastlstm.from_keras(lstm(base, weights, module=module)).layers[0].recurrent_activation == gate
    with pytest.raises(
        ValueError, match=r"LSTM 'lstm': recurrent_activation 'relu' is not supported; fastlstm's gates"
    ):
        fastlstm.from_keras(lstm(dict(base, recurrent_activation="relu"), weights))


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


def keras3_chain_config(layers):
    """Keras 3's get_config() of the same chain: dict nodes whose args are tuples (not lists)."""
    entries = []
    for previous, layer in zip([None, *layers], layers):
        tensor = {
            "class_name": "__keras_tensor__",
            "config": {"keras_history": [getattr(previous, "name", ""), 0, 0]},
        }
        entries.append(
            {"class_name": type(layer).__name__, "name": layer.name, "config": {"name": layer.name},
             "inbound_nodes": [] if previous is None else [{"args": (tensor,), "kwargs": {"training": False}}]}
        )  # fmt: skip
    return {
        "layers": entries,
        "input_layers": [layers[0].name, 0, 0],
        "output_layers": [layers[-1].name, 0, 0],
    }


def test_keras3_functional_object():
    want = expected("stacked")
    model = stacked_model()
    model.get_config = lambda: keras3_chain_config(model.layers)
    outputs, _ = fastlstm.from_keras(model)(want["inputs"])
    assert np.abs(outputs - want["outputs"]).max() < 2e-6


def test_functional_model_objects_must_be_plain_chains():
    model = stacked_model()
    layers = model.layers
    lstms = [layer.name for layer in layers if type(layer).__name__ == "LSTM"]
    # the second LSTM fed from the input instead of from the layer before it: not a chain
    model.get_config = lambda: chain_config(layers, {lstms[1]: [[[layers[0].name, 0, 0, {}]]]})
    with pytest.raises(
        ValueError, match=rf"Functional model 'functional': layer '{layers[1].name}' \(LSTM\) is not on"
    ):
        fastlstm.from_keras(model)
    # a layer called twice
    model.get_config = lambda: chain_config(layers, {lstms[1]: [[[layers[2].name, 0, 0, {}]]] * 2})
    with pytest.raises(ValueError, match=rf"layer '{lstms[1]}' \(LSTM\) is called 2 times"):
        fastlstm.from_keras(model)
    subclassed = stand_in("MyModel", name="mine", layers=layers, get_config=dict)
    with pytest.raises(
        ValueError, match=r"model class 'MyModel' is not supported; fastlstm converts Sequential"
    ):
        fastlstm.from_keras(subclassed)


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
