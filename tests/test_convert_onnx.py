"""fastlstm.from_onnx against ONNX's own backend test cases and onnxruntime (1.32, CPU).

onnxruntime's CPU LSTM computes float32 only and refuses layout=1, so float64 and
layout 1 are checked against ONNX's reference implementation
(``onnx.reference.ReferenceEvaluator``, which ignores ``sequence_lens``,
``clip`` and ``activations``) and against onnxruntime's layout-0 run, transposed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
from fastlstm.convert import onnx_initial_state, onnx_outputs
from fastlstm.io import OnnxFileError, read_onnx_lstm

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

T, BATCH, INPUT, HIDDEN = 6, 5, 3, 4
LENGTHS = np.array([6, 1, 4, 0, 3], np.int32)
ELEMENT = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def weights(direction, dtype=np.float32, seed=0, peepholes=False, bias=True):
    directions = 2 if direction == "bidirectional" else 1
    gen = np.random.default_rng(seed)
    found = {
        "W": gen.uniform(-0.5, 0.5, (directions, 4 * HIDDEN, INPUT)).astype(dtype),
        "R": gen.uniform(-0.5, 0.5, (directions, 4 * HIDDEN, HIDDEN)).astype(dtype),
    }
    if bias:
        found["B"] = gen.uniform(-0.5, 0.5, (directions, 8 * HIDDEN)).astype(dtype)
    if peepholes:
        found["P"] = gen.uniform(-0.5, 0.5, (directions, 3 * HIDDEN)).astype(dtype)
    return found


def lstm_graph(constants, runtime, dtype=np.float32, opset=14, as_constant_nodes=False, **attributes):
    """A model of one LSTM node: ``constants`` as initializers (or Constant nodes), ``runtime`` as inputs.

    ``runtime`` maps input slots (X, sequence_lens, initial_h, initial_c) to their shapes.
    """
    slots = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    used = {**constants, **runtime}
    last = max(k for k, slot in enumerate(slots) if slot in used)
    names = [slot if slot in used else "" for slot in slots[: last + 1]]
    nodes = []
    if as_constant_nodes:
        nodes = [
            helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))
            for name, value in constants.items()
        ]
    attributes.setdefault("hidden_size", HIDDEN)
    nodes.append(helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], name="lstm", **attributes))
    inputs = [
        helper.make_tensor_value_info(
            slot, TensorProto.INT32 if slot == "sequence_lens" else ELEMENT[dtype], list(shape)
        )
        for slot, shape in runtime.items()
    ]
    outputs = [helper.make_tensor_value_info(name, ELEMENT[dtype], None) for name in ("Y", "Y_h", "Y_c")]
    initializers = [] if as_constant_nodes else [numpy_helper.from_array(v, k) for k, v in constants.items()]
    graph = helper.make_graph(nodes, "lstm_graph", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_fastlstm(model_proto, feeds, layout=0):
    """The model from from_onnx, run on the ONNX inputs, as (Y, Y_h, Y_c) in ONNX's layout."""
    model = fastlstm.from_onnx(model_proto)
    outputs, states = model(
        feeds["X"],
        sequence_length=feeds.get("sequence_lens"),
        initial_state=onnx_initial_state(feeds.get("initial_h"), feeds.get("initial_c"), layout),
        time_major=layout == 0,
    )
    return onnx_outputs(outputs, states, layout)


def feeds_for(direction, dtype=np.float32, lengths=True, initial=True, seed=1, layout=0):
    directions = 2 if direction == "bidirectional" else 1
    gen = np.random.default_rng(seed)
    feeds = {"X": gen.uniform(-1, 1, (T, BATCH, INPUT)).astype(dtype)}
    if lengths:
        feeds["sequence_lens"] = LENGTHS
    if initial:
        feeds["initial_h"] = gen.uniform(-1, 1, (directions, BATCH, HIDDEN)).astype(dtype)
        feeds["initial_c"] = gen.uniform(-1, 1, (directions, BATCH, HIDDEN)).astype(dtype)
    if layout == 1:
        feeds = {k: (v if k == "sequence_lens" else v.swapaxes(0, 1).copy()) for k, v in feeds.items()}
    return feeds


def runtime_shapes(feeds):
    return {slot: value.shape for slot, value in feeds.items()}


# -------------------------------------------------------------- ONNX's backend test cases


