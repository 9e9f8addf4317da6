"""asv benchmark suites for fastlstm (see benchmarks/README.md).

The problems (data, lengths, FLOP count) come from ``fastlstm.bench.problems``,
the builder the side-by-side comparison uses; when the fastlstm being measured
predates it (``asv run`` over old commits), the same file is loaded from this
checkout.  The suites only use the public API (``BasicLSTMCell``,
``dynamic_rnn``) and ``fastlstm.reference``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np

try:
    from fastlstm.bench import problems
except ImportError:  # a fastlstm from before fastlstm.bench.problems
    _name = "_fastlstm_bench_problems"
    _spec = importlib.util.spec_from_file_location(
        _name, Path(__file__).resolve().parents[1] / "src" / "fastlstm" / "bench" / "problems.py"
    )
    problems = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = problems  # dataclasses look their module up while building the class
    _spec.loader.exec_module(problems)

make_problem = problems.make_problem


def make_cell(problem):
    """A ``BasicLSTMCell`` holding the problem's kernel and bias."""
    import fastlstm

    cell = fastlstm.BasicLSTMCell(problem.num_units, forget_bias=problem.forget_bias)
    cell.build(problem.input_size)
    cell.set_weights([problem.kernel, problem.bias])
    return cell


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

        self.problem = make_problem(*self.shape(*params))
        self.batch, self.inputs, self.lengths = self.problem.batch, self.problem.inputs, self.problem.lengths
        self.cell = make_cell(self.problem)
        self._dynamic_rnn = fastlstm.dynamic_rnn
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
        return self.problem.flops / self._seconds() / 1e9
