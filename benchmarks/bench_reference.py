"""The numpy reference (one BLAS GEMM per step) as a baseline, and fastlstm's speedup over it."""

import numpy as np

from . import LSTMCase, best_call_seconds


class NumpyReference(LSTMCase):
    params = (64, 256)
    param_names = ("num_units",)

    def shape(self, num_units):
        return 64, 50, 64, num_units, "uniform"

    def setup(self, num_units):
        from fastlstm.reference import dynamic_rnn_reference

        super().setup(num_units)
        kernel, bias = self.cell.get_weights()
        kernel = np.asarray(kernel, np.float32)
        bias = np.asarray(bias, np.float32)
        self.run_reference = lambda: dynamic_rnn_reference(
            kernel, bias, self.inputs, self.lengths, forget_bias=1.0
        )
        self.run_reference()

    def time_reference(self, num_units):
        self.run_reference()

    def time_fastlstm(self, num_units):
        self.run()

    def track_speedup_over_reference(self, num_units):
        return best_call_seconds(self.run_reference) / best_call_seconds(self.run)

    track_speedup_over_reference.unit = "x"
