"""fastlstm and the numpy reference against outputs of real TensorFlow 1.

The files in golden/ come from tools/golden/make_tf_golden.py (TF 2.21 with
tf.compat.v1 cells); see golden/README.md.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import naive
from conftest import GOLDEN

BASIC_CASES = sorted(p.stem for p in GOLDEN.glob("basic_*.npz"))


def load(name):
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def tolerance(dtype):
    return 1e-12 if np.dtype(str(dtype)) == np.float64 else 2e-6


def test_golden_cases_present():
    assert len(BASIC_CASES) >= 15


@pytest.mark.parametrize("case", BASIC_CASES)
def test_naive_reference_matches_tensorflow(case):
    g = load(case)
    initial = (g["initial_c"], g["initial_h"]) if "initial_c" in g else None
    outputs, (c, h) = naive.dynamic_rnn(
        g["inputs"],
        g["kernel"],
        g["bias"],
        g.get("sequence_length"),
        initial,
        time_major=bool(g["time_major"]),
        forget_bias=float(g["forget_bias"]),
        activation=str(g["activation"]),
    )
    tol = tolerance(g["dtype"])
    np.testing.assert_allclose(outputs, g["outputs"], atol=tol, rtol=0)
    np.testing.assert_allclose(c, g["final_c"], atol=tol, rtol=0)
    np.testing.assert_allclose(h, g["final_h"], atol=tol, rtol=0)


@pytest.mark.parametrize("case", BASIC_CASES)
def test_basic_lstm_cell_matches_tensorflow(case):
    g = load(case)
    dtype = np.dtype(str(g["dtype"]))
    cell = fastlstm.BasicLSTMCell(
        int(g["num_units"]),
        forget_bias=float(g["forget_bias"]),
        state_is_tuple=bool(g["state_is_tuple"]),
        activation=str(g["activation"]),
        dtype=dtype,
    )
    cell.set_weights([g["kernel"], g["bias"]])
    initial = None
    if "initial_c" in g:
        initial = fastlstm.LSTMStateTuple(g["initial_c"], g["initial_h"])
    outputs, state = fastlstm.dynamic_rnn(
        cell,
        g["inputs"],
        sequence_length=g.get("sequence_length"),
        initial_state=initial,
        time_major=bool(g["time_major"]),
    )
    assert outputs.dtype == dtype
    tol = tolerance(dtype)
    np.testing.assert_allclose(outputs, g["outputs"], atol=tol, rtol=0)
    if bool(g["state_is_tuple"]):
        c, h = state
    else:
        np.testing.assert_allclose(state, g["final_state_concat"], atol=tol, rtol=0)
        c, h = np.split(state, 2, axis=1)
    np.testing.assert_allclose(c, g["final_c"], atol=tol, rtol=0)
    np.testing.assert_allclose(h, g["final_h"], atol=tol, rtol=0)


def test_hard_sigmoid_is_tf_keras_formula():
    g = load("basic_hard_sigmoid")
    grid_x, grid_y = g["hard_sigmoid_grid_x"], g["hard_sigmoid_grid_y"]
    np.testing.assert_allclose(
        naive.ACTIVATIONS["hard_sigmoid"](grid_x.astype(np.float64)), grid_y, atol=1e-7
    )
