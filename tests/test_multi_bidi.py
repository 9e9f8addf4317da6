"""MultiRNNCell and bidirectional_dynamic_rnn against TF and the naive reference."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import naive
from cell_helpers import assert_state_close, basic_cell, lstm_cell, naive_run, randomise, tolerance
from conftest import GOLDEN


def load(name):
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def stack(dtype=np.float32, seed=0):
    """A built 3-layer stack mixing both cell types and a projection."""
    cells = [
        fastlstm.BasicLSTMCell(5, dtype=dtype),
        fastlstm.LSTMCell(4, use_peepholes=True, cell_clip=0.5, num_proj=3, dtype=dtype),
        fastlstm.LSTMCell(2, dtype=dtype, activation="softsign"),
    ]
    return randomise(fastlstm.MultiRNNCell(cells), 3, seed)


def reverse_sequence(x, lengths):
    """numpy version of tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)."""
    out = x.copy()
    for b, n in enumerate(lengths):
        out[b, :n] = x[b, :n][::-1]
    return out


def state_arrays(state):
    """The arrays of a (nested) state, in order."""
    if isinstance(state, np.ndarray):
        return [state]
    return [array for part in state for array in state_arrays(part)]


# -- MultiRNNCell ---------------------------------------------------------------------------
def test_multi_rnn_matches_tensorflow():
    g = load("multi_rnn")
    cell = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(5), fastlstm.LSTMCell(4, use_peepholes=True)])
    names = [
        "layer0_kernel",
        "layer0_bias",
        "layer1_kernel",
        "layer1_bias",
        "layer1_w_f_diag",
        "layer1_w_i_diag",
        "layer1_w_o_diag",
    ]
    tf_order = [str(n).split("/", 3)[3].replace("/", "_") for n in g["variable_names"]]
    assert tf_order == [
        "basic_lstm_cell_kernel",
        "basic_lstm_cell_bias",
        "lstm_cell_kernel",
        "lstm_cell_bias",
        "lstm_cell_w_f_diag",
        "lstm_cell_w_i_diag",
        "lstm_cell_w_o_diag",
    ]
    cell.set_weights([g[n] for n in names])
    outputs, (state0, state1) = fastlstm.dynamic_rnn(cell, g["inputs"], sequence_length=g["sequence_length"])
    np.testing.assert_allclose(outputs, g["outputs"], atol=2e-6, rtol=0)
    for state, k in ((state0, 0), (state1, 1)):
        np.testing.assert_allclose(state.c, g[f"final_c_{k}"], atol=2e-6, rtol=0)
        np.testing.assert_allclose(state.h, g[f"final_h_{k}"], atol=2e-6, rtol=0)
    ref, ref_states = naive_run(cell, g["inputs"], g["sequence_length"])
    np.testing.assert_allclose(ref, g["outputs"], atol=2e-6, rtol=0)
    assert_state_close(ref_states, ((g["final_c_0"], g["final_h_0"]), (g["final_c_1"], g["final_h_1"])), 2e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
def test_multi_against_reference(rng, dtype, time_major):
    cell = stack(dtype)
    x = rng.uniform(-1, 1, (5, 6, 3))
    lengths = np.array([6, 0, 2, 1, 5])
    initial = tuple(
        fastlstm.LSTMStateTuple(
            rng.uniform(-1, 1, (5, c)).astype(dtype), rng.uniform(-1, 1, (5, h)).astype(dtype)
        )
        for c, h in cell.state_size
    )
    if time_major:
        x = x.transpose(1, 0, 2)
    outputs, states = fastlstm.dynamic_rnn(cell, x, lengths, initial_state=initial, time_major=time_major)
    ref, ref_states = naive_run(cell, x, lengths, initial, time_major=time_major)
    assert outputs.dtype == dtype and len(states) == 3
    np.testing.assert_allclose(outputs, ref, atol=tolerance(dtype), rtol=0)
    assert_state_close(states, ref_states, tolerance(dtype))


def test_multi_properties_and_zero_state():
    cell = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(5), fastlstm.LSTMCell(4, num_proj=2)])
    assert cell.state_is_tuple and cell.dtype == np.float32 and cell.output_size == 2
    assert cell.state_size == (fastlstm.LSTMStateTuple(5, 5), fastlstm.LSTMStateTuple(4, 2))
    assert not cell.built and cell.input_size is None and cell.get_weights() == []
    zero = cell.zero_state(3, np.float64)
    assert zero[0].c.shape == (3, 5) and zero[1].h.shape == (3, 2) and zero[1].h.dtype == np.float64
    assert repr(cell).startswith(
        "MultiRNNCell([BasicLSTMCell(num_units=5"
    ) and "LSTMCell(num_units=4" in repr(cell)


def test_multi_lazy_build_chains_depths():
    cell = fastlstm.MultiRNNCell(
        [fastlstm.BasicLSTMCell(5), fastlstm.LSTMCell(4, num_proj=2), fastlstm.BasicLSTMCell(3)]
    )
    fastlstm.dynamic_rnn(cell, np.zeros((1, 2, 7), np.float32))
    assert cell.built and cell.input_size == 7
    assert [c.input_size for c in cell.cells] == [7, 5, 2]
    assert [w.shape for w in cell.get_weights()] == [(12, 20), (20,), (7, 16), (16,), (4, 2), (5, 12), (12,)]


def test_multi_build_with_seed_is_reproducible():
    def make():
        cell = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(3), fastlstm.BasicLSTMCell(3)])
        cell.build(2, seed=4)
        return cell.get_weights()

    first, second = make(), make()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][2:], first[2][3:])


def test_multi_single_step_matches_reference(rng):
    cell = stack(np.float64)
    x = rng.uniform(-1, 1, (2, 3))
    state = tuple(
        fastlstm.LSTMStateTuple(rng.uniform(-1, 1, (2, c)), rng.uniform(-1, 1, (2, h)))
        for c, h in cell.state_size
    )
    output, new_state = cell(x, state)
    for b in range(2):
        inputs = x[b]
        for k, layer in enumerate(cell.cells):
            ref_out, _ = naive_run(
                layer, inputs[None, None, :], None, (state[k].c[b : b + 1], state[k].h[b : b + 1])
            )
            np.testing.assert_allclose(new_state[k].h[b], ref_out[0, 0], atol=1e-14, rtol=0)
            inputs = ref_out[0, 0]
        np.testing.assert_allclose(output[b], inputs, atol=1e-14, rtol=0)


def test_multi_set_weights_round_trip_and_atomic(rng):
    cell = stack()
    weights = cell.get_weights()
    assert len(weights) == 2 + 6 + 2
    other = fastlstm.MultiRNNCell(
        [
            fastlstm.BasicLSTMCell(5),
            fastlstm.LSTMCell(4, use_peepholes=True, cell_clip=0.5, num_proj=3),
            fastlstm.LSTMCell(2),
        ]
    )
    other.set_weights(weights)
    for a, b in zip(other.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    bad = list(weights)
    bad[8] = np.zeros((6, 8))  # top layer kernel for inputs of depth 4, but the layer below outputs 3
    before = other.get_weights()
    with pytest.raises(ValueError, match="layer2 takes inputs of depth 4 but layer1 outputs depth 3"):
        other.set_weights(bad)
    for a, b in zip(other.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"layer1.w_o_diag must have shape \(4,\), got \(5,\)"):
        other.set_weights(weights[:6] + [np.zeros(5)] + weights[7:])
    with pytest.raises(
        ValueError, match=r"MultiRNNCell.set_weights expects \[layer0.kernel, .*\], got 3 arrays"
    ):
        other.set_weights(weights[:3])


def test_nested_multi_equals_flat(rng):
    flat = stack(np.float64)
    a, b, c = (
        fastlstm.BasicLSTMCell(5, dtype=np.float64),
        fastlstm.LSTMCell(4, use_peepholes=True, cell_clip=0.5, num_proj=3, dtype=np.float64),
        fastlstm.LSTMCell(2, dtype=np.float64, activation="softsign"),
    )
    nested = fastlstm.MultiRNNCell([fastlstm.MultiRNNCell([a, b]), c])
    nested.set_weights(flat.get_weights())
    x = rng.uniform(-1, 1, (3, 4, 3))
    out_flat, (_, s1, _) = fastlstm.dynamic_rnn(flat, x, [4, 2, 3])
    out_nested, ((_, n1), _) = fastlstm.dynamic_rnn(nested, x, [4, 2, 3])
    np.testing.assert_array_equal(out_nested, out_flat)
    np.testing.assert_array_equal(n1.c, s1.c)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(2)], state_is_tuple=False),
            ValueError,
            r"state_is_tuple=False\) is deprecated in TensorFlow and not supported",
        ),
        (lambda: fastlstm.MultiRNNCell([]), ValueError, "needs at least one cell, got an empty list"),
        (
            lambda: fastlstm.MultiRNNCell(fastlstm.BasicLSTMCell(2)),
            TypeError,
            "cells must be a list of fastlstm cells, got BasicLSTMCell",
        ),
        (
            lambda: fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(2), "lstm"]),
            TypeError,
            r"cells\[1\] must be a fastlstm cell .* got str",
        ),
        (
            lambda: fastlstm.MultiRNNCell(
                [fastlstm.BasicLSTMCell(2), fastlstm.BasicLSTMCell(3, dtype=np.float64)]
            ),
            ValueError,
            r"cells\[1\] has dtype float64 but cells\[0\] has dtype float32",
        ),
        (
            lambda: fastlstm.MultiRNNCell([basic_cell(2, 3), basic_cell(3, 4)]),
            ValueError,
            r"cells\[1\] takes inputs of depth 4 but cells\[0\] outputs depth 2",
        ),
    ],
)
def test_multi_construction_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_multi_refuses_the_same_cell_twice():
    cell = fastlstm.BasicLSTMCell(3)
    with pytest.raises(ValueError, match=r"the same cell object is used twice \(BasicLSTMCell\(num_units=3"):
        fastlstm.MultiRNNCell([cell, cell])


@pytest.mark.parametrize(
    "state, message",
    [
        ("zero", r"cells\[1\]: initial state h must have shape \(2, 3\), got \(2, 4\)"),
        ("short", r"must be a tuple of 3 cell states \(one per layer\), got tuple of length 2"),
        ("array", r"the state of a MultiRNNCell must be a tuple of 3 cell states .* got ndarray"),
    ],
)
def test_multi_bad_states(state, message):
    cell = stack()
    good = cell.zero_state(2)
    states = {
        "zero": (good[0], fastlstm.LSTMStateTuple(good[1].c, np.zeros((2, 4))), good[2]),
        "short": good[:2],
        "array": np.zeros((2, 5)),
    }
    with pytest.raises(ValueError, match=message):
        fastlstm.dynamic_rnn(cell, np.zeros((2, 3, 3), np.float32), initial_state=states[state])


def test_multi_depth_mismatch_names_the_layer():
    cell = stack()
    with pytest.raises(
        ValueError, match=r"cells\[0\]: inputs have depth 4 but the cell was built for depth 3"
    ):
        fastlstm.dynamic_rnn(cell, np.zeros((2, 3, 4), np.float32))


# -- bidirectional_dynamic_rnn -------------------------------------------------------------
def test_bidirectional_matches_tensorflow():
    g = load("bidirectional")
    fw, bw = fastlstm.BasicLSTMCell(4), fastlstm.BasicLSTMCell(5)
    fw.set_weights([g["fw_kernel"], g["fw_bias"]])
    bw.set_weights([g["bw_kernel"], g["bw_bias"]])
    (out_fw, out_bw), (state_fw, state_bw) = fastlstm.bidirectional_dynamic_rnn(
        fw, bw, g["inputs"], sequence_length=g["sequence_length"]
    )
    for got, key in (
        (out_fw, "output_fw"),
        (out_bw, "output_bw"),
        (state_fw.c, "final_c_fw"),
        (state_fw.h, "final_h_fw"),
        (state_bw.c, "final_c_bw"),
        (state_bw.h, "final_h_bw"),
    ):
        np.testing.assert_allclose(got, g[key], atol=2e-6, rtol=0)
    ref_bw, (ref_c, _) = naive_run(bw, g["inputs"], g["sequence_length"], reverse=True)
    np.testing.assert_allclose(ref_bw, g["output_bw"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(ref_c, g["final_c_bw"], atol=2e-6, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
def test_bidirectional_against_reference(rng, dtype, time_major):
    fw = lstm_cell(4, 3, dtype=dtype, use_peepholes=True, num_proj=2)
    bw = lstm_cell(5, 3, dtype=dtype, seed=1, cell_clip=0.4)
    x = rng.uniform(-1, 1, (5, 7, 3))
    lengths = np.array([7, 0, 3, 1, 6])
    init_bw = fastlstm.LSTMStateTuple(*(rng.uniform(-1, 1, (2, 5, 5)).astype(dtype)))
    if time_major:
        x = x.transpose(1, 0, 2)
    (out_fw, out_bw), (state_fw, state_bw) = fastlstm.bidirectional_dynamic_rnn(
        fw, bw, x, lengths, initial_state_bw=init_bw, time_major=time_major
    )
    ref_fw, ref_state_fw = naive_run(fw, x, lengths, time_major=time_major)
    ref_bw, ref_state_bw = naive_run(bw, x, lengths, init_bw, time_major=time_major, reverse=True)
    tol = tolerance(dtype)
    assert out_fw.dtype == dtype and out_bw.dtype == dtype
    np.testing.assert_allclose(out_fw, ref_fw, atol=tol, rtol=0)
    np.testing.assert_allclose(out_bw, ref_bw, atol=tol, rtol=0)
    assert_state_close(state_fw, ref_state_fw, tol)
    assert_state_close(state_bw, ref_state_bw, tol)
    np.testing.assert_array_equal(state_bw.c[1], init_bw.c[1])


@pytest.mark.parametrize("stacked", [False, True])
def test_backward_pass_is_exactly_tf_reverse_sequence(rng, stacked):
    """TF reverses each row within its length, runs forwards and reverses back: bitwise the same here.

    For a MultiRNNCell TF runs the whole stack on the reversed sequence; fastlstm
    runs every layer backwards in place, which must give the same numbers.
    """
    fw = lstm_cell(3, 3, seed=2)
    bw = stack() if stacked else lstm_cell(4, 3, seed=3, use_peepholes=True, num_proj=2)
    x = rng.uniform(-1, 1, (6, 8, 3)).astype(np.float32)
    x_before = x.copy()
    lengths = np.array([8, 1, 0, 5, 3, 8])
    (_, out_bw), (_, state_bw) = fastlstm.bidirectional_dynamic_rnn(fw, bw, x, lengths)
    forward_on_reversed, state = fastlstm.dynamic_rnn(bw, reverse_sequence(x, lengths), lengths)
    np.testing.assert_array_equal(out_bw, reverse_sequence(forward_on_reversed, lengths))
    for got, want in zip(state_arrays(state_bw), state_arrays(state)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(x, x_before)
    assert not out_bw[1, 1:].any() and not out_bw[2].any() and out_bw[3, :5].all()


def test_bidirectional_without_lengths_reverses_the_whole_sequence(rng):
    fw, bw = basic_cell(3, 2), basic_cell(3, 2, seed=1)
    x = rng.uniform(-1, 1, (2, 5, 2)).astype(np.float32)
    (out_fw, out_bw), _ = fastlstm.bidirectional_dynamic_rnn(fw, bw, x)
    reversed_run, _ = fastlstm.dynamic_rnn(bw, x[:, ::-1])
    np.testing.assert_array_equal(out_bw, reversed_run[:, ::-1])
    np.testing.assert_array_equal(out_fw, fastlstm.dynamic_rnn(fw, x)[0])


def test_bidirectional_with_multi_rnn_cells(rng):
    fw, bw = stack(np.float64), stack(np.float64, seed=5)
    x = rng.uniform(-1, 1, (4, 6, 3))
    lengths = [6, 2, 0, 4]
    (out_fw, out_bw), (states_fw, states_bw) = fastlstm.bidirectional_dynamic_rnn(fw, bw, x, lengths)
    ref_fw, ref_states_fw = naive_run(fw, x, lengths)
    ref_bw, ref_states_bw = naive_run(bw, x, lengths, reverse=True)
    np.testing.assert_allclose(out_fw, ref_fw, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out_bw, ref_bw, atol=1e-12, rtol=0)
    assert_state_close(states_fw, ref_states_fw, 1e-12)
    assert_state_close(states_bw, ref_states_bw, 1e-12)


def test_bidirectional_dtype_per_direction(rng):
    fw, bw = basic_cell(3, 2), basic_cell(3, 2, seed=1)
    x = rng.uniform(-1, 1, (2, 4, 2))
    init_fw = fw.zero_state(2, np.float64)
    (out_fw, out_bw), (_, state_bw) = fastlstm.bidirectional_dynamic_rnn(fw, bw, x, initial_state_fw=init_fw)
    assert out_fw.dtype == np.float64 and out_bw.dtype == np.float32 and state_bw.c.dtype == np.float32
    np.testing.assert_allclose(out_fw, naive.dynamic_rnn(x, fw.kernel, fw.bias)[0], atol=1e-13, rtol=0)
    (out_fw, out_bw), _ = fastlstm.bidirectional_dynamic_rnn(fw, bw, x, dtype=np.float64)
    assert out_fw.dtype == out_bw.dtype == np.float64


def test_bidirectional_builds_both_cells_lazily():
    fw, bw = fastlstm.LSTMCell(3, num_proj=2), fastlstm.BasicLSTMCell(4)
    (out_fw, out_bw), _ = fastlstm.bidirectional_dynamic_rnn(fw, bw, np.ones((2, 3, 5)))
    assert fw.input_size == bw.input_size == 5 and out_fw.shape == (2, 3, 2) and out_bw.shape == (2, 3, 4)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"cell_fw": "fw"},
            TypeError,
            r"cell_fw must be a fastlstm cell \(BasicLSTMCell, LSTMCell or MultiRNNCell\), got str",
        ),
        ({"cell_bw": None}, TypeError, "cell_bw must be a fastlstm cell .* got NoneType"),
        (
            {"inputs": np.zeros((2, 3, 4))},
            ValueError,
            "cell_fw: inputs have depth 4 but the cell was built for depth 3",
        ),
        (
            {"cell_bw": "bw_depth"},
            ValueError,
            "cell_bw: inputs have depth 3 but the cell was built for depth 2",
        ),
        (
            {"initial_state_bw": (np.zeros((2, 5)), np.zeros((2, 5)))},
            ValueError,
            r"cell_bw: initial state c must have shape \(2, 4\), got \(2, 5\)",
        ),
        ({"sequence_length": [3, 4]}, ValueError, r"sequence_length\[1\] = 4 exceeds max_time = 3"),
    ],
)
def test_bidirectional_errors(kwargs, error, message):
    args = {"cell_fw": basic_cell(3, 3), "cell_bw": basic_cell(4, 3), "inputs": np.zeros((2, 3, 3))}
    if kwargs.get("cell_bw") == "bw_depth":
        kwargs = {"cell_bw": basic_cell(4, 2)}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        fastlstm.bidirectional_dynamic_rnn(**args)
