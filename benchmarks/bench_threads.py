"""Thread scaling: numba.set_num_threads(1 or 2) on a scoring-sized problem."""

from . import LSTMCase


class Threads(LSTMCase):
    params = (1, 2)
    param_names = ("threads",)

    def shape(self, threads):
        return 128, 50, 64, 128, "uniform"

    def setup(self, threads):
        import numba

        if threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError(f"only {numba.config.NUMBA_NUM_THREADS} threads here")
        self._saved_threads = numba.get_num_threads()
        numba.set_num_threads(threads)
        super().setup(threads)

    def teardown(self, threads):
        import numba

        numba.set_num_threads(self._saved_threads)

    def time_dynamic_rnn(self, threads):
        self.run()

    def track_seq_per_s(self, threads):
        return self._seq_per_s()

    track_seq_per_s.unit = "sequences/s"

    def track_gflops(self, threads):
        return self._gflops()

    track_gflops.unit = "GFLOP/s"
