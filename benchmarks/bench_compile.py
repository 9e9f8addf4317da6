"""Compile time: a fresh process with an empty NUMBA_CACHE_DIR, then one that reuses it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

_PROBE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import fastlstm
t1 = time.perf_counter()
rng = np.random.default_rng(0)
cell = fastlstm.BasicLSTMCell(16)
cell.build(8)
x = rng.standard_normal((4, 5, 8)).astype(np.float32)
t2 = time.perf_counter()
fastlstm.dynamic_rnn(cell, x, sequence_length=np.array([5, 3, 1, 4], np.int32), dtype=np.float32)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_call": t3 - t2}))
"""


def _probe(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


class CompileTime:
    """Seconds for the first dynamic_rnn call in a new process (import excluded)."""

    timeout = 900
    number = 1
    repeat = 1

    def setup(self):
        self.cache_dir = tempfile.mkdtemp(prefix="fastlstm-asv-numba-")

    def teardown(self):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_first_call_seconds(self):
        return _probe(self.cache_dir)["first_call"]

    track_first_call_seconds.unit = "seconds"

    def track_cached_first_call_seconds(self):
        _probe(self.cache_dir)  # fill the cache
        return _probe(self.cache_dir)["first_call"]

    track_cached_first_call_seconds.unit = "seconds"

    def track_import_seconds(self):
        return _probe(self.cache_dir)["import"]

    track_import_seconds.unit = "seconds"
