"""``precision="bfloat16"``: the arguments, the numbers (a float64 evaluation with the same operands
rounded to bfloat16; the error against the float64 model on the benchmark shapes), every driver,
the emulation on a CPU without AVX512-BF16 and the compile-on-first-use of the bfloat16 kernels."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastlstm
import fastlstm.scoring
import naive
from cell_helpers import basic_cell, lstm_cell, naive_options, outputs_compiled_for
from fastlstm import _kernels, _runner
from fastlstm._runner import run_layer


def bf16_reference(cell, x, lengths=None, reverse=False):
    """float64 outputs and final (c, h) of a single-layer cell in bfloat16 mode, by the reference.

    The kernel (and projection) and the left operand of every product rounded to
    bfloat16 (``h`` is rounded from float64 here, from float32 in fastlstm).
    """
    options = naive_options(cell)
    if options.get("projection") is not None:
        options["projection"] = naive.bf16(options["projection"])
    return naive.dynamic_rnn(
        np.asarray(x, np.float32),
        naive.bf16(cell.kernel),
        cell.bias,
        lengths,
        reverse=reverse,
        operand_rounding=naive.bf16,
        **options,
    )


def test_one_step_from_zero_state_is_the_product_of_the_rounded_operands(rng):
    """h0 = 0: the only product operands are x and the kernel, rounded the same way on both sides."""
    cell = basic_cell(12, 5, seed=3)
    x = rng.uniform(-2, 2, (6, 1, 5)).astype(np.float32)
    outputs, state = fastlstm.dynamic_rnn(cell, x, precision="bfloat16")
    expected, (c, _) = bf16_reference(cell, x)
    assert outputs.dtype == np.float32 and state.c.dtype == np.float32
    np.testing.assert_allclose(outputs, expected, atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.c, c, atol=2e-6, rtol=0)
    # and it is not the float32 product: the rounding of the weights shows
    assert np.abs(outputs - fastlstm.dynamic_rnn(cell, x)[0]).max() > 1e-4


@pytest.mark.parametrize(
    "make",
    [
        lambda: basic_cell(12, 3, seed=21),
        lambda: lstm_cell(40, 3, use_peepholes=True, cell_clip=1.0, num_proj=40, seed=23),
        lambda: basic_cell(40, 3, seed=25),  # one or two rows: units split across the threads
    ],
    ids=["basic", "peepholes_clip_projection", "split_units"],
)
def test_sequences_follow_the_rounded_reference(rng, make):
    cell = make()
    x = rng.uniform(-2, 2, (5, 9, 3)).astype(np.float32)
    lengths = np.array([9, 5, 1, 0, 8])
    for rows in (slice(0, 5), slice(0, 1)):
        outputs, state = fastlstm.dynamic_rnn(cell, x[rows], lengths[rows], precision="bfloat16")
        expected, (_, h) = bf16_reference(cell, x[rows], lengths[rows])
        # h rounds from float32 in fastlstm and from float64 in the reference: a rare
        # bfloat16 rounding tie-break apart, the two agree to float32 rounding
        np.testing.assert_allclose(outputs, expected, atol=1e-3, rtol=0)
        assert np.median(np.abs(outputs - expected)) < 1e-6
        np.testing.assert_allclose(state.h, h, atol=1e-3, rtol=0)
        assert (outputs[1, 5:] == 0).all() if rows.stop == 5 else True


# The benchmark workloads' (input_size, num_units), 100 steps of 8 rows (the error of a row does
# not depend on the batch); bound: about twice the largest error measured (README).
SUITE_SHAPES = {"small": (32, 64), "scoring": (64, 128), "large": (256, 512), "single": (64, 256)}
SUITE_SHAPES |= {"longseq": (40, 128), "wide_batch": (16, 32)}
ERROR_BOUND = 6e-3


@pytest.mark.parametrize("name", SUITE_SHAPES)
def test_error_against_the_float64_model_on_the_benchmark_shapes(name):
    depth, units = SUITE_SHAPES[name]
    rng = np.random.default_rng(1234)
    limit = np.sqrt(6.0 / (depth + 5 * units))
    kernel = rng.uniform(-limit, limit, (depth + units, 4 * units)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 4 * units).astype(np.float32)
    x = rng.standard_normal((8, 100, depth)).astype(np.float32)
    cell = fastlstm.BasicLSTMCell(units)
    cell.set_weights([kernel, bias])
    outputs, state = fastlstm.dynamic_rnn(cell, x, precision="bfloat16")
    expected, (_, h) = naive.dynamic_rnn(x, kernel, bias)
    error = np.abs(outputs - expected).max()
    assert error < ERROR_BOUND
    assert error > 1e-5  # bfloat16 products, not float32 ones
    np.testing.assert_allclose(state.h, h, atol=ERROR_BOUND, rtol=0)


@pytest.mark.parametrize("reverse", [False, True])
def test_split_units_kernel_is_bitwise_the_row_kernel(rng, reverse):
    """37 units: the parts' last 16-column vectors are partial, so the emulated columns join in."""
    cell = lstm_cell(37, 5, use_peepholes=True, cell_clip=0.7, seed=3)
    weights = cell._weights(np.dtype(np.float32))
    x = rng.uniform(-2, 2, (7, 9, 5)).astype(np.float32)
    lengths = np.array([9, 0, 4, 9, 1, 6, 3], dtype=np.int64)
    c0, h0 = (rng.uniform(-1, 1, (7, 37)).astype(np.float32) for _ in range(2))
    rows = run_layer(weights, x, lengths, c0, h0, False, reverse, split_units=False, precision="bfloat16")
    units = run_layer(weights, x, lengths, c0, h0, False, reverse, split_units=True, precision="bfloat16")
    for by_rows, by_units in zip(rows, units):
        np.testing.assert_array_equal(by_units, by_rows)


