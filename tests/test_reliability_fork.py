"""multiprocessing's default start method on Linux forks: a pool created after fastlstm ran
(numba's GNU OpenMP threads started) used to have every worker terminated by numba ("fork()
called from a process already using GNU OpenMP"). Forked workers now run serially, same bits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastlstm
from fastlstm._runner import run_layer

SCRIPT = """
import multiprocessing as mp
import os
import numba
import numpy as np
import fastlstm

cell = fastlstm.BasicLSTMCell(8)
cell.build(3, seed=1)
wide = fastlstm.BasicLSTMCell(128)   # one row, 128 units: the unit-split kernel in the parent
wide.build(8, seed=2)
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (6, 5, 3)).astype(np.float32)
lengths = np.array([5, 0, 3, 5, 1, 4])
one = rng.uniform(-1, 1, (1, 7, 8)).astype(np.float32)


def run(_=None):
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths)
    (fw, bw), _ = fastlstm.bidirectional_dynamic_rnn(cell, cell, x, lengths)
    single, _ = fastlstm.dynamic_rnn(wide, one)
    return outputs, state.c, state.h, fw, bw, single


expected = run()  # starts numba's threads in the parent
print("layer", numba.threading_layer())
with mp.get_context("fork").Pool(2) as pool:
    results = pool.map_async(run, range(4)).get(timeout=300)
for result in results:
    for got, want in zip(result, expected):
        assert np.array_equal(got, want)
pid = os.fork()  # a bare fork too
if pid == 0:
    ok = all(np.array_equal(g, w) for g, w in zip(run(), expected))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0 and not os.WIFSIGNALED(status), status
for got, want in zip(run(), expected):  # and the parent still runs its threads
    assert np.array_equal(got, want)
print("ok")
"""


def test_forked_workers_run_and_give_the_same_bits(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok"), done.stdout
    assert "Terminating" not in done.stderr, done.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"use_peepholes": True, "cell_clip": 0.4}, {"num_proj": 3}])
@pytest.mark.parametrize("time_major", [False, True])
def test_serial_kernel_is_bitwise_the_parallel_one(rng, dtype, options, time_major):
    cell = fastlstm.LSTMCell(6, dtype=dtype, **options)
    cell.build(4, seed=7)
    weights = cell._weights(np.dtype(dtype))
    shape = (9, 7, 4) if time_major else (7, 9, 4)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    lengths = np.array([9, 0, 4, 9, 1, 8, 3], dtype=np.int64)
    state = np.zeros((7, 6), dtype), np.zeros((7, weights.out_depth), dtype)
    for reverse in (False, True):
        parallel = run_layer(weights, x, lengths, *state, time_major, reverse=reverse)
        serial = run_layer(weights, x, lengths, *state, time_major, reverse=reverse, serial=True)
        for got, want in zip(serial, parallel):
            np.testing.assert_array_equal(got, want)
