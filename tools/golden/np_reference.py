"""Tiny pure-numpy reference of the TF1 / Keras LSTM formulas.

Used only by the golden generators in this folder to sanity-check that the
arrays they store mean what tests/golden/README.md says they mean.  Everything
is evaluated in float64.  No TensorFlow import here.
"""

import numpy as np

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": sigmoid,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "elu": _elu,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x * sigmoid(x),
    # tf_keras (legacy Keras 2) backend.hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "linear": lambda x: x,
}


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def basic_lstm_step(kernel, bias, forget_bias, act):
    """tf.compat.v1.nn.rnn_cell.BasicLSTMCell; gates (i, j, f, o)."""
    kernel, bias = f64(kernel), f64(bias)

    def step(x, state):
        c, h = state
        z = np.concatenate([x, h], 1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * act(j)
        new_h = act(new_c) * sigmoid(o)
        return new_h, (new_c, new_h)

    return step


def lstm_cell_step(
    kernel,
    bias,
    forget_bias,
    act,
    w_f_diag=None,
    w_i_diag=None,
    w_o_diag=None,
    cell_clip=None,
    proj_kernel=None,
    proj_clip=None,
    stats=None,
):
    """tf.compat.v1.nn.rnn_cell.LSTMCell; gates (i, j, f, o), state (c, m).

    ``stats`` (a dict) collects whether cell_clip / proj_clip were active.
    """
    kernel, bias = f64(kernel), f64(bias)
    wf, wi, wo, pk = f64(w_f_diag), f64(w_i_diag), f64(w_o_diag), f64(proj_kernel)
    peep = wf is not None

    def step(x, state):
        c_prev, m_prev = state
        z = np.concatenate([x, m_prev], 1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        if peep:
            c = sigmoid(f + forget_bias + wf * c_prev) * c_prev + sigmoid(i + wi * c_prev) * act(j)
        else:
            c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * act(j)
        if cell_clip is not None:
            if stats is not None:
                stats["cell_clip_hits"] = stats.get("cell_clip_hits", 0) + int(np.sum(np.abs(c) > cell_clip))
            c = np.clip(c, -cell_clip, cell_clip)
        if peep:
            m = sigmoid(o + wo * c) * act(c)
        else:
            m = sigmoid(o) * act(c)
        if pk is not None:
            m = m @ pk
            if proj_clip is not None:
                if stats is not None:
                    stats["proj_clip_hits"] = stats.get("proj_clip_hits", 0) + int(
                        np.sum(np.abs(m) > proj_clip)
                    )
                m = np.clip(m, -proj_clip, proj_clip)
        return m, (c, m)

    return step


def multi_step(steps):
    """MultiRNNCell: state is a tuple of per-layer states."""

    def step(x, states):
        new = []
        for s, st in zip(steps, states):
            x, ns = s(x, st)
            new.append(ns)
        return x, tuple(new)

    return step


def dynamic_rnn(step, inputs, seq_len, init_state, out_size):
    """tf.compat.v1.nn.dynamic_rnn semantics, batch-major inputs [B, T, D].

    Outputs are zero at t >= seq_len[b]; the state is frozen there, so the
    final state is the state after each row's last valid step (the initial
    state for length 0).
    """
    inputs = f64(inputs)
    B, T, _ = inputs.shape
    lens = np.full(B, T) if seq_len is None else np.asarray(seq_len)
    state = init_state
    outs = np.zeros((B, T, out_size))
    for t in range(T):
        out, new_state = step(inputs[:, t], state)
        valid = (t < lens)[:, None]
        outs[:, t] = np.where(valid, out, 0.0)
        state = _nest_where(valid, new_state, state)
    return outs, state


def _nest_where(valid, a, b):
    if isinstance(a, tuple):
        return tuple(_nest_where(valid, x, y) for x, y in zip(a, b))
    return np.where(valid, a, b)


def reverse_sequence(x, seq_len):
    """tf.reverse_sequence along time (axis 1) for batch-major x."""
    x = np.array(x)
    B, T = x.shape[:2]
    lens = np.full(B, T) if seq_len is None else np.asarray(seq_len)
    for b in range(B):
        n = int(lens[b])
        x[b, :n] = x[b, :n][::-1]
    return x


# Gate (recurrent) activations of Keras LSTMs.
RECURRENT_ACTIVATIONS = {
    "sigmoid": sigmoid,
    # tf_keras / Keras 2 backend.hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)
    "hard_sigmoid": ACTIVATIONS["hard_sigmoid"],
    # Keras 3 ops.hard_sigmoid: relu6(x + 3) / 6
    "keras3_hard_sigmoid": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
}


def keras_lstm(inputs, kernel, recurrent_kernel, bias, go_backwards=False, recurrent_activation="sigmoid"):
    """Keras LSTM layer (tanh activation), gates (i, f, c, o), zero init state.

    ``recurrent_activation`` is a key of RECURRENT_ACTIVATIONS. Returns (sequence
    outputs [B, T, u] in processing order, i.e. reversed in time when
    go_backwards, like a Keras LSTM layer; final h; final c).
    """
    gate = RECURRENT_ACTIVATIONS[recurrent_activation]
    x = f64(inputs)
    W, U, b = f64(kernel), f64(recurrent_kernel), f64(bias)
    B, T, _ = x.shape
    u = U.shape[0]
    h = np.zeros((B, u))
    c = np.zeros((B, u))
    outs = np.zeros((B, T, u))
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    for k, t in enumerate(order):
        z = x[:, t] @ W + h @ U + b
        i, f, cc, o = np.split(z, 4, axis=1)
        c = gate(f) * c + gate(i) * np.tanh(cc)
        h = gate(o) * np.tanh(c)
        outs[:, k] = h
    return outs, h, c


def check(name, got, want, dtype):
    tol = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert err < tol, f"{name}: max abs err {err:g} >= {tol:g}"
    return err