def backend_cases():
    """Every case of onnx.backend.test.case.node.lstm: (name, node, inputs, outputs)."""
    lstm_cases = pytest.importorskip("onnx.backend.test.case.node.lstm")
    cases = []

    def collect(node, inputs, outputs, name, **kwargs):
        cases.append((name, node, inputs, outputs))

    original = lstm_cases.expect
    lstm_cases.expect = collect
    try:
        for method in sorted(m for m in dir(lstm_cases.LSTM) if m.startswith("export")):
            getattr(lstm_cases.LSTM, method)()
    finally:
        lstm_cases.expect = original
    return cases


BACKEND_CASES = backend_cases()


def test_backend_suite_has_the_expected_cases():
    names = {name for name, *_ in BACKEND_CASES}
    assert {
        "test_lstm_defaults",
        "test_lstm_with_initial_bias",
        "test_lstm_with_peepholes",
        "test_lstm_batchwise",
        "test_lstm_reverse",
        "test_lstm_bidirectional",
    } <= names


@pytest.mark.parametrize("case", BACKEND_CASES, ids=[name for name, *_ in BACKEND_CASES])
def test_onnx_backend_case(case):
    name, node, inputs, expected = case
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attributes.items()}
    slots = dict(zip(node.input, inputs))
    constants = {slot: slots[slot] for slot in ("W", "R", "B", "P") if slots.get(slot) is not None}
    feeds = {slot: slots[slot] for slot in ("X", "sequence_lens", "initial_h", "initial_c") if slot in slots}
    proto = lstm_graph(constants, runtime_shapes(feeds), **attributes)
    got = dict(zip(("Y", "Y_h", "Y_c"), run_fastlstm(proto, feeds, attributes.get("layout", 0))))
    wanted = [out for out in node.output if out]
    assert len(wanted) == len(expected)
    errors = []
    for out, want in zip(wanted, expected):
        assert got[out].shape == want.shape and got[out].dtype == want.dtype
        errors.append(np.abs(got[out] - want).max())
    assert max(errors) <= 2e-6, (name, errors)


# ---------------------------------------------------------------- onnxruntime parity


def ort_run(model_proto, feeds):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def compare(ours, theirs, feeds):
    """Max abs error over Y, Y_h, Y_c; rows of length 0 compared as documented."""
    (y, y_h, y_c), (t_y, t_h, t_c) = ours, theirs
    assert y.shape == t_y.shape and y_h.shape == t_h.shape and y_c.shape == t_c.shape
    errors = [np.abs(y - t_y).max()]
    lengths = feeds.get("sequence_lens")
    rows = np.ones(BATCH, bool) if lengths is None else lengths > 0
    errors += [np.abs(y_h[:, rows] - t_h[:, rows]).max(), np.abs(y_c[:, rows] - t_c[:, rows]).max()]
    if not rows.all():
        # Past each length Y is zero in both; a row of length 0 keeps its initial state here
        # (TF's rule) where onnxruntime gives zeros.
        for t, b in zip(*np.nonzero(np.arange(T)[:, None] >= lengths[None, :])):
            assert not y[t, :, b].any() and not t_y[t, :, b].any()
        assert not t_h[:, ~rows].any() and not t_c[:, ~rows].any()
        initial = feeds.get("initial_h")
        want_h = 0 if initial is None else initial[:, ~rows]
        np.testing.assert_array_equal(y_h[:, ~rows], np.broadcast_to(want_h, y_h[:, ~rows].shape))
    return max(errors)


ORT_CASES = {
    "forward": ({"direction": "forward"}, {}),
    "forward_no_bias_no_lengths": ({}, {"bias": False, "lengths": False, "initial": False}),
    "reverse": ({"direction": "reverse"}, {}),
    "bidirectional": ({"direction": "bidirectional"}, {}),
    "peepholes": ({"direction": "forward"}, {"peepholes": True}),
    "peepholes_bidirectional": ({"direction": "bidirectional"}, {"peepholes": True}),
    "clip": ({"direction": "forward", "clip": 0.7}, {}),
    "clip_peepholes_reverse": ({"direction": "reverse", "clip": 0.9}, {"peepholes": True}),
    "hard_sigmoid_gates": (
        {
            "activations": ["HardSigmoid", "Tanh", "Tanh"],
            "activation_alpha": [0.3],
            "activation_beta": [0.45],
        },
        {},
    ),
    "hard_sigmoid_default_gates": ({"activations": ["HardSigmoid", "Tanh", "Tanh"]}, {}),
    "bidirectional_mixed_activations": (
        {
            "direction": "bidirectional",
            "activations": ["Sigmoid", "Softsign", "Softsign", "HardSigmoid", "Tanh", "Tanh"],
            "activation_alpha": [0.25],
            "activation_beta": [0.6],
        },
        {},
    ),
    "elu": ({"activations": ["Sigmoid", "Elu", "Elu"]}, {}),
    "hard_sigmoid_candidate": ({"activations": ["Sigmoid", "HardSigmoid", "HardSigmoid"]}, {}),
    "affine_identity": (
        {
            "activations": ["Sigmoid", "Affine", "Affine"],
            "activation_alpha": [1.0, 1.0],
            "activation_beta": [0.0, 0.0],
        },
        {},
    ),
    "opset_7": ({"opset": 7}, {}),
    "constant_nodes": ({"as_constant_nodes": True, "direction": "bidirectional"}, {}),
}


