"""dynamic_rnn against the naive numpy reference across the options TF offers."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import naive
from conftest import make_cell
from fastlstm.activations import ACTIVATIONS


def check_against_naive(cell, x, lengths=None, initial=None, time_major=False, atol=2e-6, **kw):
    outputs, state = fastlstm.dynamic_rnn(
        cell, x, sequence_length=lengths, initial_state=initial, time_major=time_major, **kw
    )
    initial_ch = None if initial is None else (initial[0], initial[1])
    ref_out, (ref_c, ref_h) = naive.dynamic_rnn(
        x,
        cell.kernel,
        cell.bias,
        lengths,
        initial_ch,
        time_major=time_major,
        forget_bias=cell.forget_bias,
        activation=cell.activation or "tanh",
    )
    np.testing.assert_allclose(outputs, ref_out, atol=atol, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=atol, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=atol, rtol=0)
    return outputs, state


@pytest.mark.parametrize("dtype, atol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activations_and_dtypes(rng, dtype, atol, activation):
    cell = make_cell(5, 3, dtype=dtype, activation=activation)
    x = rng.uniform(-1, 1, (6, 8, 3))
    outputs, _ = check_against_naive(cell, x, np.array([8, 0, 1, 5, 8, 3]), atol=atol)
    assert outputs.dtype == dtype


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, -2.0, 3.5])
def test_forget_bias_is_added_at_run_time(rng, forget_bias):
    cell = make_cell(4, 3, forget_bias=forget_bias)
    kernel_before = cell.kernel.copy()
    bias_before = cell.bias.copy()
    check_against_naive(cell, rng.uniform(-1, 1, (3, 5, 3)), [5, 2, 4])
    np.testing.assert_array_equal(cell.bias, bias_before)
    np.testing.assert_array_equal(cell.kernel, kernel_before)


@pytest.mark.parametrize("lengths", [[0, 0, 0], [1, 1, 1], [6, 6, 6], [0, 6, 1], None])
def test_length_patterns(rng, lengths):
    check_against_naive(make_cell(4, 2), rng.uniform(-1, 1, (3, 6, 2)), lengths)


def test_outputs_exactly_zero_past_length_and_state_at_last_valid_step(rng):
    cell = make_cell(4, 3)
    lengths = np.array([5, 0, 2, 3])
    outputs, state = fastlstm.dynamic_rnn(cell, rng.uniform(-1, 1, (4, 5, 3)), lengths)
    for b, n in enumerate(lengths):
        assert np.all(outputs[b, n:] == 0.0)
        if n:
            np.testing.assert_array_equal(state.h[b], outputs[b, n - 1])
    np.testing.assert_array_equal(state.c[1], 0.0)


def test_initial_state_and_zero_length_returns_it(rng):
    cell = make_cell(4, 3, dtype=np.float64)
    c0, h0 = rng.uniform(-1, 1, (2, 3, 4))
    lengths = [4, 0, 2]
    _, state = check_against_naive(
        cell, rng.uniform(-1, 1, (3, 4, 3)), lengths, fastlstm.LSTMStateTuple(c0, h0), atol=1e-13
    )
    np.testing.assert_array_equal(state.c[1], c0[1])
    np.testing.assert_array_equal(state.h[1], h0[1])


def test_time_major_matches_batch_major(rng):
    cell = make_cell(5, 3)
    x = rng.uniform(-1, 1, (4, 6, 3)).astype(np.float32)
    lengths = [6, 1, 0, 4]
    out_b, st_b = fastlstm.dynamic_rnn(cell, x, lengths)
    out_t, st_t = check_against_naive(cell, x.transpose(1, 0, 2), lengths, time_major=True)
    assert out_t.shape == (6, 4, 5)
    np.testing.assert_array_equal(out_t.transpose(1, 0, 2), out_b)
    np.testing.assert_array_equal(st_t.h, st_b.h)
    np.testing.assert_array_equal(st_t.c, st_b.c)


def test_state_is_tuple_false_concatenates(rng):
    cell = make_cell(4, 2, state_is_tuple=False)
    assert cell.state_size == 8
    x = rng.uniform(-1, 1, (3, 5, 2))
    initial = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    _, state = fastlstm.dynamic_rnn(cell, x, [5, 0, 3], initial_state=initial)
    _, (ref_c, ref_h) = naive.dynamic_rnn(
        x, cell.kernel, cell.bias, [5, 0, 3], (initial[:, :4], initial[:, 4:])
    )
    assert state.shape == (3, 8)
    np.testing.assert_allclose(state, np.concatenate([ref_c, ref_h], axis=1), atol=2e-6)


@pytest.mark.parametrize(
    "layout",
    ["fortran", "strided", "readonly", "big_endian", "float16", "int", "list", "noncontig_time_major"],
)
def test_any_memory_layout_same_result_and_input_untouched(rng, layout):
    cell = make_cell(4, 3)
    base = rng.uniform(-1, 1, (5, 6, 3)).astype(np.float32)
    if layout in ("float16", "int"):
        base = base.astype(np.float16 if layout == "float16" else np.int32).astype(np.float32)
    lengths = [6, 3, 0, 1, 6]
    expected, expected_state = fastlstm.dynamic_rnn(cell, base, lengths)
    time_major = False
    if layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "strided":
        big = np.zeros((10, 12, 6), np.float32)
        big[::2, ::2, ::2] = base
        x = big[::2, ::2, ::2]
    elif layout == "readonly":
        x = base.copy()
        x.setflags(write=False)
    elif layout == "big_endian":
        x = base.astype(">f4")
    elif layout == "float16":
        x = base.astype(np.float16)
    elif layout == "int":
        x = base.astype(np.int32)
    elif layout == "list":
        x = base.tolist()
    else:
        x = np.ascontiguousarray(base.transpose(1, 0, 2))[:, ::-1][:, ::-1]
        time_major = True
    snapshot = np.array(x, copy=True)
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths, time_major=time_major)
    if time_major:
        outputs = outputs.transpose(1, 0, 2)
    np.testing.assert_array_equal(outputs, expected)
    np.testing.assert_array_equal(state.h, expected_state.h)
    np.testing.assert_array_equal(np.asarray(x), snapshot)


def test_empty_batch_and_zero_time(rng):
    cell = make_cell(4, 3)
    outputs, state = fastlstm.dynamic_rnn(cell, np.zeros((0, 5, 3), np.float32))
    assert outputs.shape == (0, 5, 4) and state.c.shape == (0, 4) and state.h.shape == (0, 4)
    c0 = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
    outputs, state = fastlstm.dynamic_rnn(
        cell, np.zeros((2, 0, 3), np.float32), [0, 0], initial_state=(c0, c0 * 2)
    )
    assert outputs.shape == (2, 0, 4)
    np.testing.assert_array_equal(state.c, c0)
    np.testing.assert_array_equal(state.h, c0 * 2)
    outputs, _ = fastlstm.dynamic_rnn(cell, np.zeros((0, 5, 3), np.float32), time_major=True)
    assert outputs.shape == (0, 5, 4)


def test_dtype_rules(rng):
    cell = make_cell(3, 2)
    x = rng.uniform(-1, 1, (2, 3, 2)).astype(np.float32)
    assert fastlstm.dynamic_rnn(cell, x)[0].dtype == np.float32
    assert fastlstm.dynamic_rnn(cell, x, dtype=np.float64)[0].dtype == np.float64
    assert fastlstm.dynamic_rnn(cell, x, dtype="float64")[0].dtype == np.float64
    state64 = cell.zero_state(2, np.float64)
    out, state = fastlstm.dynamic_rnn(cell, x, initial_state=state64, dtype=np.float32)
    assert out.dtype == np.float64 and state.c.dtype == np.float64
    assert fastlstm.dynamic_rnn(cell, x.astype(np.float64))[0].dtype == np.float32


def test_float32_accuracy_over_100_steps_against_exact_float64(rng):
    cell = make_cell(32, 16, seed=7)
    x = rng.uniform(-1, 1, (8, 100, 16)).astype(np.float32)
    lengths = np.array([100, 100, 50, 99, 1, 100, 73, 100])
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths)
    ref_out, (ref_c, ref_h) = naive.dynamic_rnn(x, cell.kernel, cell.bias, lengths)
    assert np.abs(outputs - ref_out).max() < 1e-5
    assert np.abs(state.c - ref_c).max() < 1e-5
    assert np.abs(state.h - ref_h).max() < 1e-5
    cell64 = make_cell(32, 16, dtype=np.float64, seed=7)
    outputs64, state64 = fastlstm.dynamic_rnn(cell64, x, lengths)
    ref_out, (ref_c, _) = naive.dynamic_rnn(x, cell64.kernel, cell64.bias, lengths)
    assert np.abs(outputs64 - ref_out).max() < 1e-12
    assert np.abs(state64.c - ref_c).max() < 1e-12


def test_cell_weights_used_in_the_requested_dtype(rng):
    cell = make_cell(4, 3)
    x = rng.uniform(-1, 1, (2, 4, 3))
    out64, _ = fastlstm.dynamic_rnn(cell, x, dtype=np.float64)
    ref, _ = naive.dynamic_rnn(x, cell.kernel, cell.bias)
    np.testing.assert_allclose(out64, ref, atol=1e-13)
