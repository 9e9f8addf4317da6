"""Issue 6, fuzzing: ``dynamic_rnn`` and ``bidirectional_dynamic_rnn`` over shapes (0 included),
cell types and dtypes, input dtypes, memory layouts, ``time_major``, length patterns and
initial states, against the numpy reference (tests/naive.py); and NaN/Inf kept in their row.

Extends test_properties.py (one float32 BasicLSTMCell, C-contiguous float32 inputs) and the
fixed layout cases of test_dynamic_rnn.py. Values are bounded (inputs in [-2, 2], at most 7
steps, weights in [-0.6, 0.6]) so the reference stays finite. Every cell uses a built-in
activation, so no kernel beyond the float32 and float64 ones is compiled.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fastlstm
from cell_helpers import basic_cell, lstm_cell, naive_run, randomise

# Scaled by FASTLSTM_HYPOTHESIS_EXAMPLES (conftest's profile, default 40).
EXAMPLES = max(60, settings.default.max_examples)

CELLS = {
    "basic_tanh_f32": basic_cell(5, 3),
    "basic_tanh_f64": basic_cell(5, 3, np.float64),
    # >= 16 units: batches under 16 rows take the kernel that splits units across 2 threads.
    "basic_split_f32": basic_cell(20, 2, seed=1),
    "basic_split_relu_f64": basic_cell(17, 4, np.float64, activation="relu", seed=2),
    "lstm_full_f32": lstm_cell(6, 3, use_peepholes=True, cell_clip=1.5, num_proj=4, proj_clip=0.8, seed=3),
    "lstm_full_f64": lstm_cell(
        6, 3, np.float64, use_peepholes=True, cell_clip=1.5, num_proj=4, proj_clip=0.8, seed=3
    ),
    "lstm_peep_split_f32": lstm_cell(18, 1, use_peepholes=True, cell_clip=2.0, seed=4),
    "lstm_wide_proj_selu_f64": lstm_cell(3, 2, np.float64, num_proj=7, activation="selu", seed=5),
    "basic_concat_softsign_f32": basic_cell(
        4, 3, state_is_tuple=False, activation="softsign", forget_bias=0.3
    ),
    "basic_hard_sigmoid_f64": basic_cell(3, 2, np.float64, activation="hard_sigmoid", seed=6),
    "basic_relu6_f32": basic_cell(3, 2, activation="relu6", seed=7),
    "basic_linear_f32": basic_cell(3, 2, activation="linear", seed=8),
    "basic_swish_f64": basic_cell(3, 2, np.float64, activation="swish", seed=9),
    "basic_sigmoid_f32": basic_cell(3, 2, activation="sigmoid", seed=10),
    "multi_f32": randomise(
        fastlstm.MultiRNNCell(
            [
                fastlstm.BasicLSTMCell(5, activation="elu"),
                fastlstm.LSTMCell(3, use_peepholes=True, num_proj=2),
            ]
        ),
        3,
        seed=11,
    ),
}
SINGLE = sorted(k for k, c in CELLS.items() if not isinstance(c, fastlstm.MultiRNNCell))

INPUT_DTYPES = ["float16", "float32", "float64", "<f8", ">f4", ">f8", "int8", "uint8", "int32", "int64"]
LAYOUTS = ["C", "F", "strided", "negative", "readonly", "broadcast", "unaligned", "list"]
LENGTH_KINDS = ["none", "list", "int32", "uint8", "float", "big_endian", "negative_stride_readonly"]


def depth_of(cell):
    return cell.input_size


def tolerance(dtype):
    """(rtol, atol) against the float64 reference after at most 7 bounded steps."""
    return (1e-12, 1e-12) if np.dtype(dtype) == np.float64 else (2e-5, 2e-5)


def layout(values, dtype, kind, batch_axis=0):
    """An array (or nested list) equal to ``values`` in ``dtype`` with the memory layout ``kind``.

    "broadcast" expects every row of ``values`` to be the same and gives a zero-stride view.
    """
    arr = values.astype(dtype)
    if kind == "C":
        return np.ascontiguousarray(arr)
    if kind == "F":
        return np.asfortranarray(arr)
    if kind == "strided":
        a, b, c = arr.shape
        big = np.zeros((2 * a + 1, 3 * b, 2 * c + 1), dtype)
        big[1::2, ::3, 1::2] = arr
        return big[1::2, ::3, 1::2]
    if kind == "negative":
        return arr[::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1]
    if kind == "broadcast" and arr.shape[batch_axis]:
        first = arr[:, :1] if batch_axis else arr[:1]
        return np.broadcast_to(first, arr.shape)
    if kind in ("readonly", "broadcast"):
        arr = arr.copy()
        arr.flags.writeable = False
        return arr
    if kind == "unaligned":
        raw = np.zeros(arr.nbytes + 1, np.uint8)[1:]
        out = raw.view(dtype).reshape(arr.shape) if arr.size else arr.copy()
        out[...] = arr
        return out
    if arr.size == 0:  # a nested list cannot carry an empty axis's siblings
        return arr.copy()
    return arr.tolist()


def lengths_as(lengths, kind):
    if kind == "none":
        return None
    if kind == "list":
        return [int(n) for n in lengths]
    if kind == "int32":
        return lengths.astype(np.int32)
    if kind == "uint8":
        return lengths.astype(np.uint8)
    if kind == "float":
        return lengths.astype(np.float64)
    if kind == "big_endian":
        return lengths.astype(">i8")
    view = lengths.astype(np.int16)[::-1].copy()[::-1]
    view.flags.writeable = False
    return view


def snapshot(value):
    """A deep copy for checking that nothing was modified (arrays keep dtype and flags)."""
    if isinstance(value, np.ndarray):
        return value.copy(), value.dtype, value.strides, value.flags.writeable
    if isinstance(value, (list, tuple)):
        return [snapshot(v) for v in value]
    return value


def assert_unchanged(value, snap):
    if isinstance(value, np.ndarray):
        copy, dtype, strides, writeable = snap
        assert value.dtype == dtype and value.strides == strides and value.flags.writeable == writeable
        np.testing.assert_array_equal(value, copy)
    elif isinstance(value, (list, tuple)):
        assert len(value) == len(snap)
        for v, s in zip(value, snap):
            assert_unchanged(v, s)
    else:
        assert value == snap


def run_dtype(cell, state_dtype, dtype_arg):
    """TF's rule, from the outside: a supported initial-state dtype, else ``dtype``, else the cell's."""
    if state_dtype in ("float32", "float64"):
        return np.dtype(state_dtype)
    if dtype_arg is not None:
        return np.dtype(dtype_arg)
    return cell.dtype


@st.composite
def scenarios(draw, cell_keys):
    key = draw(st.sampled_from(cell_keys))
    cell = CELLS[key]
    batch = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 15, 16, 17, 33]))
    max_time = draw(st.integers(0, 7))
    in_dtype = draw(st.sampled_from(INPUT_DTYPES))
    kind = draw(st.sampled_from(LAYOUTS))
    time_major = draw(st.booleans())
    pattern = draw(st.sampled_from(["random", "full", "zero", "one_long", "descending"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (batch, max_time, depth_of(cell))
    if np.dtype(in_dtype).kind in "iu":
        low = 0 if np.dtype(in_dtype).kind == "u" else -3
        values = rng.integers(low, 4, shape).astype(np.float64)
    else:
        values = rng.uniform(-2, 2, shape).astype(in_dtype).astype(np.float64)
    if kind == "broadcast" and batch:
        values = np.broadcast_to(values[:1], shape).copy()
    if pattern == "random":
        lengths = rng.integers(0, max_time + 1, batch)
    elif pattern == "full":
        lengths = np.full(batch, max_time)
    elif pattern == "zero":
        lengths = np.zeros(batch, np.int64)
    elif pattern == "one_long":
        lengths = np.zeros(batch, np.int64)
        lengths[: min(batch, 1)] = max_time
    else:
        lengths = np.linspace(max_time, 0, batch).round().astype(np.int64)
    length_kind = draw(st.sampled_from(LENGTH_KINDS if pattern != "full" else LENGTH_KINDS + ["none"] * 3))
    if length_kind == "none":
        lengths = np.full(batch, max_time)
    state_dtype = draw(st.sampled_from([None, None, "float16", "float32", "float64"]))
    dtype_arg = draw(st.sampled_from([None, None, "float32", "float64"]))
    return {
        "key": key,
        "cell": cell,
        "values": values,
        "in_dtype": in_dtype,
        "kind": kind,
        "time_major": time_major,
        "lengths": lengths.astype(np.int64),
        "length_kind": length_kind,
        "state_dtype": state_dtype,
        "dtype_arg": dtype_arg,
        "rng": rng,
    }


def physical_inputs(s):
    values = s["values"].transpose(1, 0, 2) if s["time_major"] else s["values"]
    return layout(values, s["in_dtype"], s["kind"], batch_axis=1 if s["time_major"] else 0)


def random_state(cell, batch, dtype, rng, fortran=False):
    """An initial state for ``cell`` (bounded values), parts in ``dtype``."""
    c = rng.uniform(-1, 1, (batch, cell.num_units)).astype(dtype)
    h = rng.uniform(-1, 1, (batch, cell.output_size)).astype(dtype)
    if fortran:
        c, h = np.asfortranarray(c), np.asfortranarray(h)
    if cell.state_is_tuple:
        return fastlstm.LSTMStateTuple(c, h) if rng.integers(2) else (c, h)
    return np.concatenate([c, h], axis=1)


def split_concat(cell, state):
    if cell.state_is_tuple:
        return state[0], state[1]
    return state[:, : cell.num_units], state[:, cell.num_units :]


def batch_major(outputs, time_major):
    return outputs.transpose(1, 0, 2) if time_major else outputs


def check_against_reference(cell, outputs, state, ref_x, lengths, initial, dtype, reverse=False):
    """Outputs and final state within tolerance of the reference; exact zeros past each length;
    final ``h`` bitwise the last valid output; a zero-length row keeps its initial state exactly."""
    rtol, atol = tolerance(dtype)
    init = None if initial is None else tuple(np.asarray(p, np.float64) for p in split_concat(cell, initial))
    if init is not None:
        init = tuple(p.astype(dtype).astype(np.float64) for p in init)
    ref_out, (ref_c, ref_h) = naive_run(cell, ref_x, lengths, init, reverse=reverse)
    assert outputs.dtype == dtype and outputs.shape == ref_out.shape
    np.testing.assert_allclose(outputs, ref_out, rtol=rtol, atol=atol)
    c, h = split_concat(cell, state)
    assert c.dtype == dtype and h.dtype == dtype
    np.testing.assert_allclose(c, ref_c, rtol=rtol, atol=atol)
    np.testing.assert_allclose(h, ref_h, rtol=rtol, atol=atol)
    for b, n in enumerate(lengths):
        if reverse:
            assert not outputs[b, n:].any()
            if n:
                np.testing.assert_array_equal(h[b], outputs[b, 0])
        else:
            assert not outputs[b, n:].any()
            if n:
                np.testing.assert_array_equal(h[b], outputs[b, n - 1])
        if n == 0:
            if init is None:
                assert not c[b].any() and not h[b].any()
            else:
                np.testing.assert_array_equal(c[b], init[0][b])
                np.testing.assert_array_equal(h[b], init[1][b])


@settings(max_examples=EXAMPLES)
@given(scenarios(sorted(CELLS)))
def test_dynamic_rnn_fuzz(s):
    cell, lengths, time_major = s["cell"], s["lengths"], s["time_major"]
    batch = lengths.shape[0]
    x = physical_inputs(s)
    seq = lengths_as(lengths, s["length_kind"])
    single = not isinstance(cell, fastlstm.MultiRNNCell)
    initial = None
    if s["state_dtype"] is not None and single:
        initial = random_state(cell, batch, s["state_dtype"], s["rng"], fortran=bool(s["rng"].integers(2)))
    dtype = run_dtype(cell, s["state_dtype"] if initial is not None else None, s["dtype_arg"])
    before = (snapshot(x), snapshot(seq), snapshot(initial))

    outputs, state = fastlstm.dynamic_rnn(
        cell, x, seq, initial_state=initial, dtype=s["dtype_arg"], time_major=time_major
    )

    assert_unchanged(x, before[0])
    assert_unchanged(seq, before[1])
    assert_unchanged(initial, before[2])
    out = batch_major(outputs, time_major)
    ref_x = s["values"].astype(dtype)
    if single:
        check_against_reference(cell, out, state, ref_x, lengths, initial, dtype)
        for part in split_concat(cell, state):
            assert not np.shares_memory(part, x if isinstance(x, np.ndarray) else out)
            for given_part in [] if initial is None else split_concat(cell, initial):
                assert not np.shares_memory(part, given_part)
    else:
        rtol, atol = tolerance(dtype)
        ref_out, ref_states = naive_run(cell, ref_x, lengths)
        np.testing.assert_allclose(out, ref_out, rtol=rtol, atol=atol)
        for (c, h), (rc, rh) in zip(state, ref_states, strict=True):
            np.testing.assert_allclose(c, rc, rtol=rtol, atol=atol)
            np.testing.assert_allclose(h, rh, rtol=rtol, atol=atol)
    # Any layout, input dtype and length type gives bitwise what plain C-ordered data in the
    # run dtype gives.
    canonical_initial = (
        None
        if initial is None
        else tuple(np.ascontiguousarray(p, dtype) for p in split_concat(cell, initial))
    )
    if canonical_initial is not None and not cell.state_is_tuple:
        canonical_initial = np.concatenate(canonical_initial, axis=1)
    plain_out, plain_state = fastlstm.dynamic_rnn(
        cell, np.ascontiguousarray(ref_x), lengths, initial_state=canonical_initial, dtype=dtype
    )
    np.testing.assert_array_equal(out, plain_out)
    for got, want in zip(_leaves(state), _leaves(plain_state), strict=True):
        np.testing.assert_array_equal(got, want)


def _leaves(state):
    if isinstance(state, np.ndarray):
        return [state]
    return [a for part in state for a in _leaves(part)]


@settings(max_examples=settings.default.max_examples)
@given(scenarios(SINGLE), st.sampled_from(SINGLE))
def test_bidirectional_fuzz(s, bw_key):
    fw = s["cell"]
    bw = CELLS[bw_key]
    if bw.input_size != fw.input_size:
        bw = randomise(type(bw)(**bw.get_config()), fw.input_size, seed=12)
    lengths, time_major = s["lengths"], s["time_major"]
    x = physical_inputs(s)
    seq = lengths_as(lengths, s["length_kind"])
    before = (snapshot(x), snapshot(seq))
    (out_fw, out_bw), (state_fw, state_bw) = fastlstm.bidirectional_dynamic_rnn(
        fw, bw, x, seq, dtype=s["dtype_arg"], time_major=time_major
    )
    assert_unchanged(x, before[0])
    assert_unchanged(seq, before[1])
    ref_x = s["values"]
    dtype_fw, dtype_bw = run_dtype(fw, None, s["dtype_arg"]), run_dtype(bw, None, s["dtype_arg"])
    check_against_reference(
        fw, batch_major(out_fw, time_major), state_fw, ref_x.astype(dtype_fw), lengths, None, dtype_fw
    )
    check_against_reference(
        bw,
        batch_major(out_bw, time_major),
        state_bw,
        ref_x.astype(dtype_bw),
        lengths,
        None,
        dtype_bw,
        reverse=True,
    )
    # The forward half is exactly dynamic_rnn.
    alone, alone_state = fastlstm.dynamic_rnn(fw, x, seq, dtype=s["dtype_arg"], time_major=time_major)
    np.testing.assert_array_equal(out_fw, alone)
    for got, want in zip(_leaves(state_fw), _leaves(alone_state), strict=True):
        np.testing.assert_array_equal(got, want)


# -- NaN and Inf stay in their row -----------------------------------------------------------
POISON_CELLS = [
    "basic_tanh_f32",
    "basic_tanh_f64",
    "basic_split_f32",
    "lstm_full_f32",
    "lstm_full_f64",
    "lstm_peep_split_f32",
    "basic_split_relu_f64",
]


@st.composite
def poisoned(draw):
    key = draw(st.sampled_from(POISON_CELLS))
    cell = CELLS[key]
    batch = draw(st.sampled_from([1, 2, 3, 5, 17, 70]))
    max_time = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-2, 2, (batch, max_time, cell.input_size)).astype(cell.dtype)
    lengths = rng.integers(0, max_time + 1, batch)
    row = draw(st.integers(0, batch - 1))
    lengths[row] = draw(st.integers(0, max_time))
    where = draw(st.sampled_from(["input", "input", "state_c", "state_h"]))
    step = draw(st.integers(0, max_time - 1))
    unit = draw(st.integers(0, 10**6))
    value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    extra_rows = draw(st.lists(st.integers(0, batch - 1), max_size=3))
    return {
        "cell": cell,
        "x": x,
        "lengths": lengths,
        "row": row,
        "where": where,
        "step": step,
        "unit": unit,
        "value": value,
        "time_major": draw(st.booleans()),
        "extra_rows": extra_rows,
    }


def _poison(p):
    """Clean and poisoned (inputs, initial state); rows other than ``row`` are identical."""
    cell, x, row = p["cell"], p["x"], p["row"]
    batch = x.shape[0]
    c0 = np.zeros((batch, cell.num_units), cell.dtype)
    h0 = np.zeros((batch, cell.output_size), cell.dtype)
    bad_x, bad_c, bad_h = x.copy(), c0.copy(), h0.copy()
    if p["where"] == "input":
        bad_x[row, p["step"], p["unit"] % x.shape[2]] = p["value"]
        # Garbage in the padding of other rows must be ignored as well.
        for other in p["extra_rows"]:
            if other != row and p["lengths"][other] < x.shape[1]:
                bad_x[other, p["lengths"][other] :] = np.nan
                x[other, p["lengths"][other] :] = 1e30 if cell.dtype == np.float32 else 1e300
    elif p["where"] == "state_c":
        bad_c[row, p["unit"] % cell.num_units] = p["value"]
    else:
        bad_h[row, p["unit"] % cell.output_size] = p["value"]
    return (x, (c0, h0)), (bad_x, (bad_c, bad_h))


def _rows_equal(a, b, rows):
    for r in rows:
        np.testing.assert_array_equal(a[r], b[r])


@settings(max_examples=settings.default.max_examples)
@given(poisoned())
def test_nan_and_inf_stay_in_their_row(p):
    cell, row, step, lengths = p["cell"], p["row"], p["step"], p["lengths"]
    (x, init), (bad_x, bad_init) = _poison(p)
    tm = p["time_major"]

    def run(inputs, state):
        inputs = inputs.transpose(1, 0, 2) if tm else inputs
        out, st_ = fastlstm.dynamic_rnn(cell, inputs, lengths, initial_state=state, time_major=tm)
        return batch_major(out, tm), st_

    clean, clean_state = run(x, init)
    out, state = run(bad_x, bad_init)
    others = [r for r in range(x.shape[0]) if r != row]
    _rows_equal(out, clean, others)
    _rows_equal(state.c, clean_state.c, others)
    _rows_equal(state.h, clean_state.h, others)
    n = lengths[row]
    assert not out[row, n:].any()  # padding stays exactly zero, poisoned or not
    if p["where"] == "input":
        if step >= n:  # a poisoned padding step is never read
            np.testing.assert_array_equal(out[row], clean[row])
            np.testing.assert_array_equal(state.c[row], clean_state.c[row])
            np.testing.assert_array_equal(state.h[row], clean_state.h[row])
            return
        np.testing.assert_array_equal(out[row, :step], clean[row, :step])
        first = step
    else:
        first = 0
        if n == 0:  # a zero-length row hands back its initial state, poison and all
            np.testing.assert_array_equal(state.c[row], bad_init[0][row])
            np.testing.assert_array_equal(state.h[row], bad_init[1][row])
            return
    if np.isnan(p["value"]):
        # NaN is never clipped or masked away: every valid step from the poisoned one on has a
        # NaN, every later step is NaN throughout (a NaN in one unit of c reaches all units
        # through h @ kernel one step later), and the final state keeps it.
        assert np.isnan(out[row, first:n]).any(axis=-1).all()
        assert np.isnan(out[row, first + 1 : n]).all()
        assert np.isnan(state.c[row]).any() and np.isnan(state.h[row]).any()


@settings(max_examples=settings.default.max_examples)
@given(poisoned(), st.sampled_from(POISON_CELLS))
def test_nan_and_inf_stay_in_their_row_bidirectional(p, bw_key):
    fw, row, step, lengths = p["cell"], p["row"], p["step"], p["lengths"]
    bw = CELLS[bw_key]
    if bw.input_size != fw.input_size:
        bw = randomise(type(bw)(**bw.get_config()), fw.input_size, seed=13)
    p = {**p, "where": "input"}
    (x, _), (bad_x, _) = _poison(p)
    (clean_fw, clean_bw), (cs_fw, cs_bw) = fastlstm.bidirectional_dynamic_rnn(fw, bw, x, lengths)
    (out_fw, out_bw), (s_fw, s_bw) = fastlstm.bidirectional_dynamic_rnn(fw, bw, bad_x, lengths)
    others = [r for r in range(x.shape[0]) if r != row]
    for got, want in [
        (out_fw, clean_fw),
        (out_bw, clean_bw),
        (s_fw.c, cs_fw.c),
        (s_fw.h, cs_fw.h),
        (s_bw.c, cs_bw.c),
        (s_bw.h, cs_bw.h),
    ]:
        _rows_equal(got, want, others)
    n = lengths[row]
    assert not out_fw[row, n:].any() and not out_bw[row, n:].any()
    if step >= n:
        np.testing.assert_array_equal(out_fw[row], clean_fw[row])
        np.testing.assert_array_equal(out_bw[row], clean_bw[row])
        return
    # Forward: steps before the poison untouched; backward (reads n-1 down to 0): steps after it.
    np.testing.assert_array_equal(out_fw[row, :step], clean_fw[row, :step])
    np.testing.assert_array_equal(out_bw[row, step + 1 : n], clean_bw[row, step + 1 : n])
    if np.isnan(p["value"]):
        assert np.isnan(out_fw[row, step:n]).all() and np.isnan(out_bw[row, : step + 1]).all()
        assert np.isnan(s_fw.h[row]).all() and np.isnan(s_bw.h[row]).all()