@pytest.mark.parametrize("case", sorted(ORT_CASES))
def test_onnxruntime_parity(case):
    attributes, options = ORT_CASES[case]
    attributes = dict(attributes)
    direction = attributes.get("direction", "forward")
    graph_options = {key: attributes.pop(key) for key in ("opset", "as_constant_nodes") if key in attributes}
    constants = weights(direction, peepholes=options.get("peepholes", False), bias=options.get("bias", True))
    feeds = feeds_for(direction, lengths=options.get("lengths", True), initial=options.get("initial", True))
    proto = lstm_graph(constants, runtime_shapes(feeds), **graph_options, **attributes)
    error = compare(run_fastlstm(proto, feeds), ort_run(proto, feeds), feeds)
    assert error <= 2e-6, error


def test_layout_1_is_layout_0_transposed():
    """onnxruntime refuses layout=1: its layout-0 run of the same node, transposed, is the reference."""
    direction = "bidirectional"
    constants = weights(direction, peepholes=True)
    feeds = feeds_for(direction)
    want_y, want_h, want_c = ort_run(lstm_graph(constants, runtime_shapes(feeds), direction=direction), feeds)
    batchwise = feeds_for(direction, layout=1)
    proto = lstm_graph(constants, runtime_shapes(batchwise), direction=direction, layout=1)
    y, y_h, y_c = run_fastlstm(proto, batchwise, layout=1)
    rows = LENGTHS > 0
    assert y.shape == (BATCH, T, 2, HIDDEN) and y_h.shape == (BATCH, 2, HIDDEN)
    assert np.abs(y - want_y.transpose(2, 0, 1, 3)).max() <= 2e-6
    assert np.abs(y_h[rows] - want_h.transpose(1, 0, 2)[rows]).max() <= 2e-6
    assert np.abs(y_c[rows] - want_c.transpose(1, 0, 2)[rows]).max() <= 2e-6


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_float64_against_the_onnx_reference(direction, layout):
    reference = pytest.importorskip("onnx.reference")
    constants = weights(direction, np.float64, peepholes=True)
    feeds = feeds_for(direction, np.float64, lengths=False, layout=layout)
    proto = lstm_graph(constants, runtime_shapes(feeds), np.float64, direction=direction, layout=layout)
    want = reference.ReferenceEvaluator(proto).run(None, feeds)
    got = run_fastlstm(proto, feeds, layout)
    assert fastlstm.from_onnx(proto).dtype == np.float64
    for ours, theirs in zip(got, want, strict=True):
        assert ours.dtype == np.float64 and ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-12


def test_weights_are_mapped_to_tf_order():
    """Direct check of the mapping: kernel = [W.T; R.T], bias = Wb + Rb, (i, o, f, c) -> (i, c, f, o)."""
    constants = weights("forward", peepholes=True)
    cell = fastlstm.from_onnx(lstm_graph(constants, {"X": (T, BATCH, INPUT)})).layers[0]
    w, r, b, p = (constants[k][0] for k in ("W", "R", "B", "P"))
    order = np.r_[0:4, 12:16, 8:12, 4:8]  # 4 units: i, c, f, o blocks of ONNX's i, o, f, c
    assert np.array_equal(cell.kernel, np.concatenate([w.T, r.T])[:, order])
    total = b[:16].astype(np.float64) + b[16:].astype(np.float64)
    assert np.array_equal(cell.bias, total[order].astype(np.float32))
    assert np.array_equal(cell.w_i_diag, p[:4]) and np.array_equal(cell.w_o_diag, p[4:8])
    assert np.array_equal(cell.w_f_diag, p[8:]) and cell.forget_bias == 0.0


