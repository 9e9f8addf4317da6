"""fastlstm.from_tf_checkpoint against checkpoints and outputs of real TensorFlow (tests/golden/ckpt)."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import fastlstm.convert.tensorflow
from conftest import GOLDEN
from fastlstm.io import read_tf_checkpoint

CKPT = GOLDEN / "ckpt"
SCOPES = {"basic": "rnn", "basic_f64": "rnn", "lstm_proj": "rnn", "multi": "rnn", "bidi": "bidirectional_rnn"}


def tolerance(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


def prefix(case):
    return str(CKPT / case / "model.ckpt")


def variables(case):
    return read_tf_checkpoint(prefix(case))


def expected_states(case, want):
    """TF's final states, shaped as the model gives them."""
    if case == "multi":
        return [(want[f"final_c_{k}"], want[f"final_h_{k}"]) for k in range(2)]
    if case == "bidi":
        return [((want["final_c_fw"], want["final_h_fw"]), (want["final_c_bw"], want["final_h_bw"]))]
    return [(want["final_c"], want["final_h"])]


def flat_states(states):
    """(c, h) pairs of a model's states, bottom to top, forward before backward."""
    flat = []
    for state in states:
        flat.extend(state if isinstance(state[0], tuple) else [state])
    return flat


@pytest.mark.parametrize("case", sorted(SCOPES))
def test_golden_checkpoint(case):
    want = np.load(CKPT / case / "expected.npz", allow_pickle=False)
    model = fastlstm.from_tf_checkpoint(prefix(case), scope=SCOPES[case])
    dtype = np.dtype(str(want["dtype"]))
    assert model.dtype == dtype
    outputs, states = model(want["inputs"], sequence_length=want["sequence_length"])
    expected = (
        want["outputs"] if "outputs" in want else np.concatenate([want["output_fw"], want["output_bw"]], -1)
    )
    assert outputs.dtype == dtype and outputs.shape == expected.shape
    tol = tolerance(dtype)
    assert np.abs(outputs - expected).max() < tol
    for (c, h), (want_c, want_h) in zip(flat_states(states), flat_states(expected_states(case, want))):
        assert np.abs(c - want_c).max() < tol and np.abs(h - want_h).max() < tol


def test_structure_follows_the_variable_names():
    proj = fastlstm.from_tf_checkpoint(prefix("lstm_proj"))
    (cell,) = proj.layers
    assert isinstance(cell, fastlstm.LSTMCell) and cell.use_peepholes and cell.num_proj == 3
    assert cell.name == "rnn/lstm_cell" and cell.forget_bias == 1.0 and cell.cell_clip is None
    multi = fastlstm.from_tf_checkpoint(prefix("multi"))
    assert [type(layer) for layer in multi.layers] == [fastlstm.BasicLSTMCell] * 2
    assert [layer.num_units for layer in multi.layers] == [5, 4]
    (pair,) = fastlstm.from_tf_checkpoint(prefix("bidi"), scope="/bidirectional_rnn/").layers
    assert [cell.num_units for cell in pair] == [4, 5]


def test_variables_mapping_and_optimizer_slots():
    tensors = variables("lstm_proj")
    from_file = fastlstm.from_tf_checkpoint(prefix("lstm_proj"))
    noisy = dict(tensors)
    for name, value in tensors.items():
        noisy[name + "/Adam"] = value + 1
        noisy[name + "/ExponentialMovingAverage"] = value - 1
    noisy["global_step"] = np.array(7)
    noisy["dense/kernel"] = np.ones((3, 2), np.float32)
    from_mapping = fastlstm.from_tf_checkpoint(noisy)
    for a, b in zip(from_file.layers[0].get_weights(), from_mapping.layers[0].get_weights()):
        assert np.array_equal(a, b)


