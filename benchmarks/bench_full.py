"""Full lengths (every row ``max_time`` steps: fixed windows, as in time-series scoring).

GFLOP/s over num_units x input_size at batch 64 and 50 steps, the series the
dashboard shows for the padding-free case (``bench_sizes`` covers uniform lengths).
"""

from . import LSTMCase


class FullLengths(LSTMCase):
    params = ((32, 64, 128, 256, 512), (16, 64, 256))
    param_names = ("num_units", "input_size")

    def shape(self, num_units, input_size):
        return 64, 50, input_size, num_units, "full"

    def time_dynamic_rnn(self, num_units, input_size):
        self.run()

    def track_gflops(self, num_units, input_size):
        return self._gflops()

    track_gflops.unit = "GFLOP/s"