@contextlib.contextmanager
def through_the_layer_kernel(weights):
    """Run ``weights``' bfloat16 products through ``_kernels.run_block`` and the product kernel.

    ``_runner`` runs bfloat16 layers with ``_kernels_bf16.run_block_bf16``; the float32
    layer kernel calling ``matmul_accumulate_bf16`` at every product (what the unit-split
    kernel does) is the plain statement of the same arithmetic.
    """
    inputs = _runner.kernel_inputs(weights, "bfloat16", units_split=True)  # with calls.matmul
    by_precision = _runner._kernel_inputs[weights]
    by_precision["bfloat16"] = dataclasses.replace(
        inputs, block_kernel=_kernels.run_block, block_addresses={}
    )
    try:
        yield
    finally:
        by_precision["bfloat16"] = inputs


def run_on_threads(threads, *args, **kwargs):
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return run_layer(*args, **kwargs)
    finally:
        numba.set_num_threads(before)


# 16-column vectors and a remainder, an odd depth; another activation and the hard sigmoid
# gates; peepholes, both clips and a projection; several 64-column blocks
BLOCK_KERNEL_CELLS = {
    "basic": lambda: basic_cell(37, 5, seed=1),
    "relu_hard_gates": lambda: basic_cell(
        16, 24, seed=2, activation="relu", recurrent_activation="hard_sigmoid"
    ),
    "peepholes_clips_projection": lambda: lstm_cell(
        40, 9, seed=3, use_peepholes=True, cell_clip=0.8, num_proj=21, proj_clip=0.5, gate_clip=2.0
    ),
    "wide": lambda: basic_cell(130, 70, seed=4),
}


