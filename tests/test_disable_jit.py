"""NUMBA_DISABLE_JIT=1 (numba's debugging switch: everything runs as Python) still runs every
kernel path, with the JIT's results to float rounding (float32 uses numpy's exact tanh there)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

CASES = """
import numpy as np
import fastlstm


def cases():
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (5, 6, 3))
    lengths = [6, 0, 2, 6, 5]
    results = {}
    for dtype in ("float32", "float64"):
        basic = fastlstm.BasicLSTMCell(5, dtype=dtype)
        basic.build(3, seed=1)
        results[dtype + "/basic"] = fastlstm.dynamic_rnn(basic, x, lengths)[0]
        elu = fastlstm.BasicLSTMCell(5, activation="elu", dtype=dtype)
        elu.build(3, seed=2)
        results[dtype + "/elu"] = fastlstm.dynamic_rnn(elu, x.transpose(1, 0, 2), lengths, time_major=True)[0]
        full = fastlstm.LSTMCell(6, use_peepholes=True, cell_clip=0.5, num_proj=4, proj_clip=0.3, dtype=dtype)
        full.build(3, seed=3)
        results[dtype + "/lstm"] = fastlstm.dynamic_rnn(full, x, lengths)[0]
        stack = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(4, dtype=dtype), fastlstm.LSTMCell(3, dtype=dtype)])
        stack.build(3, seed=4)
        results[dtype + "/multi"] = fastlstm.dynamic_rnn(stack, x, lengths)[0]
        (fw, bw), _ = fastlstm.bidirectional_dynamic_rnn(basic, elu, x, lengths)
        results[dtype + "/bw"] = bw
        wide = fastlstm.BasicLSTMCell(128, dtype=dtype)  # one row: the unit-split path
        wide.build(3, seed=5)
        results[dtype + "/wide"] = fastlstm.dynamic_rnn(wide, x[:1], [4])[0]
    # bfloat16 products: the emulation, with a projection, and the unit-split path
    full = fastlstm.LSTMCell(6, use_peepholes=True, cell_clip=0.5, num_proj=4, proj_clip=0.3)
    full.build(3, seed=3)
    results["float32/bf16"] = fastlstm.dynamic_rnn(full, x, lengths, precision="bfloat16")[0]
    wide = fastlstm.BasicLSTMCell(128)
    wide.build(3, seed=5)
    results["float32/bf16_wide"] = fastlstm.dynamic_rnn(wide, x[:1], [4], precision="bfloat16")[0]
    return results
"""

SCRIPT = (
    CASES
    + """
import sys
np.savez(sys.argv[1], **cases())
"""
)


def test_disable_jit_runs_every_path(tmp_path):
    target = tmp_path / "nojit.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    namespace = {}
    exec(compile(CASES, "cases", "exec"), namespace)  # noqa: S102 -- the same cases, here with the JIT
    expected = namespace["cases"]()
    with np.load(target) as python_run:
        assert sorted(python_run.files) == sorted(expected)
        for key, value in expected.items():
            tolerance = 1e-5 if key.startswith("float32") else 1e-12
            np.testing.assert_allclose(python_run[key], value, atol=tolerance, rtol=0, err_msg=key)