def test_bidirectional_multi_rnn_cells_make_one_pair_of_stacks():
    """TF's bidirectional_dynamic_rnn over two MultiRNNCells: each stack runs its own way."""
    gen = np.random.default_rng(3)
    names = {}
    for side, sizes in (("fw", (4, 3)), ("bw", (2, 5))):
        depth = 3
        for k, units in enumerate(sizes):
            scope = f"birnn/{side}/multi_rnn_cell/cell_{k}/" + ("lstm_cell" if k else "basic_lstm_cell")
            names[f"{scope}/kernel"] = gen.uniform(-0.5, 0.5, (depth + units, 4 * units))
            names[f"{scope}/bias"] = gen.uniform(-0.5, 0.5, 4 * units)
            depth = units
    names["birnn/fw/multi_rnn_cell/cell_1/lstm_cell/w_f_diag"] = gen.uniform(-0.5, 0.5, 3)
    names["birnn/fw/multi_rnn_cell/cell_1/lstm_cell/w_i_diag"] = gen.uniform(-0.5, 0.5, 3)
    names["birnn/fw/multi_rnn_cell/cell_1/lstm_cell/w_o_diag"] = gen.uniform(-0.5, 0.5, 3)
    model = fastlstm.from_tf_checkpoint(
        names, scope="birnn", forget_bias=[1.0, 0.5, 2.0, 0.0], cell_clip=[None, 1.0, None, 0.7]
    )
    assert model.dtype == np.float64
    ((fw, bw),) = model.layers
    assert isinstance(fw, fastlstm.MultiRNNCell) and isinstance(bw, fastlstm.MultiRNNCell)
    assert [c.forget_bias for c in fw.cells + bw.cells] == [1.0, 0.5, 2.0, 0.0]
    assert fw.cells[1].use_peepholes and fw.cells[1].cell_clip == 1.0 and bw.cells[1].cell_clip == 0.7
    x = gen.uniform(-1, 1, (3, 6, 3))
    lengths = [6, 2, 4]
    outputs, ((state_fw, state_bw),) = model(x, sequence_length=lengths)
    (out_fw, out_bw), (want_fw, want_bw) = fastlstm.bidirectional_dynamic_rnn(
        fw, bw, x, sequence_length=lengths
    )
    assert np.array_equal(outputs, np.concatenate([out_fw, out_bw], -1))
    assert np.array_equal(state_bw[1].h, want_bw[1].h) and np.array_equal(state_fw[0].c, want_fw[0].c)


def test_settings_not_in_the_checkpoint():
    model = fastlstm.from_tf_checkpoint(prefix("basic"), forget_bias=0.0, activation="relu", dtype="float64")
    (cell,) = model.layers
    assert cell.forget_bias == 0.0 and cell.activation == "relu" and model.dtype == np.float64
    multi = fastlstm.from_tf_checkpoint(prefix("multi"), activation=["tanh", "softsign"])
    assert [layer.activation for layer in multi.layers] == ["tanh", "softsign"]


def test_save_load_round_trip(tmp_path):
    want = np.load(CKPT / "bidi" / "expected.npz", allow_pickle=False)
    model = fastlstm.from_tf_checkpoint(prefix("bidi"), scope="bidirectional_rnn")
    fastlstm.save(tmp_path / "bidi.npz", model)
    restored = fastlstm.load(tmp_path / "bidi.npz")
    args = (want["inputs"], want["sequence_length"])
    assert np.array_equal(restored(*args)[0], model(*args)[0])


# ----------------------------------------------------------------------------- errors


def basic_variables(units=2, depth=3, scope="rnn/basic_lstm_cell"):
    return {
        f"{scope}/kernel": np.zeros((depth + units, 4 * units), np.float32),
        f"{scope}/bias": np.zeros(4 * units, np.float32),
    }


def test_unknown_scope_lists_the_scopes_present():
    with pytest.raises(
        ValueError, match=r"no variables under scope 'rnn' in .*bidi.*\['bidirectional_rnn'\]"
    ):
        fastlstm.from_tf_checkpoint(prefix("bidi"))
    with pytest.raises(ValueError, match=r"holds no TF 1 LSTM cell \(top-level names: \['dense'\]\)"):
        fastlstm.from_tf_checkpoint({"dense/kernel": np.zeros((2, 2))})
    with pytest.raises(TypeError, match="scope must be a non-empty string"):
        fastlstm.from_tf_checkpoint(prefix("basic"), scope="")


