"""Drivers that run a cell over whole sequences: TF 1's ``dynamic_rnn`` and
``bidirectional_dynamic_rnn``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _layers
from . import _validation as check
from ._layers import Direction
from .cell import RNNCell

__all__ = ["bidirectional_dynamic_rnn", "dynamic_rnn"]


_FLOAT32_FIX = "pass dtype=np.float32 (and a float32 initial state, if any)"


def _run_dtype(cell: RNNCell, initial_state: Any, dtype: Any) -> np.dtype:
    """TF's rule: the initial state's dtype wins, then ``dtype``, then the cell's."""
    if initial_state is not None:
        state_dtype = cell._state_dtype(initial_state)
        if state_dtype is not None:
            return state_dtype
    if dtype is not None:
        return check.float_dtype(dtype)
    return cell.dtype


def dynamic_rnn(
    cell: Any,
    inputs: Any,
    sequence_length: Any = None,
    initial_state: Any = None,
    dtype: Any = None,
    time_major: bool = False,
    precision: str = "float32",
) -> tuple[np.ndarray, Any]:
    """Run ``cell`` over every sequence of a batch, like ``tf.compat.v1.nn.dynamic_rnn``.

    Each row stops at its own length: its outputs are exactly zero from step
    ``sequence_length[b]`` on and its final state is the state after its last
    valid step (its initial state when the length is 0). The rows run in
    parallel on numba's threads (``numba.set_num_threads``); a row's result is
    bitwise the same whatever else is in the batch and whatever the thread count.

    Parameters
    ----------
    cell : BasicLSTMCell, LSTMCell or MultiRNNCell
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
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products. ``"bfloat16"`` rounds the weights
        (once per cell) and the inputs and ``h`` of every product to bfloat16
        and accumulates in float32; the gate math, the state and the outputs
        stay float32 (see the README's bfloat16 section). Needs a float32 run.

    Returns
    -------
    outputs : ndarray
        ``[batch, max_time, output_size]`` (time-major if ``time_major``).
    state : LSTMStateTuple, ndarray or tuple
        The final state, as the cell's ``state_is_tuple`` says (a tuple of
        the cells' states for a :class:`MultiRNNCell`).

    Raises
    ------
    ValueError
        Bad shapes, lengths negative, non-integral or beyond ``max_time``, input
        depth that differs from the cell's kernel, an unknown ``precision`` or
        ``"bfloat16"`` with a float64 run.
    TypeError
        Non-numeric inputs, lengths or states; a cell that is not a fastlstm cell.

    Notes
    -----
    Unlike TensorFlow, which silently accepts out-of-range lengths, every bad
    argument raises before anything runs.
    """
    check.rnn_cell(cell, "cell", RNNCell)
    run_dtype = _run_dtype(cell, initial_state, dtype)
    precision = check.precision(precision, run_dtype, _FLOAT32_FIX)
    x, lengths = check.run_inputs(inputs, sequence_length, time_major, run_dtype, cell.output_size)
    prepared = _layers.prepare(
        cell, Direction.FORWARD, x.shape[2], lengths.shape[0], initial_state, run_dtype
    )
    ((outputs, state),) = _layers.run((prepared,), (x,), lengths, time_major, precision)
    return outputs, state


def bidirectional_dynamic_rnn(
    cell_fw: Any,
    cell_bw: Any,
    inputs: Any,
    sequence_length: Any = None,
    initial_state_fw: Any = None,
    initial_state_bw: Any = None,
    dtype: Any = None,
    time_major: bool = False,
    precision: str = "float32",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[Any, Any]]:
    """Run ``cell_fw`` forwards and ``cell_bw`` backwards, like ``tf.compat.v1.nn.bidirectional_dynamic_rnn``.

    The backward cell sees each row reversed *within its own length*, as TF's
    ``reverse_sequence`` does: row ``b`` runs over steps ``sequence_length[b] - 1``
    down to 0, and the padding stays where it is. ``output_bw`` is returned in
    input time order (step ``t`` of ``output_bw`` belongs to input step ``t``)
    and is zero past each length, as in TF. No reversed copy of the inputs is
    made: the kernel reads the steps backwards.

    Parameters
    ----------
    cell_fw, cell_bw : BasicLSTMCell, LSTMCell or MultiRNNCell
        The forward and the backward cell; each is built on first use if it
        has no weights yet.
    inputs : array_like, shape ``[batch, max_time, input_size]``
        ``[max_time, batch, input_size]`` when ``time_major``. Never modified.
    sequence_length : array_like of int, shape ``[batch]``, optional
        Valid steps per row, each in ``[0, max_time]``; all steps when None.
    initial_state_fw, initial_state_bw : state, optional
        As the cell's ``zero_state`` returns; zeros when None. The dtype of
        each, when given, is that direction's computation dtype.
    dtype : float32 or float64, optional
        Computation dtype of a direction without an initial state; the cell's
        by default.
    time_major : bool, default False
        Layout of ``inputs`` and of the outputs.
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of both directions' matrix products, as in :func:`dynamic_rnn`.

    Returns
    -------
    (output_fw, output_bw) : tuple of ndarray
        Each ``[batch, max_time, cell.output_size]`` (time-major if
        ``time_major``); concatenate them on the last axis for TF's usual
        ``tf.concat(outputs, 2)``.
    (state_fw, state_bw) : tuple
        The final states; ``state_bw`` is the state after the backward cell
        has reached step 0.

    Raises
    ------
    ValueError
        Bad shapes or lengths, input depth that differs from either cell.
    TypeError
        Non-numeric inputs, lengths or states; a cell that is not a fastlstm cell.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> fw, bw = fastlstm.BasicLSTMCell(4), fastlstm.BasicLSTMCell(5)
    >>> x = np.ones((2, 6, 3), np.float32)
    >>> (out_fw, out_bw), (state_fw, state_bw) = fastlstm.bidirectional_dynamic_rnn(
    ...     fw, bw, x, sequence_length=[6, 2])
    >>> np.concatenate([out_fw, out_bw], axis=2).shape, float(abs(out_bw[1, 2:]).max())
    ((2, 6, 9), 0.0)
    """
    check.rnn_cell(cell_fw, "cell_fw", RNNCell)
    check.rnn_cell(cell_bw, "cell_bw", RNNCell)
    dtype_fw = _run_dtype(cell_fw, initial_state_fw, dtype)
    dtype_bw = _run_dtype(cell_bw, initial_state_bw, dtype)
    precision = check.precision(precision, np.promote_types(dtype_fw, dtype_bw), _FLOAT32_FIX)
    depth_out = cell_fw.output_size + cell_bw.output_size
    x_fw, lengths = check.run_inputs(inputs, sequence_length, time_major, dtype_fw, depth_out)
    x_bw = (
        x_fw
        if dtype_bw == dtype_fw
        else check.run_inputs(inputs, sequence_length, time_major, dtype_bw, depth_out)[0]
    )
    batch, depth = lengths.shape[0], x_fw.shape[2]
    layer = (
        _layers.prepare(cell_fw, Direction.FORWARD, depth, batch, initial_state_fw, dtype_fw, "cell_fw: "),
        _layers.prepare(cell_bw, Direction.BACKWARD, depth, batch, initial_state_bw, dtype_bw, "cell_bw: "),
    )
    (output_fw, state_fw), (output_bw, state_bw) = _layers.run(
        layer, (x_fw, x_bw), lengths, time_major, precision
    )
    return (output_fw, output_bw), (state_fw, state_bw)
