"""Hypothesis properties of dynamic_rnn: bounded shapes and values throughout."""

from __future__ import annotations

import numba
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import fastlstm
import naive
from conftest import make_cell

UNITS, DEPTH = 5, 3
CELL32 = make_cell(UNITS, DEPTH, seed=3)
CELL64 = make_cell(UNITS, DEPTH, dtype=np.float64, seed=3)


@st.composite
def batches(draw, max_batch=12, max_time=9):
    batch = draw(st.integers(0, max_batch))
    time = draw(st.integers(0, max_time))
    lengths = np.array(draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch)), dtype=np.int64)
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).uniform(-2, 2, (batch, time, DEPTH)).astype(np.float32)
    return x, lengths


@given(batches(), st.sampled_from([CELL32, CELL64]))
def test_matches_reference_zero_padding_and_final_state(data, cell):
    x, lengths = data
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths)
    ref_out, (ref_c, ref_h) = naive.dynamic_rnn(x, cell.kernel, cell.bias, lengths)
    atol = 1e-12 if cell.dtype == np.float64 else 2e-6
    np.testing.assert_allclose(outputs, ref_out, atol=atol, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=atol, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=atol, rtol=0)
    for b, n in enumerate(lengths):
        assert not outputs[b, n:].any()
        if n:
            np.testing.assert_array_equal(state.h[b], outputs[b, n - 1])
        else:
            assert not state.h[b].any() and not state.c[b].any()


@given(batches(max_batch=20), st.data())
def test_row_alone_equals_row_in_shuffled_larger_batch_bitwise(data, draw):
    x, lengths = data
    if x.shape[0] == 0:
        return
    row = draw.draw(st.integers(0, x.shape[0] - 1))
    perm = np.random.default_rng(row).permutation(x.shape[0])
    out_all, st_all = fastlstm.dynamic_rnn(CELL32, x[perm], lengths[perm])
    out_one, st_one = fastlstm.dynamic_rnn(CELL32, x[row : row + 1], lengths[row : row + 1])
    where = int(np.flatnonzero(perm == row)[0])
    np.testing.assert_array_equal(out_all[where], out_one[0])
    np.testing.assert_array_equal(st_all.c[where], st_one.c[0])
    np.testing.assert_array_equal(st_all.h[where], st_one.h[0])


@given(batches(), st.data())
def test_two_chunks_with_carried_state_equal_one_run(data, draw):
    x, lengths = data
    time = x.shape[1]
    split = draw.draw(st.integers(0, time))
    out_full, st_full = fastlstm.dynamic_rnn(CELL64, x, lengths)
    first_len = np.minimum(lengths, split)
    out_a, st_a = fastlstm.dynamic_rnn(CELL64, x[:, :split], first_len)
    out_b, st_b = fastlstm.dynamic_rnn(CELL64, x[:, split:], lengths - first_len, initial_state=st_a)
    np.testing.assert_allclose(np.concatenate([out_a, out_b], axis=1), out_full, atol=1e-14, rtol=0)
    np.testing.assert_allclose(st_b.c, st_full.c, atol=1e-14, rtol=0)
    np.testing.assert_allclose(st_b.h, st_full.h, atol=1e-14, rtol=0)


@given(batches(max_batch=40, max_time=6))
def test_thread_count_does_not_change_results_bitwise(data):
    x, lengths = data
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(fastlstm.dynamic_rnn(CELL32, x, lengths))
    finally:
        numba.set_num_threads(before)
    for outputs, state in results[1:]:
        np.testing.assert_array_equal(outputs, results[0][0])
        np.testing.assert_array_equal(state.c, results[0][1].c)
