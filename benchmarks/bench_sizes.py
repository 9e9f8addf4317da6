"""Cost over the cell's size: num_units x input_size (batch 16, 20 steps, uniform lengths)."""

from . import LSTMCase


class CellSize(LSTMCase):
    params = ((32, 64, 128, 256, 512), (16, 64, 256))
    param_names = ("num_units", "input_size")

    def shape(self, num_units, input_size):
        return 16, 20, input_size, num_units, "uniform"

    def time_dynamic_rnn(self, num_units, input_size):
        self.run()

    def track_seq_per_s(self, num_units, input_size):
        return self._seq_per_s()

    track_seq_per_s.unit = "sequences/s"

    def track_gflops(self, num_units, input_size):
        return self._gflops()

    track_gflops.unit = "GFLOP/s"
