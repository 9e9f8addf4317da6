"""Slow, obviously-correct numpy evaluation of TensorFlow 1's LSTM formulas.

One row at a time, one step at a time, in float64 with numpy's own functions:
the yardstick every kernel result is compared with. It shares no code with
fastlstm (the golden files from real TensorFlow check it in turn).
"""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "selu": lambda x: (
        1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0)))
    ),
    "swish": lambda x: x * _sigmoid(x),
}


# Gate activations (``recurrent_activation``); ONNX's HardSigmoid(a, b) is hard_sigmoid_onnx(a, b).
RECURRENT_ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "keras3_hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,
}


def hard_sigmoid_onnx(alpha, beta):
    """ONNX's HardSigmoid: min(max(alpha * x + beta, 0), 1)."""
    return lambda x: np.minimum(np.maximum(alpha * x + beta, 0.0), 1.0)


def lstm_step(
    x,
    c,
    h,
    kernel,
    bias,
    forget_bias=1.0,
    activation="tanh",
    peepholes=None,
    cell_clip=None,
    projection=None,
    proj_clip=None,
    recurrent_activation="sigmoid",
    gate_clip=None,
    operand_rounding=None,
):
    """One step of TF's LSTMCell (BasicLSTMCell when the extras are None) for one row.

    ``recurrent_activation`` (a name or a function) replaces the sigmoid of the
    gates i, f, o. ``gate_clip`` is ONNX's ``clip``: every activation's input
    (i, f, o with bias, forget_bias and peephole terms, and j) is clamped to
    [-gate_clip, gate_clip]; the cell state given to ``activation`` is not.
    ``operand_rounding`` (e.g. :func:`bf16`) is applied to the left operand of
    each matrix product, ``[x, h]`` and the projection's input; the caller
    rounds the weights.
    """
    act = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    gate = (
        RECURRENT_ACTIVATIONS[recurrent_activation]
        if isinstance(recurrent_activation, str)
        else recurrent_activation
    )
    rounded = (lambda v: v) if operand_rounding is None else operand_rounding

    def bound(v):
        return v if gate_clip is None else np.clip(v, -gate_clip, gate_clip)

    z = rounded(np.concatenate([x, h])) @ kernel + bias
    i, j, f, o = np.split(z, 4)
    f_in = f + forget_bias
    i_in = i
    if peepholes is not None:
        w_i, w_f, _ = peepholes
        f_in = f_in + w_f * c
        i_in = i_in + w_i * c
    new_c = gate(bound(f_in)) * c + gate(bound(i_in)) * act(bound(j))
    if cell_clip is not None:
        new_c = np.clip(new_c, -cell_clip, cell_clip)
    o_in = o if peepholes is None else o + peepholes[2] * new_c
    m = gate(bound(o_in)) * act(new_c)
    if projection is not None:
        m = rounded(m) @ projection
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return new_c, m


def dynamic_rnn(
    inputs, kernel, bias, sequence_length=None, initial_state=None, time_major=False, reverse=False, **cell
):
    """Batch-major float64 outputs and final (c, h) of one layer, row by row.

    ``reverse`` runs each row backwards within its own length (TF's
    reverse_sequence before and after), leaving the padding in place.
    """
    x = np.asarray(inputs, np.float64)
    if time_major:
        x = x.transpose(1, 0, 2)
    batch, max_time, _ = x.shape
    kernel = np.asarray(kernel, np.float64)
    bias = np.asarray(bias, np.float64)
    units = bias.shape[0] // 4
    projection = cell.get("projection")
    out_depth = units if projection is None else np.asarray(projection).shape[1]
    lengths = [max_time] * batch if sequence_length is None else [int(n) for n in sequence_length]
    outputs = np.zeros((batch, max_time, out_depth))
    final_c = np.zeros((batch, units))
    final_h = np.zeros((batch, out_depth))
    for b in range(batch):
        if initial_state is None:
            c, h = np.zeros(units), np.zeros(out_depth)
        else:
            c = np.asarray(initial_state[0][b], np.float64)
            h = np.asarray(initial_state[1][b], np.float64)
        steps = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        for t in steps:
            c, h = lstm_step(x[b, t], c, h, kernel, bias, **cell)
            outputs[b, t] = h
        final_c[b], final_h[b] = c, h
    if time_major:
        outputs = outputs.transpose(1, 0, 2)
    return outputs, (final_c, final_h)


def keras_masked_rnn(inputs, mask, kernel, bias, go_backwards=False, zero_output_for_mask=False, **cell):
    """Keras' RNN loop with a mask, one row and one step at a time, in float64.

    Every step is visited (``go_backwards``: from the last to the first); at a
    masked step the state stays as it was and the output is the previous
    output (the ``h`` of the state, Keras' default) or zeros
    (``zero_output_for_mask``, what Keras' Bidirectional forces). Returns the
    outputs in input time order (as Bidirectional flips them back), the last
    output (Keras' ``return_sequences=False``) and the final ``(c, h)``.
    """
    x = np.asarray(inputs, np.float64)
    batch, max_time, _ = x.shape
    units = np.asarray(bias).shape[0] // 4
    outputs = np.zeros((batch, max_time, units))
    last = np.zeros((batch, units))
    final_c, final_h = np.zeros((batch, units)), np.zeros((batch, units))
    for b in range(batch):
        c, h = np.zeros(units), np.zeros(units)
        steps = range(max_time - 1, -1, -1) if go_backwards else range(max_time)
        for t in steps:
            if mask[b, t]:
                c, h = lstm_step(
                    x[b, t], c, h, np.asarray(kernel, np.float64), np.asarray(bias, np.float64), **cell
                )
                outputs[b, t] = h
            else:
                outputs[b, t] = 0.0 if zero_output_for_mask else h
            last[b] = outputs[b, t]
        final_c[b], final_h[b] = c, h
    return outputs, last, (final_c, final_h)


def dense(x, kernel, bias=None, activation="linear"):
    """Keras' Dense in float64: ``activation(x @ kernel + bias)``; softmax over the last axis."""
    z = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    if activation == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return ACTIVATIONS[activation](z)


def bf16(x):
    """float64 values rounded to the nearest bfloat16 (8 significant bits, ties to even).

    As fastlstm's bfloat16 mode rounds: through float32 first; magnitudes
    below 2**-126 become zeros of their sign.
    """
    x = np.asarray(x, np.float64).astype(np.float32).astype(np.float64)
    out = x.copy()
    normal = np.isfinite(x) & (np.abs(x) >= 2.0**-126)
    ulp = np.exp2(np.floor(np.log2(np.abs(x[normal]))) - 7)
    out[normal] = np.round(x[normal] / ulp) * ulp  # np.round rounds halves to even
    out[np.isfinite(x) & ~normal] *= 0.0
    return out