def test_half_precision_storage_is_decoded_bit_for_bit():
    """float16 / bfloat16 weights in raw_data or in int32_data (16 bits each): what onnx.numpy_helper reads."""
    constants = weights("forward")
    values = {"W": constants["W"], "R": constants["R"]}
    for data_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        for raw in (False, True):
            tensors = [
                helper.make_tensor(k, data_type, v.shape, v.ravel().tolist()) for k, v in values.items()
            ]
            if raw:  # the same bits moved to raw_data
                for tensor in tensors:
                    bits = np.array(tensor.int32_data, "<u2").tobytes()
                    tensor.ClearField("int32_data")
                    tensor.raw_data = bits
            proto = lstm_graph({}, {"X": (T, BATCH, INPUT)})
            proto.graph.initializer.extend(tensors)
            proto.graph.node[0].input[1:3] = ["W", "R"]
            node = read_onnx_lstm(proto)
            for got, tensor in ((node.W, tensors[0]), (node.R, tensors[1])):
                want = numpy_helper.to_array(tensor).astype(np.float32)
                assert got.dtype == np.float32 and np.array_equal(got, want)
                assert np.abs(got - values[tensor.name]).max() < 1e-2  # and near the float32 values


def test_node_selection_and_reader(tmp_path):
    constants = weights("forward")
    proto = lstm_graph(constants, {"X": (T, BATCH, INPUT), "initial_h": (1, BATCH, HIDDEN)})
    second = helper.make_node("LSTM", ["Y_2d", "W", "R"], ["Y2"], name="second", hidden_size=HIDDEN)
    squeeze_axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    proto.graph.initializer.append(squeeze_axes)
    proto.graph.node.extend([helper.make_node("Squeeze", ["Y", "axes"], ["Y_2d"]), second])
    with pytest.raises(OnnxFileError, match=r"holds 2 LSTM nodes \('lstm', 'second'\); pick one with node="):
        fastlstm.from_onnx(proto)
    path = tmp_path / "two.onnx"
    onnx.save(proto, path)
    node = read_onnx_lstm(path, node="lstm")
    assert node.runtime_inputs == {"X": "X", "initial_h": "initial_h"} and node.initial_h is None
    assert np.array_equal(node.W, constants["W"]) and node.direction == "forward" and node.layout == 0
    assert read_onnx_lstm(path, node="Y2").name == "second"  # by an output's name
    assert fastlstm.from_onnx(str(path), node="second").layers[0].num_units == HIDDEN
    with pytest.raises(
        OnnxFileError, match=r"no LSTM node named 'third' \(its LSTM nodes: 'lstm', 'second'\)"
    ):
        fastlstm.from_onnx(path, node="third")


# --------------------------------------------------------------------------- errors


