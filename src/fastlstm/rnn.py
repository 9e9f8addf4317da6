"""Drivers that run a cell over whole sequences: TF 1's ``dynamic_rnn``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as check

__all__ = ["dynamic_rnn"]


def _run_dtype(cell: Any, initial_state: Any, dtype: Any) -> np.dtype:
    """TF's rule: the initial state's dtype wins, then ``dtype``, then the cell's."""
    if initial_state is not None:
        state_dtype = cell._state_dtype(initial_state)
        if state_dtype is not None:
            return state_dtype
    if dtype is not None:
        return check.float_dtype(dtype)
    return cell.dtype


def _check_cell(cell: Any) -> None:
    if not hasattr(cell, "_run_sequence"):
        raise TypeError(f"cell must be a fastlstm cell (e.g. BasicLSTMCell), got {type(cell).__name__}")


def prepare_inputs(
    inputs: Any, sequence_length: Any, time_major: bool, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Validated, kernel-ready inputs and int64 lengths (shared by all drivers)."""
    array = check.inputs_3d(inputs, time_major)
    max_time, batch = (array.shape[0], array.shape[1]) if time_major else (array.shape[1], array.shape[0])
    lengths = check.sequence_lengths(sequence_length, batch, max_time)
    check.check_size(array.shape, "inputs")
    return check.as_kernel_array(array, dtype), lengths


def dynamic_rnn(
    cell: Any,
    inputs: Any,
    sequence_length: Any = None,
    initial_state: Any = None,
    dtype: Any = None,
    time_major: bool = False,
) -> tuple[np.ndarray, Any]:
    """Run ``cell`` over every sequence of a batch, like ``tf.compat.v1.nn.dynamic_rnn``.

    Each row stops at its own length: its outputs are exactly zero from step
    ``sequence_length[b]`` on and its final state is the state after its last
    valid step (its initial state when the length is 0). The rows run in
    parallel on numba's threads (``numba.set_num_threads``); a row's result is
    bitwise the same whatever else is in the batch and whatever the thread count.

    Parameters
    ----------
    cell : BasicLSTMCell
        The cell; built on first use if it has no weights yet.
    inputs : array_like, shape ``[batch, max_time, input_size]``
        ``[max_time, batch, input_size]`` when ``time_major``. Any memory layout;
        never modified.
    sequence_length : array_like of int, shape ``[batch]``, optional
        Valid steps per row, each in ``[0, max_time]``; all steps when None.
    initial_state : state, optional
        As ``cell.zero_state`` returns; zeros when None. Its dtype, when given,
        is the computation dtype.
    dtype : float32 or float64, optional
        Computation dtype when no initial state is given; the cell's by default.
    time_major : bool, default False
        Layout of ``inputs`` and ``outputs``.

    Returns
    -------
    outputs : ndarray
        ``[batch, max_time, output_size]`` (time-major if ``time_major``).
    state : LSTMStateTuple or ndarray
        The final state, as the cell's ``state_is_tuple`` says.

    Raises
    ------
    ValueError
        Bad shapes, lengths negative, non-integral or beyond ``max_time``, input
        depth that differs from the cell's kernel.
    TypeError
        Non-numeric inputs, lengths or states; a cell that is not a fastlstm cell.

    Notes
    -----
    Unlike TensorFlow, which silently accepts out-of-range lengths, every bad
    argument raises before anything runs.
    """
    _check_cell(cell)
    run_dtype = _run_dtype(cell, initial_state, dtype)
    x, lengths = prepare_inputs(inputs, sequence_length, time_major, run_dtype)
    return cell._run_sequence(x, lengths, initial_state, time_major, run_dtype)