@pytest.mark.parametrize(
    "names, message",
    [
        (
            {"rnn/gru_cell/gates/kernel": np.zeros((5, 4)), "rnn/gru_cell/gates/bias": np.zeros(4)},
            r"rnn/gru_cell/gates/bias: GRU is not supported",
        ),
        (
            {**basic_variables(scope="rnn/lstm_cell"), "rnn/lstm_cell/layer_norm/gamma": np.zeros(2)},
            r"rnn/lstm_cell/layer_norm/gamma: unsupported variable \(a lstm_cell has kernel, bias",
        ),
        (
            {**basic_variables(), **basic_variables(scope="rnn/lstm_cell")},
            r"rnn: holds several cells \['basic_lstm_cell', 'lstm_cell'\]",
        ),
        ({"rnn/basic_lstm_cell/kernel": np.zeros((5, 8))}, r"rnn/basic_lstm_cell/bias is missing"),
        (
            {**basic_variables(scope="rnn/lstm_cell"), "rnn/lstm_cell/w_f_diag": np.zeros(2)},
            r"has \['w_f_diag'\] but not all three peepholes",
        ),
        (
            {"rnn/basic_lstm_cell/kernel": np.zeros((5, 8)), "rnn/basic_lstm_cell/bias": np.zeros(12)},
            r"rnn/basic_lstm_cell/kernel has shape \(5, 8\); with bias \(12,\) it must be \[input_size \+ 3, 12\]",
        ),
        (
            {"rnn/basic_lstm_cell/kernel": np.zeros((5, 8)), "rnn/basic_lstm_cell/bias": np.zeros(7)},
            r"rnn/basic_lstm_cell/bias has shape \(7,\); expected \[4 \* num_units\]",
        ),
        (
            {**basic_variables(scope="rnn/lstm_cell"), "rnn/lstm_cell/projection/kernel": np.zeros((3, 1))},
            r"projection/kernel has shape \(3, 1\); with 2 units .* must be \[2, num_proj\]",
        ),
        (
            {
                **basic_variables(scope="rnn/lstm_cell"),
                **{f"rnn/lstm_cell/{n}": np.zeros(3) for n in ("w_f_diag", "w_i_diag", "w_o_diag")},
            },
            r"rnn/lstm_cell/w_f_diag has shape \(3,\); expected \(2,\)",
        ),
        (
            {
                **basic_variables(units=2, scope="rnn/multi_rnn_cell/cell_0/basic_lstm_cell"),
                **basic_variables(units=2, depth=3, scope="rnn/multi_rnn_cell/cell_1/basic_lstm_cell"),
            },
            (
                r"cell_1/basic_lstm_cell/kernel takes inputs of depth 3 but the cell below, "
                r".*cell_0/basic_lstm_cell, outputs 2"
            ),
        ),
        (
            {
                **basic_variables(scope="rnn/multi_rnn_cell/cell_0/basic_lstm_cell"),
                **basic_variables(scope="rnn/multi_rnn_cell/cell_2/basic_lstm_cell"),
            },
            r"rnn/multi_rnn_cell: cell_1 is missing \(found cells \[0, 2\]\)",
        ),
        (
            basic_variables(scope="rnn/fw/basic_lstm_cell"),
            r"rnn: a bidirectional scope holds exactly fw/ and bw/",
        ),
        (
            {
                **basic_variables(scope="rnn/fw/basic_lstm_cell"),
                **basic_variables(depth=4, scope="rnn/bw/basic_lstm_cell"),
            },
            r"rnn/fw/basic_lstm_cell/kernel takes inputs of depth 3 but rnn/bw/basic_lstm_cell/kernel of depth 4",
        ),
        (
            {
                "rnn/basic_lstm_cell/kernel": np.zeros((5, 8), np.int32),
                "rnn/basic_lstm_cell/bias": np.zeros(8),
            },
            r"rnn/basic_lstm_cell/kernel has dtype int32; LSTM weights must be floating point",
        ),
    ],
)
def test_unsupported_or_inconsistent_variables(names, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.from_tf_checkpoint(names)


def test_settings_that_do_not_fit_the_cells():
    with pytest.raises(
        ValueError, match=r"cell_clip/proj_clip given for rnn/basic_lstm_cell, a BasicLSTMCell"
    ):
        fastlstm.from_tf_checkpoint(basic_variables(), cell_clip=1.0)
    with pytest.raises(ValueError, match=r"proj_clip=2.0 given for rnn/lstm_cell, which has no projection"):
        fastlstm.from_tf_checkpoint(basic_variables(scope="rnn/lstm_cell"), proj_clip=2.0)
    with pytest.raises(
        ValueError, match=r"forget_bias has 3 entries but the model has 2 cells \(bottom to top\)"
    ):
        fastlstm.from_tf_checkpoint(prefix("multi"), forget_bias=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        fastlstm.from_tf_checkpoint(prefix("basic"), activation="gelu")
