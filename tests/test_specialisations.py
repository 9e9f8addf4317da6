"""Issue 7: changing dtype, activation, cell options or input layout never adds kernel
specialisations beyond one per dtype (each would cost seconds of compile time and its own
cache entry). Issue 13: neither do the gate activations and gate_clip (counted on the three
gate kernels of those families the variants below use)."""

from __future__ import annotations

import numpy as np

import fastlstm
from fastlstm import _kernels
from fastlstm._runner import run_layer

KERNELS = {
    "matmul_accumulate": _kernels.matmul_accumulate,
    **{f"gates/{code}": kernel for code, kernel in _kernels.GATE_KERNELS.items()},
    "gates/tanh_hard": _kernels.lstm_gates_tanh_hard,
    "gates/relu_hard": _kernels.lstm_gates_relu_hard,
    "gates/tanh_clipped": _kernels.lstm_gates_tanh_clipped,
    "run_block": _kernels.run_block,
    "lstm_layer": _kernels.lstm_layer,
    "lstm_layer_serial": _kernels.lstm_layer_serial,
    "step_unit_part": _kernels.step_unit_part,
    "lstm_layer_split_units": _kernels.lstm_layer_split_units,
}


def input_variants(rng, dtype):
    """The same batch in every layout, byte order and dtype a user may hand over."""
    x = rng.standard_normal((3, 4, 5))
    yield x.astype(dtype)
    yield np.asfortranarray(x.astype(dtype))
    yield rng.standard_normal((3, 8, 5)).astype(dtype)[:, ::2]
    read_only = x.astype(dtype)
    read_only.flags.writeable = False
    yield read_only
    yield x.astype(np.dtype(dtype).newbyteorder(">"))
    yield x.astype(np.float16)
    yield np.round(x * 3).astype(np.int32)
    yield x.tolist()


def cell_variants(dtype):
    for activation in (
        None,
        "relu",
        "sigmoid",
        "linear",
        "softsign",
        "elu",
        "hard_sigmoid",
        "relu6",
        "selu",
        "swish",
    ):
        yield fastlstm.BasicLSTMCell(4, activation=activation, dtype=dtype)
    yield fastlstm.LSTMCell(4, use_peepholes=True, cell_clip=0.5, dtype=dtype)
    yield fastlstm.BasicLSTMCell(4, recurrent_activation="hard_sigmoid", dtype=dtype)
    yield fastlstm.BasicLSTMCell(
        4, activation="relu", recurrent_activation=fastlstm.HardSigmoid(0.3, 0.4), dtype=dtype
    )
    yield fastlstm.LSTMCell(4, recurrent_activation="keras3_hard_sigmoid", num_proj=3, dtype=dtype)
    yield fastlstm.LSTMCell(4, use_peepholes=True, gate_clip=0.6, dtype=dtype)
    yield fastlstm.LSTMCell(4, num_proj=3, proj_clip=0.2, dtype=dtype)
    yield fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(4, dtype=dtype), fastlstm.LSTMCell(3, dtype=dtype)])


def test_one_specialisation_per_dtype_whatever_the_inputs(rng):
    for dtype in (np.float32, np.float64):
        for cell in cell_variants(dtype):
            for x in input_variants(rng, dtype):
                fastlstm.dynamic_rnn(cell, x, sequence_length=np.array([4, 0, 2], np.int32), dtype=dtype)
            x = rng.standard_normal((4, 3, 5)).astype(dtype)
            fastlstm.dynamic_rnn(cell, x, time_major=True, dtype=dtype)
            fastlstm.dynamic_rnn(cell, x[:1, :1], time_major=True, dtype=dtype)
        fastlstm.bidirectional_dynamic_rnn(
            fastlstm.BasicLSTMCell(4, dtype=dtype),
            fastlstm.BasicLSTMCell(5, dtype=dtype),
            rng.standard_normal((2, 3, 5)),
            sequence_length=[3, 1],
            dtype=dtype,
        )
        # One row, 128 units: few rows for the threads, so the units are split across them.
        wide = fastlstm.BasicLSTMCell(128, dtype=dtype)
        fastlstm.dynamic_rnn(wide, rng.standard_normal((1, 2, 8)), dtype=dtype)
        initial = fastlstm.LSTMStateTuple(np.ones((1, 128), dtype), np.ones((1, 128), dtype))
        fastlstm.dynamic_rnn(wide, rng.standard_normal((1, 2, 8)), initial_state=initial)
        # The serial kernel of processes forked after numba's threads started (see test_reliability_fork).
        weights = wide._weights(np.dtype(dtype))
        state = np.zeros((2, 128), dtype)
        run_layer(weights, np.zeros((2, 3, 8), dtype), np.array([3, 1]), state, state, False, serial=True)

    counts = {name: len(kernel.signatures) for name, kernel in KERNELS.items()}
    assert counts == dict.fromkeys(KERNELS, 2), counts
