"""Every bad argument raises before the kernel runs, naming the offending value."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
from conftest import make_cell


@pytest.fixture
def cell():
    return make_cell(4, 3)


@pytest.fixture
def x():
    return np.zeros((2, 5, 3), np.float32)


@pytest.mark.parametrize(
    "lengths, error, message",
    [
        ([3, -1], ValueError, r"sequence_length\[1\] = -1 is negative"),
        ([3, 6], ValueError, r"sequence_length\[1\] = 6 exceeds max_time = 5"),
        ([2.5, 3], ValueError, r"sequence_length\[0\] = .*2\.5.* is not an integer"),
        ([np.nan, 3], ValueError, r"sequence_length\[0\] = .*nan.* is not an integer"),
        ([3, 3, 3], ValueError, r"sequence_length must have shape \(2,\), got \(3,\)"),
        ([[3, 3]], ValueError, r"sequence_length must have shape \(2,\), got \(1, 2\)"),
        (["a", "b"], TypeError, r"sequence_length has dtype <U1, which is not numeric"),
        ([True, False], TypeError, r"sequence_length has boolean dtype"),
    ],
)
def test_bad_lengths(cell, x, lengths, error, message):
    with pytest.raises(error, match=message):
        fastlstm.dynamic_rnn(cell, x, sequence_length=lengths)


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        (np.zeros((2, 5)), ValueError, r"inputs must be 3-D \[batch, max_time, depth\], got shape \(2, 5\)"),
        (np.zeros((1, 2, 5, 3)), ValueError, r"got shape \(1, 2, 5, 3\)"),
        (np.zeros((2, 5, 4)), ValueError, r"inputs have depth 4 but the cell was built for depth 3"),
        (np.array([[["a"]]]), TypeError, r"inputs has dtype <U1, which is not numeric"),
        (np.zeros((2, 5, 3), dtype=object), TypeError, r"inputs has dtype object"),
        (np.zeros((2, 5, 3), dtype=complex), TypeError, r"inputs has complex dtype complex128"),
        (np.zeros((2, 5, 3), dtype=bool), TypeError, r"inputs has boolean dtype"),
    ],
)
def test_bad_inputs(cell, inputs, error, message):
    with pytest.raises(error, match=message):
        fastlstm.dynamic_rnn(cell, inputs)


def test_time_major_message_names_layout(cell):
    with pytest.raises(ValueError, match=r"\[max_time, batch, depth\]"):
        fastlstm.dynamic_rnn(cell, np.zeros((2, 3)), time_major=True)


@pytest.mark.parametrize(
    "state, message",
    [
        ((np.zeros((2, 4)), np.zeros((2, 5))), r"initial state h must have shape \(2, 4\), got \(2, 5\)"),
        ((np.zeros((3, 4)), np.zeros((2, 4))), r"initial state c must have shape \(2, 4\), got \(3, 4\)"),
        (np.zeros((2, 8)), r"state must be an LSTMStateTuple \(c, h\)"),
        ((np.zeros((2, 4)),), r"state must be an LSTMStateTuple"),
    ],
)
def test_bad_initial_state(cell, x, state, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.dynamic_rnn(cell, x, initial_state=state)


def test_bad_concat_state(x):
    cell = make_cell(4, 3, state_is_tuple=False)
    with pytest.raises(
        ValueError, match=r"state \(concat of c and h\) must have shape \(2, 8\), got \(2, 4\)"
    ):
        fastlstm.dynamic_rnn(cell, x, initial_state=np.zeros((2, 4)))


def test_non_numeric_initial_state(cell, x):
    with pytest.raises(TypeError, match=r"initial state c has dtype <U1"):
        fastlstm.dynamic_rnn(cell, x, initial_state=(np.full((2, 4), "a"), np.zeros((2, 4))))


@pytest.mark.parametrize(
    "num_units, error, message",
    [
        (0, ValueError, "num_units must be a positive integer, got 0"),
        (-3, ValueError, "num_units must be a positive integer, got -3"),
        (2.5, TypeError, "num_units must be a positive integer, got 2.5"),
        (True, TypeError, "num_units must be a positive integer, got True"),
        ("8", TypeError, "num_units must be a positive integer, got '8'"),
    ],
)
def test_bad_num_units(num_units, error, message):
    with pytest.raises(error, match=message):
        fastlstm.BasicLSTMCell(num_units)


def test_unknown_activation_name():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; expected one of \[.*'relu'"):
        fastlstm.BasicLSTMCell(4, activation="gelu")


def test_activation_that_numba_cannot_compile_says_what_to_do():
    class FakeTensorFlow:
        class nn:
            @staticmethod
            def relu(v):
                return max(v, 0)

    tf = FakeTensorFlow()

    def tf_relu(v):
        return tf.nn.relu(v)

    with pytest.raises(
        TypeError, match=r"activation 'tf_relu' cannot be compiled by numba.*activation='relu'"
    ):
        fastlstm.BasicLSTMCell(4, activation=tf_relu)


def test_activation_of_wrong_type():
    with pytest.raises(TypeError, match=r"activation must be a name, None or a callable, got int: 3"):
        fastlstm.BasicLSTMCell(4, activation=3)


@pytest.mark.parametrize(
    "dtype, message",
    [
        (np.int32, "dtype int32 is not supported; use float32 or float64"),
        ("nonsense", "dtype 'nonsense' is not a dtype"),
    ],
)
def test_bad_dtype(dtype, message):
    with pytest.raises(TypeError, match=message):
        fastlstm.BasicLSTMCell(4, dtype=dtype)


def test_bad_run_dtype(cell, x):
    with pytest.raises(TypeError, match="dtype float16 is not supported"):
        fastlstm.dynamic_rnn(cell, x, dtype=np.float16)


@pytest.mark.parametrize(
    "weights, error, message",
    [
        ([np.zeros((7, 16))], ValueError, r"expects \[kernel, bias\], got 1 arrays"),
        (
            [np.zeros((7, 15)), np.zeros(16)],
            ValueError,
            r"kernel must have shape \[input_size \+ 4, 16\], got \(7, 15\)",
        ),
        ([np.zeros((3, 16)), np.zeros(16)], ValueError, r"got \(3, 16\)"),
        ([np.zeros((7, 16)), np.zeros(15)], ValueError, r"bias must have shape \(16,\), got \(15,\)"),
        ([np.zeros((7, 16), dtype=complex), np.zeros(16)], TypeError, r"kernel has complex dtype"),
        ([np.zeros((7, 16)), np.array(["x"] * 16)], TypeError, r"bias has dtype <U1"),
    ],
)
def test_bad_weights(weights, error, message):
    with pytest.raises(error, match=message):
        fastlstm.BasicLSTMCell(4).set_weights(weights)


def test_not_a_cell(x):
    with pytest.raises(TypeError, match="cell must be a fastlstm cell .* got str"):
        fastlstm.dynamic_rnn("cell", x)


def test_forget_bias_must_be_finite_number():
    with pytest.raises(ValueError, match="forget_bias must be finite, got nan"):
        fastlstm.BasicLSTMCell(4, forget_bias=float("nan"))
    with pytest.raises(TypeError, match="forget_bias must be a real number, got 'x'"):
        fastlstm.BasicLSTMCell(4, forget_bias="x")


def test_huge_sizes_refused_before_allocating(cell):
    huge = np.lib.stride_tricks.as_strided(
        np.zeros(1, np.float32), shape=(2**21, 2**20, 3), strides=(0, 0, 0)
    )
    with pytest.raises(ValueError, match=r"too large to allocate"):
        fastlstm.dynamic_rnn(cell, huge)


def test_cell_step_input_rank(cell):
    with pytest.raises(
        ValueError, match=r"inputs to a cell step must be 2-D \[batch, input_size\], got shape \(2, 1, 3\)"
    ):
        cell(np.zeros((2, 1, 3)), cell.zero_state(2))


def test_zero_state_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a non-negative integer, got -1"):
        fastlstm.BasicLSTMCell(3).zero_state(-1)
