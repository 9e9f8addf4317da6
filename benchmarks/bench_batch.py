"""Cost over the batch size (30 steps, input 32, 64 units, uniform lengths)."""

from . import LSTMCase


class Batch(LSTMCase):
    params = (1, 8, 64, 512, 2048)
    param_names = ("batch",)

    def shape(self, batch):
        return batch, 30, 32, 64, "uniform"

    def time_dynamic_rnn(self, batch):
        self.run()

    def track_seq_per_s(self, batch):
        return self._seq_per_s()

    track_seq_per_s.unit = "sequences/s"

    def track_gflops(self, batch):
        return self._gflops()

    track_gflops.unit = "GFLOP/s"
