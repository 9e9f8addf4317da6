"""Issue 13: ``recurrent_activation`` (hard sigmoid gates) and ``gate_clip`` (ONNX's ``clip``).

Against the independent numpy reference (``naive.lstm_step``) in float32 and float64, against
onnxruntime for ONNX's HardSigmoid and clip, and the plumbing: saving, compiling only when
used, vectorised gate kernels. Only three new gate kernels are compiled here (hard sigmoid
gates with tanh and relu, clipped sigmoid gates with tanh), the ones the specialisation test
counts too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastlstm
import naive
from cell_helpers import naive_options
from fastlstm import _kernels
from fastlstm._runner import run_layer

TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}

# (cell class, options, reference gate activation): every new option once.
CASES = {
    "hard_sigmoid": (fastlstm.BasicLSTMCell, {"recurrent_activation": "hard_sigmoid"}, "hard_sigmoid"),
    "keras3": (
        fastlstm.BasicLSTMCell,
        {"activation": "relu", "recurrent_activation": "keras3_hard_sigmoid"},
        "keras3_hard_sigmoid",
    ),
    "onnx_hard_sigmoid_peepholes_clips": (
        fastlstm.LSTMCell,
        {
            "use_peepholes": True,
            "cell_clip": 0.9,
            "recurrent_activation": fastlstm.HardSigmoid(0.3, 0.45),
            "gate_clip": 1.2,
        },
        naive.hard_sigmoid_onnx(0.3, 0.45),
    ),
    "gate_clip": (fastlstm.LSTMCell, {"use_peepholes": True, "gate_clip": 0.6}, "sigmoid"),
    "gate_clip_projection": (
        fastlstm.LSTMCell,
        {"num_proj": 3, "proj_clip": 0.5, "gate_clip": 0.8, "recurrent_activation": "hard_sigmoid"},
        "hard_sigmoid",
    ),
}


def built(cls, options, dtype, depth=3, seed=0):
    cell = cls(4, dtype=dtype, **options)
    cell.build(depth, seed=seed)
    gen = np.random.default_rng(seed)
    cell.set_weights([w + gen.uniform(-0.6, 0.6, w.shape) for w in cell.get_weights()])
    return cell


def reference(cell, x, lengths, recurrent):
    options = naive_options(cell)
    options.update(recurrent_activation=recurrent, gate_clip=getattr(cell, "gate_clip", None))
    return naive.dynamic_rnn(x, cell.kernel, cell.bias, lengths, **options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_the_numpy_reference(case, dtype, rng):
    cls, options, recurrent = CASES[case]
    cell = built(cls, options, dtype)
    x = rng.uniform(-2.5, 2.5, (3, 6, 3))
    lengths = [6, 3, 0]
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths, dtype=dtype)
    ref, (ref_c, ref_h) = reference(cell, x, lengths, recurrent)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(outputs, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=tol, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=tol, rtol=0)
    assert outputs.dtype == dtype


def test_the_new_options_change_the_results(rng):
    """Each option does something on these inputs (the clips bite, the gates saturate)."""
    x = rng.uniform(-2.5, 2.5, (3, 6, 3))
    results = []
    for options in ({}, {"recurrent_activation": "hard_sigmoid"}, {"gate_clip": 0.6}):
        results.append(fastlstm.dynamic_rnn(built(fastlstm.LSTMCell, options, np.float64), x)[0])
    assert not np.allclose(results[0], results[1], atol=1e-3)
    assert not np.allclose(results[0], results[2], atol=1e-3)


def test_hard_sigmoid_0_2_0_5_is_hard_sigmoid_bit_for_bit(rng):
    x = rng.uniform(-3, 3, (2, 5, 3)).astype(np.float32)
    named = built(fastlstm.BasicLSTMCell, {"recurrent_activation": "hard_sigmoid"}, np.float32)
    onnx_style = fastlstm.BasicLSTMCell(4, recurrent_activation=fastlstm.HardSigmoid(0.2, 0.5))
    onnx_style.set_weights(named.get_weights())
    np.testing.assert_array_equal(fastlstm.dynamic_rnn(named, x)[0], fastlstm.dynamic_rnn(onnx_style, x)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_units_kernel_gives_the_same_bits_with_hard_gates(dtype, rng):
    cell = fastlstm.BasicLSTMCell(128, recurrent_activation="hard_sigmoid", dtype=dtype)
    cell.build(8, seed=1)
    weights = cell._weights(np.dtype(dtype))
    x = rng.uniform(-2, 2, (1, 3, 8)).astype(dtype)
    state = np.zeros((1, 128), dtype)
    lengths = np.array([3])
    split = run_layer(weights, x, lengths, state, state, False, split_units=True)
    rows = run_layer(weights, x, lengths, state, state, False, split_units=False)
    for a, b in zip(split, rows):
        np.testing.assert_array_equal(a, b)
    ref, _ = naive.dynamic_rnn(x, cell.kernel, cell.bias, recurrent_activation="hard_sigmoid")
    np.testing.assert_allclose(split[0], ref, atol=TOLERANCE[dtype], rtol=0)


def test_nan_propagates_through_hard_gates_and_gate_clip():
    cell = built(fastlstm.LSTMCell, {"recurrent_activation": "hard_sigmoid", "gate_clip": 0.8}, np.float32)
    x = np.zeros((2, 2, 3))
    x[0, 0, 0] = np.nan
    outputs, _ = fastlstm.dynamic_rnn(cell, x)
    assert np.isnan(outputs[0]).all() and np.isfinite(outputs[1]).all()


def test_config_attributes_and_repr():
    gates = fastlstm.HardSigmoid(0.3, 0.45)
    cell = fastlstm.LSTMCell(3, recurrent_activation=gates, gate_clip=2)
    assert cell.recurrent_activation is gates and cell.gate_clip == 2.0
    config = cell.get_config()
    assert config["recurrent_activation"] is gates and config["gate_clip"] == 2.0
    assert fastlstm.LSTMCell(**config).get_config() == config
    assert "HardSigmoid(alpha=0.3, beta=0.45)" in repr(cell)
    basic = fastlstm.BasicLSTMCell(3)
    assert basic.recurrent_activation == "sigmoid" and basic.get_config()["recurrent_activation"] == "sigmoid"
    assert fastlstm.HardSigmoid() == fastlstm.HardSigmoid(0.2, 0.5)
    assert fastlstm.activations.HardSigmoid is fastlstm.HardSigmoid


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: fastlstm.BasicLSTMCell(2, recurrent_activation="relu"),
            ValueError,
            "unknown recurrent_activation 'relu'",
        ),
        (
            lambda: fastlstm.LSTMCell(2, recurrent_activation=None),
            TypeError,
            "recurrent_activation must be a name",
        ),
        (lambda: fastlstm.LSTMCell(2, recurrent_activation=np.tanh), TypeError, "got ufunc"),
        (lambda: fastlstm.HardSigmoid(np.nan, 0.5), ValueError, "HardSigmoid alpha must be finite"),
        (lambda: fastlstm.HardSigmoid(0.2, "0.5"), TypeError, "HardSigmoid beta must be a real number"),
        (lambda: fastlstm.LSTMCell(2, gate_clip=0), ValueError, "gate_clip must be a positive finite number"),
        (lambda: fastlstm.LSTMCell(2, gate_clip=True), TypeError, "gate_clip must be a positive number"),
        (
            lambda: fastlstm.BasicLSTMCell(2, 1.0, True, None, None, None, "hard_sigmoid"),
            TypeError,
            "positional",
        ),
    ],
)
def test_bad_values_are_refused(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_save_and_load_round_trip(tmp_path, rng):
    x = rng.uniform(-2, 2, (2, 4, 3)).astype(np.float32)
    for k, options in enumerate(
        [
            {
                "recurrent_activation": fastlstm.HardSigmoid(0.3, 0.45),
                "gate_clip": 1.2,
                "use_peepholes": True,
            },
            {"recurrent_activation": "keras3_hard_sigmoid", "activation": "relu"},
        ]
    ):
        cell = built(fastlstm.LSTMCell, options, np.float32)
        path = tmp_path / f"cell{k}.npz"
        fastlstm.save(path, cell)
        loaded = fastlstm.load(path)
        assert loaded.get_config() == cell.get_config()
        np.testing.assert_array_equal(fastlstm.dynamic_rnn(loaded, x)[0], fastlstm.dynamic_rnn(cell, x)[0])


def test_files_of_cells_without_the_new_options_do_not_mention_them(tmp_path):
    """So a file saved from a default cell still loads in a fastlstm from before the options,
    and such older files (no recurrent_activation, no gate_clip) load with the defaults."""
    cell = built(fastlstm.LSTMCell, {}, np.float32)
    path = tmp_path / "plain.npz"
    fastlstm.save(path, cell)
    with np.load(path) as data:
        config = json.loads(str(data["fastlstm_config"]))
    assert "recurrent_activation" not in config and "gate_clip" not in config
    loaded = fastlstm.load(path)
    assert loaded.recurrent_activation == "sigmoid" and loaded.gate_clip is None


def test_a_bad_saved_gate_activation_is_a_value_error(tmp_path):
    cell = built(fastlstm.BasicLSTMCell, {"recurrent_activation": fastlstm.HardSigmoid(0.3, 0.4)}, np.float32)
    path = tmp_path / "cell.npz"
    fastlstm.save(path, cell)
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(str(arrays["fastlstm_config"]))
    assert config["recurrent_activation"] == {"class": "HardSigmoid", "alpha": 0.3, "beta": 0.4}
    for bad, message in [
        ({"class": "Sigmoid", "alpha": 0.3, "beta": 0.4}, "unknown class 'Sigmoid'"),
        ({"class": "HardSigmoid", "alpha": 0.3}, "missing keys ['beta']"),
        ({"class": "HardSigmoid", "alpha": "x", "beta": 0.4}, "HardSigmoid alpha must be a real number"),
        ("tanh", "unknown recurrent_activation 'tanh'"),
    ]:
        arrays["fastlstm_config"] = np.array(json.dumps({**config, "recurrent_activation": bad}))
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(ValueError, match=re.escape(message)):
            fastlstm.load(tmp_path / "bad.npz")
    assert zipfile.is_zipfile(tmp_path / "bad.npz")


def test_the_default_cell_compiles_none_of_the_new_gate_kernels(tmp_path):
    """In a fresh process, a default cell's run leaves every clipped or hard gate kernel uncompiled."""
    script = (
        "import numpy as np, fastlstm\n"
        "from fastlstm import _kernels\n"
        "fastlstm.dynamic_rnn(fastlstm.BasicLSTMCell(8), np.ones((2, 3, 4), np.float32))\n"
        "kernels = [*_kernels.CLIPPED_GATE_KERNELS.values(), *_kernels.HARD_GATE_KERNELS.values()]\n"
        "print(sum(len(k.signatures) for k in kernels), len(_kernels.lstm_gates_tanh.signatures))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=600,
    )
    assert done.stdout.split() == ["0", "1"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_gate_kernels_vectorise_along_the_units(dtype, rng):
    """The unit loop of a hard-gate and a clipped-gate kernel compiles to packed SIMD arithmetic.

    numba cannot show the assembly of code loaded from its cache, so the kernels are compiled
    again here, uncached, with their options and for the signature the runs gave them.
    """
    import numba

    for options in ({"recurrent_activation": "hard_sigmoid"}, {"gate_clip": 0.6}):
        fastlstm.dynamic_rnn(
            built(fastlstm.LSTMCell, options, dtype), rng.uniform(-1, 1, (2, 3, 3)), dtype=dtype
        )
    suffix = "ps" if dtype == np.float32 else "pd"
    for kernel in (_kernels.lstm_gates_tanh_hard, _kernels.lstm_gates_tanh_clipped):
        (signature,) = [sig for sig in kernel.signatures if sig[0].dtype == numba.from_dtype(np.dtype(dtype))]
        options = {key: value for key, value in kernel.targetoptions.items() if key != "nopython"}
        fresh = numba.njit(**{**options, "cache": False})(kernel.py_func)
        fresh.compile(signature)
        asm = fresh.inspect_asm(signature)
        packed = re.findall(rf"\bv(?:mul|add|div|max|min|cmp\w*){suffix}\s+%[yz]mm", asm)
        assert len(packed) >= 8, (kernel, len(packed))


def onnx_lstm(onnx, x, w, r, b, p, clip, alpha, beta, lengths):
    """A one-node ONNX LSTM model (forward, layout 0, f = HardSigmoid(alpha, beta), g = h = Tanh)."""
    helper, tp = onnx.helper, onnx.TensorProto
    seq, batch, depth = x.shape
    hidden = r.shape[-1]
    inits = [
        helper.make_tensor(name, tp.FLOAT, value.shape, value.ravel().tolist())
        for name, value in (("W", w), ("R", r), ("B", b), ("P", p))
    ]
    inits.append(helper.make_tensor("L", tp.INT32, [batch], [int(n) for n in lengths]))
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B", "L", "", "", "P"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=hidden,
        clip=clip,
        activations=["HardSigmoid", "Tanh", "Tanh"],
        activation_alpha=[alpha],
        activation_beta=[beta],
    )
    graph = helper.make_graph(
        [node],
        "lstm",
        [helper.make_tensor_value_info("X", tp.FLOAT, [seq, batch, depth])],
        [
            helper.make_tensor_value_info("Y", tp.FLOAT, [seq, 1, batch, hidden]),
            helper.make_tensor_value_info("Y_h", tp.FLOAT, [1, batch, hidden]),
            helper.make_tensor_value_info("Y_c", tp.FLOAT, [1, batch, hidden]),
        ],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


@pytest.mark.parametrize("alpha_beta", [(0.2, 0.5), (0.3, 0.45)])
def test_hard_sigmoid_and_clip_match_onnxruntime(alpha_beta, rng):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    alpha, beta = alpha_beta
    hidden, depth, batch, seq, clip = 4, 3, 3, 6, 0.9
    w = rng.uniform(-0.8, 0.8, (1, 4 * hidden, depth)).astype(np.float32)  # gates i, o, f, c
    r = rng.uniform(-0.8, 0.8, (1, 4 * hidden, hidden)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (1, 8 * hidden)).astype(np.float32)
    p = rng.uniform(-0.5, 0.5, (1, 3 * hidden)).astype(np.float32)  # i, o, f
    x = rng.uniform(-2, 2, (seq, batch, depth)).astype(np.float32)
    lengths = [6, 4, 1]
    model = onnx_lstm(onnx, x, w, r, b, p, clip, alpha, beta, lengths)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y, y_h, y_c = session.run(None, {"X": x})

    def iofc_to_ijfo(m):  # rows grouped by ONNX gate -> columns in TF's gate order i, j, f, o
        i, o, f, c = np.split(m, 4)
        return np.concatenate([i, c, f, o])

    cell = fastlstm.LSTMCell(
        hidden,
        use_peepholes=True,
        forget_bias=0.0,
        recurrent_activation=fastlstm.HardSigmoid(alpha, beta),
        gate_clip=clip,
    )
    kernel = np.concatenate([iofc_to_ijfo(w[0]).T, iofc_to_ijfo(r[0]).T])
    bias = iofc_to_ijfo(b[0, : 4 * hidden] + b[0, 4 * hidden :])
    p_i, p_o, p_f = np.split(p[0], 3)
    cell.set_weights([kernel, bias, p_f, p_i, p_o])
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths, time_major=True)
    np.testing.assert_allclose(outputs, y[:, 0], atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.h, y_h[0], atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.c, y_c[0], atol=2e-6, rtol=0)
    reference_options = {
        "forget_bias": 0.0,
        "peepholes": (p_i, p_f, p_o),
        "recurrent_activation": naive.hard_sigmoid_onnx(alpha, beta),
        "gate_clip": clip,
    }
    ref, _ = naive.dynamic_rnn(x, kernel, bias, lengths, time_major=True, **reference_options)
    np.testing.assert_allclose(ref, y[:, 0], atol=2e-6, rtol=0)  # the reference agrees with ORT too
