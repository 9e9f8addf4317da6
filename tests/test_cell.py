"""BasicLSTMCell as an object: building, weights, state, one-step calls."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastlstm
import naive
from conftest import make_cell


def test_defaults_match_tensorflow():
    cell = fastlstm.BasicLSTMCell(7)
    assert cell.forget_bias == 1.0 and cell.state_is_tuple and cell.activation is None
    assert cell.dtype == np.float32 and cell.name is None
    assert cell.state_size == fastlstm.LSTMStateTuple(7, 7) and cell.output_size == 7
    assert not cell.built and cell.kernel is None and cell.get_weights() == []


def test_state_tuple_field_order():
    state = fastlstm.LSTMStateTuple(c=np.zeros(1), h=np.ones(1))
    assert state._fields == ("c", "h") and state[0] is state.c


def test_build_glorot_uniform_and_zero_bias():
    cell = fastlstm.BasicLSTMCell(50, dtype=np.float64)
    cell.build(30, seed=0)
    limit = np.sqrt(6 / (80 + 200))
    assert cell.kernel.shape == (80, 200) and cell.bias.shape == (200,)
    assert np.abs(cell.kernel).max() <= limit and np.abs(cell.kernel).max() > 0.9 * limit
    assert abs(cell.kernel.std() - limit / np.sqrt(3)) < 0.01
    assert not cell.bias.any() and cell.input_size == 30
    other = fastlstm.BasicLSTMCell(50, dtype=np.float64)
    other.build(30, seed=0)
    np.testing.assert_array_equal(other.kernel, cell.kernel)


def test_lazy_build_on_first_use():
    cell = fastlstm.BasicLSTMCell(3)
    fastlstm.dynamic_rnn(cell, np.zeros((1, 2, 4)))
    assert cell.built and cell.kernel.shape == (7, 12)


def test_set_weights_casts_copies_and_infers_input_size(rng):
    cell = fastlstm.BasicLSTMCell(4)
    kernel = rng.uniform(-1, 1, (9, 16))
    cell.set_weights([kernel, np.arange(16)])
    assert cell.input_size == 5 and cell.kernel.dtype == np.float32 and cell.bias.dtype == np.float32
    kernel[:] = 0
    assert cell.kernel.any()
    got = cell.get_weights()
    got[0][:] = 0
    assert cell.kernel.any()


def test_set_weights_after_run_uses_new_weights(rng):
    cell = make_cell(4, 3)
    x = rng.uniform(-1, 1, (2, 3, 3))
    first, _ = fastlstm.dynamic_rnn(cell, x)
    cell.set_weights([cell.kernel * 2, cell.bias])
    second, _ = fastlstm.dynamic_rnn(cell, x)
    ref, _ = naive.dynamic_rnn(x, cell.kernel, cell.bias)
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(second, ref, atol=2e-6)


def test_zero_state():
    cell = fastlstm.BasicLSTMCell(3)
    state = cell.zero_state(2)
    assert (
        isinstance(state, fastlstm.LSTMStateTuple) and state.c.shape == (2, 3) and state.c.dtype == np.float32
    )
    assert cell.zero_state(2, np.float64).h.dtype == np.float64
    flat = fastlstm.BasicLSTMCell(3, state_is_tuple=False).zero_state(2)
    assert flat.shape == (2, 6) and not flat.any()


@pytest.mark.parametrize("state_is_tuple", [True, False])
def test_single_step_call_matches_reference(rng, state_is_tuple):
    cell = make_cell(4, 3, state_is_tuple=state_is_tuple, dtype=np.float64)
    x = rng.uniform(-1, 1, (3, 3))
    c0, h0 = rng.uniform(-1, 1, (2, 3, 4))
    state = fastlstm.LSTMStateTuple(c0, h0) if state_is_tuple else np.concatenate([c0, h0], axis=1)
    output, new_state = cell(x, state)
    for b in range(3):
        c, h = naive.lstm_step(x[b], c0[b], h0[b], cell.kernel, cell.bias)
        np.testing.assert_allclose(output[b], h, atol=1e-14)
        got_c = new_state.c[b] if state_is_tuple else new_state[b, :4]
        np.testing.assert_allclose(got_c, c, atol=1e-14)


def test_numba_compiled_user_activation(rng):
    @numba.njit
    def leaky(v):
        return v if v > 0 else 0.1 * v

    cell = make_cell(4, 3, activation=leaky)
    x = rng.uniform(-1, 1, (3, 5, 3))
    outputs, state = fastlstm.dynamic_rnn(cell, x, [5, 2, 0])
    ref, (ref_c, _) = naive.dynamic_rnn(
        x, cell.kernel, cell.bias, [5, 2, 0], activation=lambda v: np.where(v > 0, v, 0.1 * v)
    )
    np.testing.assert_allclose(outputs, ref, atol=2e-6)
    np.testing.assert_allclose(state.c, ref_c, atol=2e-6)


def test_plain_python_function_numba_can_compile_is_accepted(rng):
    def cube_root_ish(v):
        return v / (1.0 + v * v)

    cell = make_cell(3, 2, activation=cube_root_ish)
    x = rng.uniform(-1, 1, (2, 4, 2))
    outputs, _ = fastlstm.dynamic_rnn(cell, x)
    ref, _ = naive.dynamic_rnn(x, cell.kernel, cell.bias, activation=lambda v: v / (1.0 + v * v))
    np.testing.assert_allclose(outputs, ref, atol=2e-6)


def test_cells_sharing_a_user_function_share_one_compiled_gate_kernel(rng):
    """Issue 11: one gate kernel per function object, compiled by the first cell's first run."""
    from fastlstm import _runner

    def leaky(v):
        return v if v > 0 else 0.1 * v

    cells = [make_cell(4, 3, activation=leaky) for _ in range(3)]
    x = rng.uniform(-1, 1, (2, 5, 3))
    for cell in cells:
        outputs, _ = fastlstm.dynamic_rnn(cell, x)
        ref, _ = naive.dynamic_rnn(
            x, cell.kernel, cell.bias, activation=lambda v: np.where(v > 0, v, 0.1 * v)
        )
        np.testing.assert_allclose(outputs, ref, atol=2e-6)
    kernels = {id(_runner.gates_kernel(cell._activation)) for cell in cells}
    assert len(kernels) == 1
    assert len(_runner.gates_kernel(cells[0]._activation).signatures) == 1  # compiled once


def test_gate_kernels_of_user_functions_go_with_the_last_cell_using_them():
    """Issue 11: ``_runner._custom_gates`` does not grow with every function ever used."""
    import gc

    from fastlstm import _runner

    def scaled(factor):
        def act(v):
            return factor * v

        return act

    gc.collect()
    before = len(_runner._custom_gates)
    x = np.ones((1, 2, 3))
    for factor in (0.5, 0.25):
        cell = make_cell(4, 3, activation=scaled(factor))
        fastlstm.dynamic_rnn(cell, x)
        assert len(_runner._custom_gates) == before + 1
        del cell
        gc.collect()
    assert len(_runner._custom_gates) == before


def test_tf_style_dtype_object_accepted():
    class TfFloat64:
        as_numpy_dtype = np.float64

    assert fastlstm.BasicLSTMCell(2, dtype=TfFloat64()).dtype == np.float64


def test_repr_names_the_settings():
    text = repr(fastlstm.BasicLSTMCell(3, forget_bias=0.5, activation="relu", name="enc"))
    assert "num_units=3" in text and "'relu'" in text and "forget_bias=0.5" in text and "'enc'" in text
