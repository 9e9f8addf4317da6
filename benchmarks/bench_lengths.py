"""Length distributions, and whether cost follows sum(sequence_length)."""

import numpy as np

from . import LSTMCase, best_call_seconds, make_cell, make_problem


class LengthDistribution(LSTMCase):
    """Same shape (64 x 100, input 64, 128 units) under full / uniform / skewed lengths."""

    params = ("full", "uniform", "skewed")
    param_names = ("lengths",)

    def shape(self, lengths):
        return 64, 100, 64, 128, lengths

    def time_dynamic_rnn(self, lengths):
        self.run()

    def track_seq_per_s(self, lengths):
        return self._seq_per_s()

    track_seq_per_s.unit = "sequences/s"

    def track_gflops(self, lengths):
        # FLOPs count only valid steps, so equal GFLOP/s across modes means
        # padded steps cost nothing.
        return self._gflops()

    track_gflops.unit = "GFLOP/s"


class CostFollowsLengths:
    """Uniform lengths in [1, T] against all-length-T for the same batch and weights.

    ``track_time_ratio`` (time uniform / time full) should track ``track_sum_ratio``
    (sum of uniform lengths / sum of full lengths, about 0.5);
    ``track_cost_ratio_over_sum_ratio`` is their quotient: 1.0 means cost is
    exactly proportional to sum(sequence_length), above 1 means padding or
    ragged batches cost extra.
    """

    params = (64, 256)
    param_names = ("num_units",)
    timeout = 300

    def setup(self, num_units):
        import fastlstm

        problem = make_problem(64, 100, 64, num_units, "uniform", low=1)
        inputs, uniform = problem.inputs, problem.lengths
        full = np.full(problem.batch, problem.max_time, dtype=np.int32)
        cell = make_cell(problem)

        def call(lengths):
            return lambda: fastlstm.dynamic_rnn(cell, inputs, sequence_length=lengths, dtype=np.float32)

        self.run_uniform, self.run_full = call(uniform), call(full)
        self.run_uniform()
        self.run_full()
        self.sum_ratio = float(uniform.sum()) / float(full.sum())
        self._ratio = None

    def _time_ratio(self):
        if self._ratio is None:
            # interleave to share any drift in machine speed
            ts_u, ts_f = [], []
            for _ in range(3):
                ts_f.append(best_call_seconds(self.run_full, repeat=2))
                ts_u.append(best_call_seconds(self.run_uniform, repeat=2))
            self._ratio = float(min(ts_u) / min(ts_f))
        return self._ratio

    def time_uniform_1_to_T(self, num_units):
        self.run_uniform()

    def time_full_T(self, num_units):
        self.run_full()

    def track_time_ratio(self, num_units):
        return self._time_ratio()

    track_time_ratio.unit = "ratio"

    def track_sum_ratio(self, num_units):
        return self.sum_ratio

    track_sum_ratio.unit = "ratio"

    def track_cost_ratio_over_sum_ratio(self, num_units):
        return self._time_ratio() / self.sum_ratio

    track_cost_ratio_over_sum_ratio.unit = "ratio"
