"""A plain numpy evaluation of TensorFlow 1's ``BasicLSTMCell`` over a batch.

This is the baseline the demo, the benchmarks and the comparison script measure
fastlstm against: one BLAS GEMM per time step over the rows still running, with
numpy's own ``tanh``/``exp``. It is slow but obviously right, and it runs in
whatever dtype its inputs have (use float64 for an "exact" evaluation).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dynamic_rnn_reference"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def dynamic_rnn_reference(
    kernel: np.ndarray,
    bias: np.ndarray,
    inputs: np.ndarray,
    sequence_length: np.ndarray | None = None,
    forget_bias: float = 1.0,
    initial_state: tuple[np.ndarray, np.ndarray] | None = None,
    time_major: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Run a tanh ``BasicLSTMCell`` over ``inputs`` with numpy, step by step.

    Parameters
    ----------
    kernel : ndarray, shape ``[input_size + num_units, 4 * num_units]``
        TF's kernel, gate columns in order (i, j, f, o).
    bias : ndarray, shape ``[4 * num_units]``
    inputs : ndarray, shape ``[batch, max_time, input_size]``
        ``[max_time, batch, input_size]`` when ``time_major``.
    sequence_length : ndarray of int, shape ``[batch]``, optional
        Valid steps per row; all of ``max_time`` when omitted.
    forget_bias : float
        Added to the forget gate before its sigmoid.
    initial_state : (c, h), optional
        Each ``[batch, num_units]``; zeros when omitted.
    time_major : bool
        Layout of ``inputs`` and of the returned outputs.

    Returns
    -------
    outputs : ndarray
        Same layout as ``inputs`` with depth ``num_units``; zero past each length.
    (c, h) : tuple of ndarray
        The state after each row's last valid step.
    """
    x = np.swapaxes(inputs, 0, 1) if time_major else inputs
    batch, max_time, input_size = x.shape
    units = bias.shape[0] // 4
    dtype = np.result_type(kernel, inputs)
    lengths = (
        np.full(batch, max_time, dtype=np.int64)
        if sequence_length is None
        else np.asarray(sequence_length, dtype=np.int64)
    )
    if initial_state is None:
        c = np.zeros((batch, units), dtype)
        h = np.zeros((batch, units), dtype)
    else:
        c = np.array(initial_state[0], dtype=dtype)
        h = np.array(initial_state[1], dtype=dtype)
    w_x, w_h = kernel[:input_size], kernel[input_size:]
    outputs = np.zeros((batch, max_time, units), dtype)
    for t in range(max_time):
        active = np.flatnonzero(lengths > t)
        if active.size == 0:
            break
        z = x[active, t] @ w_x + h[active] @ w_h + bias
        i, j, f, o = np.split(z, 4, axis=1)
        new_c = c[active] * _sigmoid(f + forget_bias) + _sigmoid(i) * np.tanh(j)
        new_h = np.tanh(new_c) * _sigmoid(o)
        c[active] = new_c
        h[active] = new_h
        outputs[active, t] = new_h
    if time_major:
        outputs = np.swapaxes(outputs, 0, 1)
    return outputs, (c, h)
