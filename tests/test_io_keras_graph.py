"""Functional Keras models: read when they are a plain chain of layers, refused with the reason otherwise.

The base files are real Keras 3 / tf_keras Functional models made by
tools/golden/make_heads_golden.py; each case edits one thing in their config JSON.
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import GOLDEN
from fastlstm.io import KerasFileError, UnsupportedLayerError, read_keras_weights

HEADS = GOLDEN / "heads"


@pytest.fixture(scope="module")
def h5py():
    return pytest.importorskip("h5py")


def keras3_config(name="functional_classifier.keras") -> dict:
    with zipfile.ZipFile(HEADS / name) as archive:
        return json.loads(archive.read("config.json"))


def with_keras3_config(tmp_path, config, base="functional_classifier.keras"):
    """A copy of a golden .keras file with ``config.json`` replaced."""
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(HEADS / base) as source, zipfile.ZipFile(path, "w") as target:
        for member in source.namelist():
            data = json.dumps(config) if member == "config.json" else source.read(member)
            target.writestr(member, data)
    return path


def tf_keras_config(h5py) -> dict:
    with h5py.File(HEADS / "legacy_functional_classifier.h5", "r") as root:
        return json.loads(root.attrs["model_config"])


def with_tf_keras_config(h5py, tmp_path, config):
    path = tmp_path / "model.h5"
    shutil.copy(HEADS / "legacy_functional_classifier.h5", path)
    with h5py.File(path, "r+") as root:
        root.attrs["model_config"] = json.dumps(config)
    return path


def layer(config, name):
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


def keras_tensor(source, node=0, index=0):
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 5], "keras_history": [source, node, index]},
    }


def test_the_mask_node_and_identity_layers_are_skipped(h5py):
    names = [entry["class_name"] for entry in keras3_config()["config"]["layers"]]
    assert names == ["InputLayer", "Embedding", "Dropout", "NotEqual", "LSTM", "Dense", "Dense"]
    model = read_keras_weights(HEADS / "functional_classifier.keras")
    assert [type(x).__name__ for x in model.layers] == [
        "KerasEmbeddingWeights", "KerasLSTMWeights", "KerasDenseWeights", "KerasDenseWeights",
    ]  # fmt: skip


def test_a_layer_called_twice_is_refused_in_both_kerases(h5py):
    for name in ("functional_shared.keras", "legacy_functional_shared.h5"):
        with pytest.raises(UnsupportedLayerError, match=r"layer 'shared' \(Dense\) is called 2 times"):
            read_keras_weights(HEADS / name)


def two_outputs(c):
    c["config"]["output_layers"] = [["dense_1", 0, 0], ["lstm", 0, 0]]


def extra_head(c):
    c["config"]["layers"].append(
        {"class_name": "Dense", "name": "probe", "config": {"name": "probe", "units": 1},
         "inbound_nodes": [{"args": [keras_tensor("lstm")], "kwargs": {}}]}
    )  # fmt: skip


def mask_of(source, constant=0):
    def edit(c):
        layer(c, "not_equal")["inbound_nodes"][0]["args"] = [keras_tensor(source), constant]

    return edit


def unmask_embedding(c):
    layer(c, "embedding")["config"]["mask_zero"] = False


def set_kwargs(name, **kwargs):
    def edit(c):
        layer(c, name)["inbound_nodes"][0]["kwargs"].update(kwargs)

    return edit


def set_input(name, source, node=0, index=0, count=1):
    def edit(c):
        layer(c, name)["inbound_nodes"][0]["args"] = [keras_tensor(source, node, index)] * count

    return edit


def no_inbound(name):
    def edit(c):
        layer(c, name)["inbound_nodes"] = []

    return edit


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (two_outputs, UnsupportedLayerError, r"the model has 2 outputs; fastlstm reads models with one"),
        (extra_head, UnsupportedLayerError,
         r"layer 'probe' \(Dense\) is not on the path from the input to the output"),
        (set_kwargs("lstm", initial_state=[keras_tensor("dense")]), UnsupportedLayerError,
         r"layer 'lstm' \(LSTM\) is called with \['initial_state'\]"),
        (set_kwargs("dropout", training=True), UnsupportedLayerError,
         r"layer 'dropout' \(Dropout\) is called with training=True; fastlstm runs models in inference mode"),
        (mask_of("input_layer", 1), UnsupportedLayerError,
         r"layer 'not_equal' \(NotEqual\) is passed as a mask; fastlstm reads only the mask of an Embedding"),
        (mask_of("embedding"), UnsupportedLayerError, r"layer 'not_equal' \(NotEqual\) is passed as a mask"),
        (unmask_embedding, UnsupportedLayerError, r"layer 'not_equal' \(NotEqual\) is passed as a mask"),
        (set_kwargs("dense", mask=keras_tensor("lstm")), UnsupportedLayerError,
         r"layer 'lstm' \(LSTM\) is passed as a mask"),
        (set_kwargs("dense", mask=[1, 2]), UnsupportedLayerError, r"'dense' \(Dense\) is called with mask=\[1, 2\]"),
        (set_input("dense", "lstm", index=1), UnsupportedLayerError,
         r"layer 'lstm' \(LSTM\): its output 1 of call 0 is used"),
        (set_input("dense", "lstm", count=2), UnsupportedLayerError,
         r"layer 'dense' \(Dense\) takes 2 tensors and 0 other arguments"),
        (set_input("lstm", "dense"), KerasFileError, r"layer 'dense' \(Dense\) feeds itself: the model graph has a cycle"),
        (set_input("dense", "nowhere"), KerasFileError, r"layer 'dense' \(Dense\) takes its input from 'nowhere'"),
        (no_inbound("dense"), UnsupportedLayerError, r"layer 'dense' \(Dense\) is called 0 times"),
        (lambda c: c["config"].pop("input_layers"), KerasFileError, r"the Functional config has no 'input_layers'"),
        (lambda c: c["config"].update(input_layers=["dense", 0, 0]), KerasFileError,
         r"layer 'dense' \(Dense\) is the model input but not an InputLayer"),
        (lambda c: c["config"].update(output_layers=["dense", "x", 0]), KerasFileError,
         r"\['dense', 'x', 0\] is not a \[layer, node, index\] reference"),
        (lambda c: c["config"].update(output_layers=["ghost", 0, 0]), KerasFileError,
         r"output_layers names 'ghost', which is not a layer"),
        (lambda c: c["config"]["layers"].append(copy.deepcopy(layer(c, "dense"))), KerasFileError,
         r"two layers are named 'dense'"),
        (lambda c: c.update(class_name="MyModel"), UnsupportedLayerError,
         r"model class 'MyModel' is not supported; fastlstm reads Sequential models and Functional models"),
    ],
    ids=[
        "two-outputs", "off-path", "initial-state", "training", "mask-not-zero", "mask-of-vectors",
        "mask-without-mask-zero", "mask-from-a-layer", "mask-constant", "second-output", "two-inputs",
        "cycle", "unknown-source", "uncalled", "no-input", "input-not-input-layer", "bad-reference",
        "unknown-output", "duplicate-name", "subclassed",
    ],
)  # fmt: skip
def test_keras3_graphs_that_are_not_plain_chains(h5py, tmp_path, edit, error, message):
    config = keras3_config()
    edit(config)
    with pytest.raises(error, match=message) as caught:
        read_keras_weights(with_keras3_config(tmp_path, config))
    assert "model.keras: config.json" in str(caught.value)


def test_tf_keras_graph_dialect(h5py, tmp_path):
    """tf.keras writes nodes as [[layer, node, index, kwargs]] and endpoints as lists of them."""
    config = tf_keras_config(h5py)
    assert layer(config, "lstm")["inbound_nodes"] == [[["dropout", 0, 0, {}]]]
    assert config["config"]["input_layers"] == [["input_1", 0, 0]]
    read_keras_weights(with_tf_keras_config(h5py, tmp_path, config))

    kwargs = copy.deepcopy(config)
    layer(kwargs, "lstm")["inbound_nodes"] = [[["dropout", 0, 0, {"initial_state": [["dense", 0, 0]]}]]]
    with pytest.raises(UnsupportedLayerError, match=r"model_config: layer 'lstm' \(LSTM\) is called with"):
        read_keras_weights(with_tf_keras_config(h5py, tmp_path, kwargs))

    masked = copy.deepcopy(config)
    layer(masked, "dense")["inbound_nodes"] = [[["lstm", 0, 0, {"mask": ["embedding", 0, 0]}]]]
    with pytest.raises(UnsupportedLayerError, match=r"layer 'embedding' \(Embedding\) is passed as a mask"):
        read_keras_weights(with_tf_keras_config(h5py, tmp_path, masked))

    joined = copy.deepcopy(config)
    layer(joined, "dense")["inbound_nodes"] = [[["lstm", 0, 0, {}], ["dropout", 0, 0, {}]]]
    with pytest.raises(UnsupportedLayerError, match=r"layer 'dense' \(Dense\) takes 2 tensors"):
        read_keras_weights(with_tf_keras_config(h5py, tmp_path, joined))

    model_class = dict(config, class_name="Model")  # older tf.keras files
    read_keras_weights(with_tf_keras_config(h5py, tmp_path, model_class))


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**63), st.text(max_size=5),
    st.lists(st.integers(-1, 3), max_size=4), st.just([["dense", 0, 0]]), st.just({}),
    st.just({"class_name": "__keras_tensor__", "config": {"keras_history": ["lstm", 0, 0]}}),
)  # fmt: skip


def paths(value, prefix=()):
    """Every (path to a value) in a JSON tree."""
    yield prefix
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        yield from paths(child, (*prefix, key))


CONFIG_PATHS = [p for p in paths(keras3_config()) if p and ("inbound_nodes" in p or p[-1] in (
    "input_layers", "output_layers", "class_name", "name", "mask_zero", "layers"))]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(CONFIG_PATHS), value=JSON_VALUES)
def test_fuzz_functional_graph(h5py, tmp_path, path, value):
    """Any one value of the graph replaced: the file reads, or a KerasFileError says why."""
    config = keras3_config()
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        model = read_keras_weights(with_keras3_config(tmp_path, config))
    except KerasFileError as error:
        assert "model.keras" in str(error)
    else:
        assert len(model.layers) >= 1