def with_attributes(**attributes):
    direction = attributes.get("direction", "forward")
    return lstm_graph(weights(direction), {"X": (T, BATCH, INPUT)}, **attributes)


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"input_forget": 1}, r"input_forget=1 \(input and forget gates coupled\) is not supported"),
        ({"activations": ["Sigmoid", "Tanh", "Relu"]}, r"activations g = Tanh and h = Relu .* differ"),
        ({"activations": ["Tanh", "Tanh", "Tanh"]}, r"activations\[0\] \(f, the gates' activation\) = Tanh"),
        (
            {"activations": ["Sigmoid", "Tanh"]},
            r"activations has 2 entries .* takes 3 \(f, g, h per direction\)",
        ),
        ({"activations": ["Sigmoid", "Swish", "Swish"]}, r"activations\[1\] = 'Swish' is not an ONNX RNN"),
        (
            {"activations": ["Sigmoid", "Softplus", "Softplus"]},
            r"activations\[1\] \(g and h\) = Softplus has no exact fastlstm equivalent",
        ),
        (
            {"activations": ["Sigmoid", "LeakyRelu", "LeakyRelu"]},
            r"= LeakyRelu\(alpha=0.01\) has no exact fastlstm equivalent",
        ),
        (
            {"activations": ["Sigmoid", "Affine", "Affine"], "activation_alpha": [0.5, 0.5]},
            r"= Affine\(alpha=0.5, beta=0.0\) has no exact",
        ),
        ({"clip": -1.0}, r"clip=-1.0 must be > 0"),
        ({"direction": "sideways"}, r"direction = 'sideways' is not one of"),
        ({"layout": 2}, r"layout = 2 is not 0 or 1"),
        ({"hidden_size": 5}, r"hidden_size = 5 but R has shape \(1, 16, 4\)"),
        ({"output_sequence": 1}, r"unknown attribute 'output_sequence'"),
    ],
)
def test_unsupported_or_malformed_attributes(attributes, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.from_onnx(with_attributes(**attributes))


def test_unreadable_nodes(tmp_path):
    constants = weights("forward")
    with pytest.raises(OnnxFileError, match=r"opset 1, whose LSTM \(with output_sequence\) is not supported"):
        fastlstm.from_onnx(lstm_graph(constants, {"X": (T, BATCH, INPUT)}, opset=1))
    computed = lstm_graph({"R": constants["R"]}, {"X": (T, BATCH, INPUT), "W": constants["W"].shape})
    with pytest.raises(OnnxFileError, match=r"input W \('W'\) is computed at run time \(a graph input\)"):
        fastlstm.from_onnx(computed)
    bad = lstm_graph({**constants, "W": constants["W"][:, :, :2].copy()}, {"X": (T, BATCH, INPUT)})
    assert fastlstm.from_onnx(bad).input_size == 2  # W defines the input size
    bad = lstm_graph({**constants, "B": constants["B"][:, :8].copy()}, {"X": (T, BATCH, INPUT)})
    with pytest.raises(OnnxFileError, match=r"B has shape \(1, 8\); expected \(1, 32\)"):
        fastlstm.from_onnx(bad)
    with pytest.raises(OnnxFileError, match=r"R has shape \(2, 16, 4\); expected \[num_directions=1"):
        fastlstm.from_onnx(lstm_graph(weights("bidirectional"), {"X": (T, BATCH, INPUT)}))
    external = lstm_graph(constants, {"X": (T, BATCH, INPUT)})
    external.graph.initializer[0].data_location = TensorProto.EXTERNAL
    with pytest.raises(OnnxFileError, match=r"initializer 'W' is stored outside the model file"):
        fastlstm.from_onnx(external)
    integer = lstm_graph({**constants, "W": constants["W"].astype(np.int32)}, {"X": (T, BATCH, INPUT)})
    with pytest.raises(OnnxFileError, match=r"input W has dtype int32; LSTM weights are floating point"):
        fastlstm.from_onnx(integer)
    (tmp_path / "text.onnx").write_bytes(b"not a model at all")
    with pytest.raises(
        OnnxFileError, match=r"text.onnx: not a valid ONNX model|text.onnx: not an ONNX model"
    ):
        fastlstm.from_onnx(tmp_path / "text.onnx")
    with pytest.raises(FileNotFoundError, match=r"ONNX file .*absent.onnx does not exist"):
        fastlstm.from_onnx(tmp_path / "absent.onnx")
    with pytest.raises(TypeError, match=r"expected the path of an .onnx file or an onnx.ModelProto, got int"):
        fastlstm.from_onnx(3)


def test_lstm_inside_a_subgraph_is_named():
    inner = lstm_graph(weights("forward"), {"X": (T, BATCH, INPUT)}).graph
    condition = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    if_node = helper.make_node("If", ["cond"], ["Y"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph(
        [if_node], "outer", [condition], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    )
    with pytest.raises(OnnxFileError, match=r"holds no LSTM node; 2 LSTM node\(s\) sit inside subgraphs"):
        fastlstm.from_onnx(helper.make_model(graph))


def test_initial_state_and_output_helpers():
    h = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    (((c_fw, h_fw), (c_bw, h_bw)),) = onnx_initial_state(h, None)
    assert np.array_equal(h_fw, h[0]) and np.array_equal(h_bw, h[1]) and not c_fw.any() and not c_bw.any()
    (((c_fw, h_fw), _),) = onnx_initial_state(None, h.transpose(1, 0, 2), layout=1)
    assert np.array_equal(c_fw, h[0]) and not h_fw.any()
    assert onnx_initial_state() is None
    with pytest.raises(ValueError, match=r"initial_h has shape \(2, 3, 4\) but initial_c \(1, 3, 4\)"):
        onnx_initial_state(h, h[:1])
    with pytest.raises(ValueError, match=r"layout must be 0 or 1, got 2"):
        onnx_outputs(np.zeros((1, 1, 1)), [None], layout=2)
