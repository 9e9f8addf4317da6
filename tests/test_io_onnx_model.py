"""Hostile ONNX files: fastlstm.from_onnx / fastlstm.io.read_onnx_lstm on damaged and crafted models.

The only possible failure is a ``ValueError`` (``OnnxFileError`` from the reader) whose message
names the file; no allocation beyond what the file holds; no hang. Seeds are small models made
here with onnx.helper (deterministic bytes); the regression corpus in tests/fuzz_corpus/onnx is
written by ``python tests/test_io_onnx_model.py --write-corpus`` from :func:`corpus_cases`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlstm
from fastlstm.io import OnnxFileError
from mutations import (
    EXAMPLE_TIME_LIMIT,
    apply_mutations,
    byte_mutations,
    outcomes_under_memory_limit,
    time_limit,
)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

CORPUS = Path(__file__).parent / "fuzz_corpus" / "onnx"
HIDDEN, INPUT = 4, 3
EXAMPLES = max(300, settings.default.max_examples)


def _weights(directions, seed, dtype=np.float32):
    gen = np.random.default_rng(seed)
    return {
        "W": gen.uniform(-0.5, 0.5, (directions, 4 * HIDDEN, INPUT)).astype(dtype),
        "R": gen.uniform(-0.5, 0.5, (directions, 4 * HIDDEN, HIDDEN)).astype(dtype),
        "B": gen.uniform(-0.5, 0.5, (directions, 8 * HIDDEN)).astype(dtype),
        "P": gen.uniform(-0.5, 0.5, (directions, 3 * HIDDEN)).astype(dtype),
    }


def _model(nodes, initializers, inputs=("X",), opset=14):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in inputs],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _bytes(model) -> bytes:
    return model.SerializeToString(deterministic=True)


def seed_forward() -> bytes:
    """Initializers in raw_data, peepholes, runtime sequence_lens and initial state."""
    w = _weights(1, 0)
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B", "seq", "h0", "c0", "P"],
        ["Y", "Y_h", "Y_c"],
        name="lstm",
        hidden_size=HIDDEN,
    )
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    return _bytes(_model([node], inits, inputs=("X", "seq", "h0", "c0")))


def seed_bidirectional() -> bytes:
    """Constant nodes, values in typed fields (float_data), activations and clip."""
    w = _weights(2, 1)
    constants = [
        helper.make_node(
            "Constant",
            [],
            [k],
            value=helper.make_tensor(k, TensorProto.FLOAT, v.shape, v.ravel().tolist(), raw=False),
        )
        for k, v in w.items()
        if k in ("W", "R")
    ]
    bias = helper.make_tensor("B", TensorProto.FLOAT, w["B"].shape, w["B"].ravel().tolist(), raw=False)
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B"],
        ["Y"],
        name="bi",
        hidden_size=HIDDEN,
        direction="bidirectional",
        clip=2.5,
        activations=["HardSigmoid", "Tanh", "Tanh", "Sigmoid", "Softsign", "Softsign"],
        activation_alpha=[0.25],
        activation_beta=[0.55],
    )
    return _bytes(_model([*constants, node], [bias]))


def seed_reverse_half() -> bytes:
    """float16 and bfloat16 weights, reverse, layout 1, opset 7 (an older writer)."""
    w = _weights(1, 2, np.float16)
    r_bits = w["R"].astype(np.float32).view(np.uint32) >> 16
    r = helper.make_tensor("R", TensorProto.BFLOAT16, w["R"].shape, r_bits.ravel().tolist(), raw=False)
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=HIDDEN, direction="reverse")
    return _bytes(_model([node], [numpy_helper.from_array(w["W"], "W"), r], opset=7))


SEEDS = {
    "forward.onnx": seed_forward(),
    "bidirectional.onnx": seed_bidirectional(),
    "reverse_half.onnx": seed_reverse_half(),
}


def check_model(model):
    """A model read without error has a layer whose cells fit together."""
    (layer,) = model.layers
    cells = layer if isinstance(layer, tuple) else (getattr(layer, "cell", layer),)
    for cell in cells:
        assert cell.num_units == HIDDEN or cell.kernel.shape[1] == 4 * cell.num_units
        assert cell.kernel.shape == (cell.input_size + cell.num_units, 4 * cell.num_units)


def outcome(path):
    """'loaded', or the ValueError; anything else propagates (and fails the test)."""
    try:
        with time_limit(EXAMPLE_TIME_LIMIT):
            check_model(fastlstm.from_onnx(path))
    except ValueError as error:
        assert str(path) in str(error), error
        return error
    return "loaded"


def test_seeds_load():
    for name, data in SEEDS.items():
        node = onnx.ModelProto.FromString(data)
        assert fastlstm.from_onnx(node) is not None, name


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SEEDS)), mutations=byte_mutations(max_position=4096, max_delete=64))
def test_fuzz_byte_mutations(tmp_path, name, mutations):
    """Flip, insert, delete, truncate, overwrite: a model or a ValueError naming the file."""
    path = tmp_path / name
    path.write_bytes(apply_mutations(SEEDS[name], mutations))
    outcome(path)


TENSOR_FIELDS = st.fixed_dictionaries(
    {
        "dims": st.lists(
            st.one_of(st.integers(-3, 40), st.sampled_from([2**31, 2**40, 2**62, 2**63 - 1, -(2**63)])),
            max_size=4,
        ),
        "data_type": st.integers(0, 24),
        "raw": st.one_of(st.none(), st.binary(max_size=300)),
        "floats": st.lists(st.floats(width=32), max_size=80),
        "ints": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=80),
        "external": st.booleans(),
    }
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.sampled_from(["W", "R", "B", "P"]), fields=TENSOR_FIELDS)
def test_fuzz_tensor_fields(tmp_path, slot, fields):
    """Any dims, data type and stored values for one weight: a model or a ValueError naming the file."""
    model = onnx.ModelProto.FromString(SEEDS["forward.onnx"])
    tensor = next(t for t in model.graph.initializer if t.name == slot)
    tensor.ClearField("raw_data")
    tensor.ClearField("dims")
    tensor.dims.extend(fields["dims"])
    tensor.data_type = fields["data_type"]
    if fields["raw"] is not None:
        tensor.raw_data = fields["raw"]
    tensor.float_data.extend(fields["floats"])
    tensor.int32_data.extend(fields["ints"])
    tensor.int64_data.extend(fields["ints"])
    tensor.double_data.extend(fields["floats"])
    if fields["external"]:
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "../../../../etc/passwd"
    path = tmp_path / "fields.onnx"
    path.write_bytes(_bytes(model))
    outcome(path)


# ------------------------------------------------------------------------- allocation


def test_huge_claims_are_refused_under_a_memory_limit(tmp_path):
    """Claims of terabytes in a small file are errors, not allocations (4 GiB address-space limit)."""
    for name, data in corpus_cases().items():
        if "huge" in name or "2_40" in name:
            (tmp_path / f"{name}.onnx").write_bytes(data[0])
    lines = outcomes_under_memory_limit(sorted(tmp_path.glob("*.onnx")), "from_onnx")
    assert len(lines) >= 3 and all(line.endswith(" ValueError") for line in lines), lines


# ---------------------------------------------------------------------- regression corpus


def _with_initializer(seed: bytes, slot: str, edit) -> bytes:
    model = onnx.ModelProto.FromString(seed)
    edit(next(t for t in model.graph.initializer if t.name == slot))
    return _bytes(model)


def _with_lstm_attribute(seed: bytes, attribute, replace=True) -> bytes:
    model = onnx.ModelProto.FromString(seed)
    node = next(n for n in model.graph.node if n.op_type == "LSTM")
    if replace:
        kept = [a for a in node.attribute if a.name != attribute.name]
        del node.attribute[:]
        node.attribute.extend(kept)
    node.attribute.append(attribute)
    return _bytes(model)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _nested_ifs(depth: int) -> bytes:
    """A model whose graph nests ``depth`` If nodes (encoded by hand: protobuf's Python API stops at 100)."""
    graph = b""
    for _ in range(depth):
        # AttributeProto: name (1), type (20) = GRAPH (5), g (6); NodeProto: op_type (4), attribute (5)
        attribute = _field(1, b"then_branch") + _varint(20 << 3) + _varint(5) + _field(6, graph)
        graph = _field(1, _field(4, b"If") + _field(5, attribute))
    opset = _varint(2 << 3) + _varint(14)  # OpSetIdProto.version
    return (
        _varint(1 << 3) + _varint(8) + _field(7, graph) + _field(8, opset)
    )  # ir_version, graph, opset_import


def _set_dims(dims, data_type=None):
    def edit(tensor):
        del tensor.dims[:]
        tensor.dims.extend(dims)
        if data_type is not None:
            tensor.data_type = data_type

    return edit


def _external(tensor):
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"


def _float16_bits(tensor):
    tensor.ClearField("raw_data")
    tensor.data_type = TensorProto.FLOAT16
    tensor.int32_data.extend([70000] + [0] * (int(np.prod(tensor.dims)) - 1))


def corpus_cases() -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, regex the ValueError must match, or None when the file loads)."""
    forward = SEEDS["forward.onnx"]
    return {
        "dims_claim_2_40_elements": (
            _with_initializer(forward, "W", _set_dims([1, 2**40, 3])),
            r"initializer 'W': shape \[1, 1099511627776, 3\] needs 13194139533312 bytes but 192 are stored",
        ),
        "dims_overflowing_int64_product_huge": (
            _with_initializer(forward, "R", _set_dims([2**62, 2**62, 4])),
            r"initializer 'R': shape \[4611686018427387904, 4611686018427387904, 4\] is too large for any array",
        ),
        "typed_field_claims_huge_shape": (
            _with_initializer(
                forward,
                "B",
                lambda t: (_set_dims([2**40])(t), t.ClearField("raw_data"), t.float_data.append(1.0)),
            ),
            r"initializer 'B': shape \[1099511627776\] needs 1099511627776 values but 1 are stored",
        ),
        "zero_dim_beside_huge_one": (
            _with_initializer(forward, "W", _set_dims([0, 2**62])),
            r"initializer 'W': shape \[0, 4611686018427387904\] is too large for any array",
        ),
        "negative_dim": (
            _with_initializer(forward, "P", _set_dims([1, -12])),
            r"initializer 'P' has a negative dimension: \[1, -12\]",
        ),
        "external_data_path_traversal": (
            _with_initializer(forward, "W", _external),
            r"initializer 'W' is stored outside the model file \(external data\), which is not read",
        ),
        "float16_bits_out_of_range": (
            _with_initializer(forward, "R", _float16_bits),
            r"initializer 'R': a 16-bit value is stored as 70000",
        ),
        "string_tensor_weight": (
            _with_initializer(forward, "W", _set_dims([1, 16, 3], TensorProto.STRING)),
            r"initializer 'W' has data type code 8; expected float",
        ),
        "hidden_size_as_float": (
            _with_lstm_attribute(seed_reverse_half(), helper.make_attribute("hidden_size", 4.0)),
            r"attribute 'hidden_size' has type code 1, expected 2",
        ),
        "direction_not_utf8": (
            seed_reverse_half().replace(b"reverse", b"rev\xffrse"),
            r"attribute 'direction' is not valid UTF-8",
        ),
        "direction_given_twice": (
            _with_lstm_attribute(
                seed_reverse_half(), helper.make_attribute("direction", "forward"), replace=False
            ),
            r"attribute 'direction' is given twice",
        ),
        "truncated_mid_tensor": (
            forward[: len(forward) // 2],
            r"not a valid ONNX model; the protobuf cannot be parsed",
        ),
        "empty_file": (b"", r"not an ONNX model \(it has no graph\)"),
        "subgraphs_nested_200_deep": (
            _nested_ifs(200),
            r"not a valid ONNX model; the protobuf cannot be parsed",
        ),
        "subgraphs_nested_20_deep": (_nested_ifs(20), r"the main graph holds no LSTM node$"),
    }


def write_corpus():
    CORPUS.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (payload, message) in sorted(corpus_cases().items()):
        (CORPUS / f"{name}.onnx").write_bytes(payload)
        manifest[name] = {"file": f"{name}.onnx", "message": message}
    (CORPUS / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _manifest():
    path = CORPUS / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_corpus_replays(tmp_path, name):
    case = _manifest()[name]
    path = tmp_path / case["file"]
    path.write_bytes((CORPUS / case["file"]).read_bytes())
    result = outcome(path)
    if case["message"] is None:
        assert result == "loaded"
    else:
        assert isinstance(result, OnnxFileError) and re.search(case["message"], str(result)), result


def test_corpus_is_what_the_generator_makes():
    cases = corpus_cases()
    assert sorted(_manifest()) == sorted(cases)
    for name, case in _manifest().items():
        assert (CORPUS / case["file"]).read_bytes() == cases[name][0], name
        assert case["message"] == cases[name][1], name


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-corpus"]:
        write_corpus()
        print(f"wrote {len(_manifest())} files to {CORPUS}")