@pytest.mark.parametrize("name", BLOCK_KERNEL_CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("inputs", ["batch_major", "time_major", "token_ids"])
def test_the_bfloat16_block_kernel_is_bitwise_the_layer_kernel(rng, name, reverse, inputs):
    """run_block_bf16 rounds each operand where it is made and starts from the bias: same bits.

    Batches of one to four blocks of rows, lengths from 0 to max_time, random initial
    states, one and two threads; rows spread over the threads (the unit-split kernel is
    compared with the row kernel in test_split_units_kernel_is_bitwise_the_row_kernel).
    """
    weights = BLOCK_KERNEL_CELLS[name]()._weights(np.dtype(np.float32))
    depth, time_major = weights.in_depth, inputs == "time_major"
    for batch, max_time in ((1, 4), (7, 9), (45, 13)):
        shape = (max_time, batch) if time_major else (batch, max_time)
        lengths = rng.integers(0, max_time + 1, batch)
        lengths[0] = max_time
        c0 = rng.uniform(-1, 1, (batch, weights.units)).astype(np.float32)
        h0 = rng.uniform(-1, 1, (batch, weights.out_depth)).astype(np.float32)
        options = {"split_units": False, "precision": "bfloat16"}
        if inputs == "token_ids":
            x = rng.uniform(-2, 2, (11, depth)).astype(np.float32)
            options["tokens"] = rng.integers(0, 11, shape).astype(np.int64)
        else:
            x = rng.uniform(-2, 2, (*shape, depth)).astype(np.float32)
        args = (weights, x, lengths.astype(np.int64), c0, h0, time_major, reverse)
        ours = [run_on_threads(threads, *args, **options) for threads in (1, 2)]
        with through_the_layer_kernel(weights):
            expected = run_layer(*args, **options)
        for result in ours:
            for got, want in zip(result, expected):
                np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def _reverse_each(x, lengths):
    """Each row reversed within its own length (TF's reverse_sequence)."""
    return np.stack([np.concatenate([row[:n][::-1], row[n:]]) for row, n in zip(x, lengths)])


def test_every_driver_takes_precision(rng):
    fw, bw = basic_cell(12, 3, seed=21), lstm_cell(6, 3, num_proj=4, seed=22)
    top = basic_cell(5, 12, seed=23)
    x = rng.uniform(-2, 2, (4, 7, 3)).astype(np.float32)
    lengths = [7, 3, 0, 5]
    out_fw, state_fw = fastlstm.dynamic_rnn(fw, x, lengths, precision="bfloat16")
    out_bw, state_bw = fastlstm.dynamic_rnn(bw, _reverse_each(x, lengths), lengths, precision="bfloat16")
    (got_fw, got_bw), (_, got_state_bw) = fastlstm.bidirectional_dynamic_rnn(
        fw, bw, x, lengths, precision="bfloat16"
    )
    np.testing.assert_array_equal(got_fw, out_fw)
    np.testing.assert_array_equal(got_bw, _reverse_each(out_bw, lengths))
    np.testing.assert_array_equal(got_state_bw.h, state_bw.h)
    out_top, state_top = fastlstm.dynamic_rnn(top, out_fw, lengths, precision="bfloat16")
    model_out, model_states = fastlstm.LSTMModel([fw, top])(x, lengths, precision="bfloat16")
    np.testing.assert_array_equal(model_out, out_top)
    np.testing.assert_array_equal(model_states[0].c, state_fw.c)
    stack_out, stack_state = fastlstm.dynamic_rnn(
        fastlstm.MultiRNNCell([fw, top]), x, lengths, precision="bfloat16"
    )
    np.testing.assert_array_equal(stack_out, out_top)
    np.testing.assert_array_equal(stack_state[1].h, state_top.h)
    assert np.abs(out_top - fastlstm.dynamic_rnn(top, out_fw, lengths)[0]).max() > 0


def test_bad_precision_arguments():
    cell = basic_cell(4, 3)
    x = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"precision must be 'float32' or 'bfloat16', got 'float16'"):
        fastlstm.dynamic_rnn(cell, x, precision="float16")
    with pytest.raises(ValueError, match="got None"):
        fastlstm.dynamic_rnn(cell, x, precision=None)
    with pytest.raises(ValueError, match="computes in float32, but this run's dtype is float64; pass dtype"):
        fastlstm.dynamic_rnn(cell, x, dtype=np.float64, precision="bfloat16")
    state64 = cell.zero_state(2, np.float64)
    with pytest.raises(ValueError, match="dtype is float64"):
        fastlstm.dynamic_rnn(cell, x, initial_state=state64, precision="bfloat16")
    with pytest.raises(ValueError, match="dtype is float64"):
        fastlstm.bidirectional_dynamic_rnn(cell, cell, x, initial_state_bw=state64, precision="bfloat16")
    model = fastlstm.LSTMModel([basic_cell(4, 3, np.float64)])
    with pytest.raises(ValueError, match="the model is float64"):
        model(x, precision="bfloat16")
    with pytest.raises(ValueError, match="got 'fp32'"):
        fastlstm.LSTMModel([cell])(x, precision="fp32")


