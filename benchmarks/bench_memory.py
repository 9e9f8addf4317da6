"""Peak memory (process RSS) of one dynamic_rnn call (100 steps, input 64, 128 units)."""

from . import LSTMCase


class PeakMemory(LSTMCase):
    params = (64, 1024)
    param_names = ("batch",)

    def shape(self, batch):
        return batch, 100, 64, 128, "uniform"

    def peakmem_dynamic_rnn(self, batch):
        self.run()
