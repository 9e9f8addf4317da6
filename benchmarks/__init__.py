"""asv benchmark suites for fastlstm (see benchmarks/README.md).

Shared helpers live here rather than in the package so that the suites can be
run against older commits of fastlstm too; they only use the public API
(``BasicLSTMCell``, ``dynamic_rnn``) and ``fastlstm.reference``.
"""

from __future__ import annotations

import math
import time

import numpy as np

SEED = 1234
FORGET_BIAS = 1.0


def make_lengths(batch, max_time, mode="uniform", seed=SEED, low=None):
    """int32 lengths; row 0 is ``max_time``.

    ``uniform``: in ``[low, max_time]`` with ``low = max(1, max_time // 10)`` unless given;
    ``full``: all ``max_time``; ``skewed``: mostly short (``low + (T - low) * u**3``).
    """
    rng = np.random.default_rng(seed + 1)
    lo = max(1, max_time // 10) if low is None else low
    if mode == "full":
        lengths = np.full(batch, max_time, dtype=np.int64)
    elif mode == "uniform":
        lengths = rng.integers(lo, max_time + 1, size=batch)
    elif mode == "skewed":
        lengths = np.rint(lo + (max_time - lo) * rng.random(batch) ** 3).astype(np.int64)
    else:
        raise ValueError(mode)
    lengths = np.clip(lengths, 1, max_time)
    lengths[0] = max_time
    return lengths.astype(np.int32)


def make_data(batch, max_time, input_size, num_units, mode="uniform", seed=SEED, low=None):
    """(inputs [B,T,D], kernel [D+H,4H], bias [4H], lengths [B]) in float32."""
    rng = np.random.default_rng(seed)
    rows, cols = input_size + num_units, 4 * num_units
    limit = math.sqrt(6.0 / (rows + cols))
    kernel = rng.uniform(-limit, limit, size=(rows, cols)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, size=cols).astype(np.float32)
    inputs = rng.standard_normal((batch, max_time, input_size)).astype(np.float32)
    return inputs, kernel, bias, make_lengths(batch, max_time, mode, seed, low)


def make_cell(kernel, bias, input_size, num_units):
    import fastlstm

    cell = fastlstm.BasicLSTMCell(num_units, forget_bias=FORGET_BIAS)
    cell.build(input_size)
    cell.set_weights([kernel, bias])
    return cell


def flops(input_size, num_units, sum_lengths):
    """2 * (D + H) * 4H per valid step."""
    return 2.0 * (input_size + num_units) * 4 * num_units * float(sum_lengths)


def best_call_seconds(fn, min_time=0.03, repeat=5):
    """Best over ``repeat`` samples of the mean time of one call (each sample >= min_time).

    The best sample, not the median: on a small shared machine other processes
    only ever add time, so the minimum is the steadiest estimate of the cost.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-9)
    number = max(1, math.ceil(min_time / one))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(min(samples))


class LSTMCase:
    """Base for suites: builds a problem and a warmed-up (compiled) fastlstm call.

    Subclasses set ``params``/``param_names`` and implement ``shape(*params)``
    returning ``(batch, max_time, input_size, num_units, lengths_mode)``.
    """

    timeout = 300
    warmup_time = 0.05

    def shape(self, *params):  # pragma: no cover - overridden
        raise NotImplementedError

    def setup(self, *params):
        import fastlstm

        b, t, d, h, mode = self.shape(*params)
        self.batch, self.input_size, self.num_units = b, d, h
        self.inputs, kernel, bias, self.lengths = make_data(b, t, d, h, mode)
        self.cell = make_cell(kernel, bias, d, h)
        self._dynamic_rnn = fastlstm.dynamic_rnn
        self.sum_lengths = int(self.lengths.sum())
        self.run()  # compile / load from numba's cache outside the timing

    def run(self):
        return self._dynamic_rnn(self.cell, self.inputs, sequence_length=self.lengths, dtype=np.float32)

    def _seconds(self):
        if not hasattr(self, "_sec"):
            self._sec = best_call_seconds(self.run)
        return self._sec

    def _seq_per_s(self):
        return self.batch / self._seconds()

    def _gflops(self):
        return flops(self.input_size, self.num_units, self.sum_lengths) / self._seconds() / 1e9
