"""Random cells and their naive-reference evaluation, shared by the LSTMCell,
MultiRNNCell/bidirectional and model tests."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import fastlstm
import naive


def leaves(obj):
    """The single-layer cells of a cell, MultiRNNCell, Backward layer or LSTMModel, in order."""
    if isinstance(obj, fastlstm.LSTMModel):
        return [
            leaf
            for layer in obj.layers
            for cell in (layer if isinstance(layer, tuple) else (layer,))
            for leaf in leaves(cell)
        ]
    if isinstance(obj, fastlstm.Backward):
        return leaves(obj.cell)
    if isinstance(obj, fastlstm.MultiRNNCell):
        return [leaf for cell in obj.cells for leaf in leaves(cell)]
    return [obj]


def randomise(obj, depth, seed=0):
    """Give a cell or model random non-zero weights for inputs of ``depth``."""
    gen = np.random.default_rng(seed)
    obj.build(depth, seed=seed)
    for leaf in leaves(obj):
        leaf.set_weights([gen.uniform(-0.6, 0.6, w.shape) for w in leaf.get_weights()])
    return obj


def lstm_cell(units, depth, dtype=np.float32, seed=0, **kwargs):
    """A built LSTMCell with random weights (peepholes and projection too)."""
    return randomise(fastlstm.LSTMCell(units, dtype=dtype, **kwargs), depth, seed)


def basic_cell(units, depth, dtype=np.float32, seed=0, **kwargs):
    return randomise(fastlstm.BasicLSTMCell(units, dtype=dtype, **kwargs), depth, seed)


def naive_options(cell):
    """The keyword arguments of ``naive.dynamic_rnn`` for a single-layer cell."""
    options = {"forget_bias": cell.forget_bias, "activation": cell.activation or "tanh"}
    if isinstance(cell, fastlstm.LSTMCell):
        if cell.use_peepholes:
            options["peepholes"] = (cell.w_i_diag, cell.w_f_diag, cell.w_o_diag)
        options.update(cell_clip=cell.cell_clip, projection=cell.projection_kernel, proj_clip=cell.proj_clip)
    return options


def naive_run(cell, x, lengths=None, initial=None, time_major=False, reverse=False):
    """Float64 outputs (in the input layout) and final state of any cell, by the reference.

    The state comes back shaped like fastlstm's: ``(c, h)`` for a single cell,
    a tuple of those for a MultiRNNCell.
    """
    if isinstance(cell, fastlstm.MultiRNNCell):
        initial = (None,) * len(cell.cells) if initial is None else initial
        states = []
        for layer, state in zip(cell.cells, initial):
            x, final = naive_run(layer, x, lengths, state, time_major, reverse)
            states.append(final)
        return x, tuple(states)
    return naive.dynamic_rnn(
        x,
        cell.kernel,
        cell.bias,
        lengths,
        initial,
        time_major=time_major,
        reverse=reverse,
        **naive_options(cell),
    )


def assert_state_close(state, expected, atol):
    """Compare nested states (LSTMStateTuples / tuples of them) leaf by leaf."""
    if isinstance(expected, tuple) and isinstance(expected[0], np.ndarray):
        np.testing.assert_allclose(state[0], expected[0], atol=atol, rtol=0)
        np.testing.assert_allclose(state[1], expected[1], atol=atol, rtol=0)
        return
    assert len(state) == len(expected)
    for got, want in zip(state, expected):
        assert_state_close(got, want, atol)


def tolerance(dtype):
    return 1e-12 if np.dtype(dtype) == np.float64 else 2e-6


def outputs_compiled_for(cpu_name: str, cpu_features: str, script: str, tmp_path) -> np.ndarray:
    """Run ``script`` (which saves its outputs to ``sys.argv[1]``) in a process whose numba
    compiles for another CPU, with its own empty cache; return what it saved."""
    target = tmp_path / f"{cpu_name}.npy"
    env = {
        **os.environ,
        "NUMBA_CPU_NAME": cpu_name,
        "NUMBA_CPU_FEATURES": cpu_features,
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(target)