_NO_AVX512_BF16 = """
import sys
import numpy as np
import fastlstm
from fastlstm import _kernels_bf16
assert not _kernels_bf16.HAS_AVX512_BF16
cell = fastlstm.BasicLSTMCell(40)
cell.build(24, seed=5)
x = np.random.default_rng(5).uniform(-1, 1, (9, 6, 24)).astype(np.float32)
outputs, state = fastlstm.dynamic_rnn(cell, x, [6, 5, 6, 1, 0, 6, 3, 6, 2], precision="bfloat16")
np.save(sys.argv[1], outputs)
"""

# An AVX-512 CPU without AVX512-BF16 (Skylake-AVX512 / Ice Lake features)
_NO_BF16_FEATURES = (
    "+64bit,+avx,+avx2,+fma,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+f16c,+cx16,+fxsr,+xsave,"
    "+cmov,+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512cd,-avx512bf16"
)


def test_the_emulation_gives_the_same_bits_on_a_cpu_without_avx512_bf16(tmp_path):
    compiled = outputs_compiled_for("skylake-avx512", _NO_BF16_FEATURES, _NO_AVX512_BF16, tmp_path)
    cell = fastlstm.BasicLSTMCell(40)
    cell.build(24, seed=5)
    x = np.random.default_rng(5).uniform(-1, 1, (9, 6, 24)).astype(np.float32)
    outputs, _ = fastlstm.dynamic_rnn(cell, x, [6, 5, 6, 1, 0, 6, 3, 6, 2], precision="bfloat16")
    np.testing.assert_array_equal(compiled, outputs)


def test_bfloat16_kernels_compile_only_when_used():
    script = (
        "import sys, numpy as np, fastlstm\n"
        "fastlstm.dynamic_rnn(fastlstm.BasicLSTMCell(8), np.ones((2, 3, 4), np.float32))\n"
        "assert 'fastlstm._kernels_bf16' not in sys.modules, 'imported by a float32 run'\n"
        "fastlstm.dynamic_rnn(fastlstm.BasicLSTMCell(8), np.ones((2, 3, 4), np.float32), precision='bfloat16')\n"
        "assert 'fastlstm._kernels_bf16' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_score_file_runs_a_float64_model_in_float32(tmp_path):
    """score_file(precision="bfloat16") computes in float32 whatever the model's dtype."""
    cell = basic_cell(6, 3, np.float64, seed=4)
    x = np.random.default_rng(2).uniform(-1, 1, (5, 4, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    fastlstm.scoring.score_file(
        cell, str(tmp_path / "x.npy"), str(tmp_path / "out.npy"), precision="bfloat16"
    )
    written = np.load(tmp_path / "out.npy")
    as_float32 = basic_cell(6, 3, seed=0)
    as_float32.set_weights(cell.get_weights())
    expected, _ = fastlstm.dynamic_rnn(as_float32, x, precision="bfloat16")
    assert written.dtype == np.float32
    np.testing.assert_array_equal(written, expected)
    with pytest.raises(ValueError, match="computes in float32, not float64"):
        fastlstm.scoring.score_file(
            cell, str(tmp_path / "x.npy"), str(tmp_path / "o.npy"), dtype="float64", precision="bfloat16"
        )
