"""The compiled building blocks: tanh/sigmoid accuracy, NaN handling, row isolation."""

from __future__ import annotations

import time

import numba
import numpy as np
import pytest
from numba import njit

import fastlstm
import naive
from conftest import make_cell
from fastlstm import _kernels
from fastlstm._runner import run_layer


@njit
def _apply_tanh_sigmoid(x, t, s):
    for i in range(x.shape[0]):
        t[i] = _kernels.tanh(x[i])
        s[i] = _kernels.sigmoid(x[i])


def _evaluate(dtype):
    x = np.concatenate([np.linspace(-20, 20, 400_001), [0.0, 1e-30, -1e-30, 1e-4, 7.9, 9.0, 1e30]]).astype(
        dtype
    )
    t, s = np.empty_like(x), np.empty_like(x)
    _apply_tanh_sigmoid(x, t, s)
    exact = np.tanh(x.astype(np.float64))
    return x, t, s, exact


def test_float32_tanh_and_sigmoid_error_bound():
    x, t, s, exact = _evaluate(np.float32)
    assert np.abs(t - exact).max() < 3e-7
    assert np.abs(s - 1 / (1 + np.exp(-x.astype(np.float64)))).max() < 3e-7
    assert np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))


def test_float64_tanh_and_sigmoid_are_exact_to_1e15():
    x, t, s, exact = _evaluate(np.float64)
    assert np.abs(t - exact).max() < 1e-15
    assert np.abs(s - 1 / (1 + np.exp(-x))).max() < 1e-15


def test_float64_tanh_is_within_one_ulp_everywhere():
    """Relative error too (tiny arguments), both sides of the 0.625 switch, the clamp, NaN and +-inf."""
    magnitudes = np.concatenate(
        [np.geomspace(5e-324, 40, 200_001), [0.625, np.nextafter(0.625, 0), 20.0, 1e300]]
    )
    x = np.concatenate([magnitudes, -magnitudes, [0.0]])
    t, s = np.empty_like(x), np.empty_like(x)
    _apply_tanh_sigmoid(x, t, s)
    exact = np.tanh(x)
    assert np.all(np.abs(t - exact) <= 2.3e-16 * np.abs(exact))
    special = np.array([np.inf, -np.inf, np.nan])
    t, s = np.empty(3), np.empty(3)
    _apply_tanh_sigmoid(special, t, s)
    np.testing.assert_array_equal(t, [1.0, -1.0, np.nan])
    np.testing.assert_array_equal(s, [1.0, 0.0, np.nan])


@njit
def _apply_expm1(x, out):
    for i in range(x.shape[0]):
        out[i] = _kernels._expm1_negative_f64(x[i])


def test_float64_expm1_of_negatives_is_within_a_few_ulp():
    """ELU/SELU's exp(x) - 1 for x <= 0: relative error near 0 too, -1 far out, NaN kept."""
    x = np.concatenate([-np.geomspace(1e-300, 800, 300_001), -np.linspace(0, 50, 100_001)[1:]])
    out = np.empty_like(x)
    _apply_expm1(x, out)
    exact = np.expm1(x)
    assert np.all(np.abs(out - exact) <= 5e-16 * np.abs(exact))
    special = np.array([0.0, -np.inf, np.nan])
    out = np.empty(3)
    _apply_expm1(special, out)
    np.testing.assert_array_equal(out, [0.0, -1.0, np.nan])


