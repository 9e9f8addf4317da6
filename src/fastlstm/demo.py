"""``fastlstm demo``: score a built-in synthetic batch and check it against numpy."""

from __future__ import annotations

import time

import numba
import numpy as np

from .bench.problems import lstm_flops
from .cell import BasicLSTMCell
from .reference import dynamic_rnn_reference
from .rnn import dynamic_rnn


def run_demo(
    batch: int = 1024,
    max_time: int = 100,
    input_size: int = 64,
    num_units: int = 128,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Score a synthetic variable-length batch; print and return throughput and error.

    Returns a dict with ``sequences_per_s``, ``gflops``, ``seconds`` (median of
    ``repeats`` timed calls), ``first_call_s`` (includes numba's compile or
    cache load) and ``max_abs_error`` against a float64 numpy evaluation.
    """
    rng = np.random.default_rng(seed)
    cell = BasicLSTMCell(num_units)
    cell.build(input_size, seed=seed)
    cell.set_weights([cell.kernel, rng.uniform(-0.1, 0.1, 4 * num_units)])
    inputs = rng.standard_normal((batch, max_time, input_size)).astype(np.float32)
    lengths = rng.integers(max(1, max_time // 10), max_time + 1, size=batch)
    print(
        f"fastlstm demo: BasicLSTMCell(num_units={num_units}), float32, batch={batch}, "
        f"max_time={max_time}, input_size={input_size}, lengths uniform in "
        f"[{lengths.min()}, {lengths.max()}], {numba.get_num_threads()} threads"
    )
    start = time.perf_counter()
    outputs, state = dynamic_rnn(cell, inputs, sequence_length=lengths)
    first_call = time.perf_counter() - start
    print(f"first call (numba compile or on-disk cache load): {first_call:.2f} s")
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        dynamic_rnn(cell, inputs, sequence_length=lengths)
        timings.append(time.perf_counter() - start)
    seconds = float(np.median(timings))
    gflops = lstm_flops(input_size, num_units, int(lengths.sum())) / seconds / 1e9
    print(
        f"scored {batch} sequences in {seconds * 1e3:.1f} ms: {batch / seconds:,.0f} sequences/s, {gflops:.1f} GFLOP/s"
    )

    check_rows = slice(0, min(batch, 64))
    ref_out, (ref_c, ref_h) = dynamic_rnn_reference(
        cell.kernel.astype(np.float64),
        cell.bias.astype(np.float64),
        inputs[check_rows].astype(np.float64),
        lengths[check_rows],
    )
    error = float(
        max(
            np.abs(outputs[check_rows] - ref_out).max(),
            np.abs(state.c[check_rows] - ref_c).max(),
            np.abs(state.h[check_rows] - ref_h).max(),
        )
    )
    verdict = "OK" if error < 1e-5 else "TOO LARGE"
    print(f"max |error| vs float64 numpy reference on {ref_out.shape[0]} rows: {error:.2e} ({verdict})")
    return {
        "sequences_per_s": batch / seconds,
        "gflops": gflops,
        "seconds": seconds,
        "first_call_s": first_call,
        "max_abs_error": error,
    }
