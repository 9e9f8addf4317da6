"""bfloat16 products (``precision="bfloat16"``): GFLOP/s over num_units x input_size.

Batch 64, 50 steps, every row full length. Self-contained on purpose: it uses
only fastlstm's public API, so ``asv run`` over older commits keeps working
(commits before the bfloat16 mode have no ``precision`` argument: ``setup``
raises ``NotImplementedError`` and asv skips the suite there).
"""

from __future__ import annotations

import inspect
import math
import time

import numpy as np

BATCH, MAX_TIME = 64, 50


def _best_call_seconds(fn, min_time=0.05, repeat=5):
    """Best over ``repeat`` samples of the mean time of one call (each sample >= ``min_time``)."""
    t0 = time.perf_counter()
    fn()
    number = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return min(samples)


class BFloat16Size:
    params = ((64, 128, 256, 512), (32, 64, 256))
    param_names = ("num_units", "input_size")
    timeout = 300

    def setup(self, num_units, input_size):
        import fastlstm

        if "precision" not in inspect.signature(fastlstm.dynamic_rnn).parameters:
            raise NotImplementedError("this fastlstm has no bfloat16 mode")
        self._dynamic_rnn = fastlstm.dynamic_rnn
        self.cell = fastlstm.BasicLSTMCell(num_units)
        self.cell.build(input_size, seed=0)
        rng = np.random.default_rng(0)
        self.inputs = rng.standard_normal((BATCH, MAX_TIME, input_size)).astype(np.float32)
        self.flops = 2.0 * (input_size + num_units) * 4 * num_units * BATCH * MAX_TIME
        self.run("bfloat16")  # compile, or load from numba's cache, outside the timing
        self.run("float32")
        self._seconds = {}

    def run(self, precision):
        return self._dynamic_rnn(self.cell, self.inputs, precision=precision)

    def _time(self, precision):
        if precision not in self._seconds:
            self._seconds[precision] = _best_call_seconds(lambda: self.run(precision))
        return self._seconds[precision]

    def time_dynamic_rnn(self, num_units, input_size):
        self.run("bfloat16")

    def track_gflops(self, num_units, input_size):
        return self.flops / self._time("bfloat16") / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_speedup_over_float32(self, num_units, input_size):
        return self._time("float32") / self._time("bfloat16")

    track_speedup_over_float32.unit = "x"
