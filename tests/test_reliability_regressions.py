"""Regression tests for the gaps the reliability work found (issue 6); each failed once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import zipfile

import numba
import numpy as np
import pytest

import fastlstm


def zero_stride(shape, dtype=np.float32):
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


# huge sizes: refused before allocating (run under a 4 GiB address-space limit)
@pytest.mark.parametrize(
    "call",
    [
        "fastlstm.dynamic_rnn(cell, view((2**31, 2**28, 3)))",
        "fastlstm.dynamic_rnn(cell, view((2**28, 2**31, 3)), time_major=True)",
        "fastlstm.dynamic_rnn(cell, view((2**40, 0, 3)))",
        "cell(view((2**40, 3)), cell.zero_state(1))",
        "cell.zero_state(2**40)",
        "fastlstm.BasicLSTMCell(4).build(2**40)",
        "fastlstm.BasicLSTMCell(4).set_weights([view((2**40, 16)), np.zeros(16)])",
    ],
)
def test_huge_requests_are_value_errors_not_allocations(call):
    script = textwrap.dedent(f"""
        import resource; resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
        import numpy as np, fastlstm
        def view(shape):
            return np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=shape, strides=(0,) * len(shape))
        cell = fastlstm.BasicLSTMCell(4); cell.build(3)
        try:
            {call}
        except ValueError as e:
            print("ValueError", e)
        except MemoryError as e:
            print("MemoryError", e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False).stdout
    assert out.startswith("ValueError") and "too large" in out, out


# infinite pre-activations: relu6/hard_sigmoid/relu/selu of +-inf
@pytest.mark.parametrize(
    "activation, expected", [("relu6", 1.5), ("hard_sigmoid", 0.3), ("relu", np.inf), ("selu", np.inf)]
)
def test_overflowing_preactivation_gives_tf_result(activation, expected):
    cell = fastlstm.BasicLSTMCell(1, activation=activation)
    kernel = np.array([[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32)  # only j sees x
    cell.set_weights([kernel, np.zeros(4, np.float32)])
    x = np.full((1, 1, 1), 3e38, np.float32)  # finite; 10 * x overflows float32 to +inf
    outputs, _ = fastlstm.dynamic_rnn(cell, x)
    # TF float32: j = +inf; act(j) = 6 / 1 / inf / inf; c = 0.5 * act(j); h = act(c) * 0.5
    assert outputs[0, 0, 0] == np.float32(expected), outputs.ravel()


# the split-units kernel is bitwise the row kernel
def test_one_row_alone_on_two_threads_equals_the_row_in_a_big_batch():
    cell = fastlstm.BasicLSTMCell(128, dtype="float64")
    cell.build(3, seed=0)
    x = np.random.default_rng(0).uniform(-2, 2, (130, 9, 3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        alone, _ = fastlstm.dynamic_rnn(cell, x[:1])
        in_batch, _ = fastlstm.dynamic_rnn(cell, x)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(alone[0], in_batch[0])


# load: only ValueError
def _saved(tmp_path):
    cell = fastlstm.BasicLSTMCell(2)
    cell.build(1, seed=0)
    path = tmp_path / "c.npz"
    fastlstm.save(path, cell)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


@pytest.mark.parametrize("member", ["kernel.npy", "fastlstm_config.npy", "fastlstm_format_version.npy"])
def test_load_member_that_is_not_an_npy_is_a_value_error(tmp_path, member):
    members = _saved(tmp_path)
    members[member] = b"not an npy file"
    _write(tmp_path / "bad.npz", members)
    with pytest.raises(ValueError, match="is not a"):
        fastlstm.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("klass", [[], {}, ["LSTMCell"]])
def test_load_config_class_that_is_not_a_string_is_a_value_error(tmp_path, klass):
    import json

    cell = fastlstm.BasicLSTMCell(2)
    cell.build(1, seed=0)
    fastlstm.save(tmp_path / "c.npz", cell)
    with np.load(tmp_path / "c.npz") as d:
        arrays = {k: d[k] for k in d.files}
    config = json.loads(str(arrays["fastlstm_config"]))
    config["class"] = klass
    arrays["fastlstm_config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="unknown class"):
        fastlstm.load(tmp_path / "bad.npz")


# input depth 0 (build(0) is accepted)
def test_depth_zero_inputs_run_like_the_reference():
    import naive

    cell = fastlstm.BasicLSTMCell(3)
    cell.build(0)
    cell.set_weights([cell.kernel, np.random.default_rng(0).uniform(-1, 1, 12)])
    outputs, state = fastlstm.dynamic_rnn(cell, np.zeros((2, 4, 0), np.float32), [4, 2])
    ref_out, (ref_c, _) = naive.dynamic_rnn(np.zeros((2, 4, 0)), cell.kernel, cell.bias, [4, 2])
    assert outputs.shape == (2, 4, 3)
    np.testing.assert_allclose(outputs, ref_out, atol=2e-6)
    np.testing.assert_allclose(state.c, ref_c, atol=2e-6)


# read-only install, no writable cache location anywhere
def test_import_works_when_no_cache_location_is_writable(tmp_path):
    import shutil

    site = tmp_path / "site"
    shutil.copytree(
        os.path.dirname(fastlstm.__file__), site / "fastlstm", ignore=shutil.ignore_patterns("__pycache__")
    )
    for d in (site / "fastlstm", site / "fastlstm" / "io"):
        (d / "__pycache__").write_text("stands in for a read-only directory")
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HOME": str(blocker / "home"),
        "XDG_CACHE_HOME": str(blocker / "cache"),
        "NUMBA_CACHE_DIR": str(blocker / "numba"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import fastlstm; print(fastlstm.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-400:]


# lazy build must be thread-safe
def test_concurrent_first_use_of_an_unbuilt_cell_uses_one_set_of_weights():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    bad = 0
    for _ in range(50):
        cell = fastlstm.BasicLSTMCell(8)
        outs = [None] * 4
        barrier = threading.Barrier(4)

        def work(k, barrier=barrier, outs=outs, cell=cell):
            barrier.wait()
            outs[k] = fastlstm.dynamic_rnn(cell, x)[0]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = fastlstm.dynamic_rnn(cell, x)[0]
        bad += not all(np.array_equal(o, final) for o in outs)
    assert bad == 0, f"{bad}/50 trials: a thread ran with weights the cell no longer has"
