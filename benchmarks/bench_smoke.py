"""A cheap subset for CI: ``asv run --quick --python=same --bench smoke``."""

from . import LSTMCase


class Smoke(LSTMCase):
    def shape(self):
        return 32, 50, 32, 64, "uniform"

    def time_dynamic_rnn(self):
        self.run()

    def track_seq_per_s(self):
        return self._seq_per_s()

    track_seq_per_s.unit = "sequences/s"

    def track_gflops(self):
        return self._gflops()

    track_gflops.unit = "GFLOP/s"

    def peakmem_dynamic_rnn(self):
        self.run()