def test_nan_and_inf_stay_in_their_row(rng):
    cell = make_cell(4, 3)
    x = rng.uniform(-1, 1, (5, 6, 3)).astype(np.float32)
    clean_out, clean_state = fastlstm.dynamic_rnn(cell, x, [6, 6, 4, 6, 2])
    x[1, 2, 0] = np.nan
    x[3, 0, 1] = np.inf
    out, state = fastlstm.dynamic_rnn(cell, x, [6, 6, 4, 6, 2])
    assert np.isnan(out[1, 2:]).all() and np.isnan(state.h[1]).all()
    ref, _ = naive.dynamic_rnn(x, cell.kernel, cell.bias, [6, 6, 4, 6, 2])
    np.testing.assert_allclose(out[3], ref[3], atol=2e-6, equal_nan=True)
    assert not np.array_equal(out[3], clean_out[3])
    for row in (0, 2, 4):
        np.testing.assert_array_equal(out[row], clean_out[row])
        np.testing.assert_array_equal(state.c[row], clean_state.c[row])
    np.testing.assert_array_equal(out[1, :2], clean_out[1, :2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cell_kwargs",
    [
        {},
        {"activation": "relu", "forget_bias": 0.5},
        {"use_peepholes": True, "cell_clip": 0.7},
        {"use_peepholes": True, "activation": "softsign"},
        {"use_peepholes": True, "gate_clip": 0.6},
        {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    ],
)
@pytest.mark.parametrize(("reverse", "time_major"), [(False, False), (True, False), (False, True)])
def test_split_units_kernel_is_bitwise_the_row_kernel(rng, dtype, cell_kwargs, reverse, time_major):
    """Both kernels of a layer give the same bits, whichever one a batch size picks."""
    cell = fastlstm.LSTMCell(37, dtype=dtype, **cell_kwargs)
    cell.build(5, seed=3)
    cell.set_weights([w + rng.uniform(-0.3, 0.3, w.shape) for w in cell.get_weights()])
    weights = cell._weights(np.dtype(dtype))
    x = rng.uniform(-2, 2, (9, 7, 5) if time_major else (7, 9, 5)).astype(dtype)
    lengths = np.array([9, 0, 4, 9, 1, 6, 3], dtype=np.int64)
    c0, h0 = (rng.uniform(-1, 1, (7, 37)).astype(dtype) for _ in range(2))
    rows = run_layer(weights, x, lengths, c0, h0, time_major, reverse, split_units=False)
    units = run_layer(weights, x, lengths, c0, h0, time_major, reverse, split_units=True)
    for by_rows, by_units in zip(rows, units):
        np.testing.assert_array_equal(by_units, by_rows)


def _count_calls(monkeypatch, module, name):
    """Count the calls of ``module.name`` from now on (the function still runs)."""
    calls = []
    function = getattr(module, name)

    def counted(*args):
        calls.append(name)
        function(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_a_held_up_unit_split_sends_the_next_calls_to_one_thread_with_the_same_bits(rng, monkeypatch):
    """The unit-split kernel run by fewer threads than parts: the one thread runs every part of
    every step (bitwise the row kernel), the other part's thread never runs its part: the call
    is held up. One such call may be a passing blip; from the second in a row on, the calls
    that would split the units in the next back-off run on the serial row kernel; an explicit
    ``split_units=True`` still splits, and after the back-off the units split again. Held-up
    calls in a row double the back-off up to its cap; a call not held up resets it."""
    from fastlstm import _runner

    cell = fastlstm.BasicLSTMCell(128)  # 4 * 128 * (8 + 128) multiply-adds per step: splits at 2 threads
    cell.build(8, seed=1)
    weights = cell._weights(np.dtype(np.float32))
    x = rng.uniform(-2, 2, (1, 40, 8)).astype(np.float32)
    lengths = np.array([40])
    state = np.zeros((1, 128), np.float32)
    assert _runner.use_split_units(weights, 1, 2)
    rows = run_layer(weights, x, lengths, state, state, False, split_units=False)
    # Back-offs of a minute and more: none ends while the test runs.
    monkeypatch.setattr(_runner, "CONTENDED_BACKOFF_SECONDS", 60.0)
    monkeypatch.setattr(_runner, "CONTENDED_BACKOFF_MAX_SECONDS", 240.0)
    monkeypatch.setattr(_runner, "_split_units_backoff", 60.0)
    monkeypatch.setattr(_runner, "_split_units_held_up_until", 0.0)
    monkeypatch.setattr(_runner, "_split_units_last_held_up", False)
    split = _count_calls(monkeypatch, _kernels, "lstm_layer_split_units")
    serial = _count_calls(monkeypatch, _kernels, "lstm_layer_serial")

    def held_back_for():
        return _runner._split_units_held_up_until - time.monotonic()

    results = []
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        results.append(run_layer(weights, x, lengths, state, state, False, split_units=True))
        assert held_back_for() < 0 and _runner._split_units_last_held_up
        for longest in (60, 120, 240, 240):  # doubled each time, up to the cap
            results.append(run_layer(weights, x, lengths, state, state, False, split_units=True))
            assert longest - 30 < held_back_for() <= longest
        assert (len(split), len(serial)) == (5, 0)
        numba.set_num_threads(2)
        results.append(run_layer(weights, x, lengths, state, state, False))
        assert (len(split), len(serial)) == (5, 1)
        results.append(run_layer(weights, x, lengths, state, state, False, split_units=True))
        assert (len(split), len(serial)) == (6, 1)
        # The back-off is over, and the next call is not held up.
        monkeypatch.setattr(_runner, "_split_units_held_up_until", time.monotonic() - 1)
        monkeypatch.setattr(_runner, "CONTENDED_STEPS_PER_HOLD_UP", 0)
        monkeypatch.setattr(_runner, "_split_units_last_held_up", False)
        results.append(run_layer(weights, x, lengths, state, state, False))
        assert (len(split), len(serial)) == (7, 1)
        assert _runner._split_units_backoff == 60.0
    finally:
        numba.set_num_threads(before)
    for result in results:
        for got, want in zip(result, rows):
            np.testing.assert_array_equal(got, want)
