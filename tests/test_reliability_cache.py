"""Issue 6, numba's on-disk cache: an unwritable cache directory still works, and kernels
written to the cache by a 1-thread process give the same bits when a 2-thread process loads them.
Issue 11: a changed compile option reaches the machine code of the next process (nothing stale).

Each test runs fresh interpreters. Only ``test_cache_written_with_one_thread_is_loaded_with_two``
compiles from scratch (once, float32, four kernels: a few seconds); the others fall back on the
package's own ``__pycache__``, which the rest of the suite has filled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import fastlstm

# A tiny run: 3 units (< 16, so never the split-units kernel), 3 rows, lengths 4, 2 and 0.
SCRIPT = """
import json, sys, warnings
warnings.simplefilter("always")
import numba, numpy as np, fastlstm
from fastlstm import _kernels
arrays = {}
for dtype in sys.argv[2].split(","):
    cell = fastlstm.BasicLSTMCell(3, dtype=dtype)
    gen = np.random.default_rng(0)
    cell.set_weights([gen.uniform(-0.6, 0.6, (5, 12)), gen.uniform(-0.5, 0.5, 12)])
    x = gen.uniform(-1, 1, (3, 4, 2))
    outputs, state = fastlstm.dynamic_rnn(cell, x, [4, 2, 0])
    arrays.update({f"{dtype}/outputs": outputs, f"{dtype}/c": state.c, f"{dtype}/h": state.h})
np.savez(sys.argv[1], **arrays)
kernels = [_kernels.matmul_accumulate, _kernels.lstm_gates_tanh, _kernels.run_block, _kernels.lstm_layer]
print(json.dumps({
    "threads": numba.get_num_threads(),
    "hits": [sum(k.stats.cache_hits.values()) for k in kernels],
    "misses": [sum(k.stats.cache_misses.values()) for k in kernels],
}))
"""
KERNELS = ["matmul_accumulate", "lstm_gates_tanh", "run_block", "lstm_layer"]


def in_process(dtypes):
    """What SCRIPT computes, computed here."""
    arrays = {}
    for dtype in dtypes.split(","):
        cell = fastlstm.BasicLSTMCell(3, dtype=dtype)
        gen = np.random.default_rng(0)
        cell.set_weights([gen.uniform(-0.6, 0.6, (5, 12)), gen.uniform(-0.5, 0.5, 12)])
        x = gen.uniform(-1, 1, (3, 4, 2))
        outputs, state = fastlstm.dynamic_rnn(cell, x, [4, 2, 0])
        arrays.update({f"{dtype}/outputs": outputs, f"{dtype}/c": state.c, f"{dtype}/h": state.h})
    return arrays


def run_script(tmp_path, name, env_changes, dtypes="float32", drop=()):
    target = tmp_path / f"{name}.npz"
    env = {key: value for key, value in {**os.environ, **env_changes}.items() if key not in drop}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target), dtypes],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    with np.load(target, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return arrays, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def assert_same(arrays, expected):
    assert sorted(arrays) == sorted(expected)
    for key in expected:
        assert arrays[key].dtype == expected[key].dtype
        np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)


def test_unwritable_cache_directories_still_work(tmp_path):
    """NUMBA_CACHE_DIR below a regular file, or in /proc: no crash, the same bits."""
    blocker = tmp_path / "a_regular_file"
    blocker.write_text("not a directory")
    expected = in_process("float32,float64")
    for k, cache_dir in enumerate([blocker / "numba_cache", Path("/proc/self/numba_cache")]):
        arrays, _, stderr = run_script(
            tmp_path, f"run{k}", {"NUMBA_CACHE_DIR": str(cache_dir)}, "float32,float64"
        )
        assert_same(arrays, expected)
        assert "Error" not in stderr, stderr
    assert not (blocker / "numba_cache").exists() and blocker.read_text() == "not a directory"


def test_cache_written_with_one_thread_is_loaded_with_two(tmp_path):
    cache = tmp_path / "numba_cache"
    first, info1, _ = run_script(tmp_path, "one", {"NUMBA_CACHE_DIR": str(cache), "NUMBA_NUM_THREADS": "1"})
    assert info1["threads"] == 1 and min(info1["misses"]) >= 1  # compiled, then written to the cache
    for name in KERNELS:
        assert list(cache.rglob(f"_kernels.{name}-*.nbi")) and list(cache.rglob(f"_kernels.{name}-*.nbc")), (
            name
        )
    second, info2, _ = run_script(tmp_path, "two", {"NUMBA_CACHE_DIR": str(cache), "NUMBA_NUM_THREADS": "2"})
    assert info2["threads"] == 2 and min(info2["hits"]) >= 1 and max(info2["misses"]) == 0  # all loaded
    expected = in_process("float32")
    assert_same(first, expected)
    assert_same(second, expected)


def test_read_only_install_caches_in_the_user_cache_directory(tmp_path):
    """Package directory not writable, no NUMBA_CACHE_DIR: numba's user-wide cache
    directory (XDG_CACHE_HOME/numba) takes the kernels, and the next process loads them."""
    site = tmp_path / "site"
    shutil.copytree(
        Path(fastlstm.__file__).parent, site / "fastlstm", ignore=shutil.ignore_patterns("__pycache__")
    )
    for package in (site / "fastlstm", site / "fastlstm" / "io"):
        (package / "__pycache__").write_text("stands in for a read-only directory")
    env = {"PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "user_cache")}
    first, info1, _ = run_script(tmp_path, "first", env, drop=("NUMBA_CACHE_DIR",))
    assert min(info1["misses"]) >= 1
    for name in KERNELS:
        assert list((tmp_path / "user_cache" / "numba").rglob(f"_kernels.{name}-*.nbc")), name
    second, info2, _ = run_script(tmp_path, "second", env, drop=("NUMBA_CACHE_DIR",))
    assert min(info2["hits"]) >= 1 and max(info2["misses"]) == 0
    expected = in_process("float32")
    assert_same(first, expected)
    assert_same(second, expected)


# The float32 tanh's numerator and denominator (one small cached kernel) over a grid, as bits.
RATIO_SCRIPT = """
import json
import numpy as np
from fastlstm import _kernels
grid = np.linspace(-3, 3, 601, dtype=np.float32)
bits = [int(np.float32(part).view(np.int32)) for v in grid for part in _kernels._tanh_ratio_f32(v)]
stats = _kernels._tanh_ratio_f32.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()), "bits": bits}))
"""


def test_a_changed_compile_option_takes_effect_in_a_fresh_process(tmp_path):
    """Issue 11: the options are part of what numba's cache stamps, so editing one recompiles.

    A copy of the package with its own cache: a first process compiles and caches the kernel,
    a second loads it, then ``contract`` is dropped from the kernels' options in the copy's
    source and a third process must compile again and compute other bits (no FMA in the
    Horner steps), not load the stale machine code.
    """
    from numba.core.codegen import get_host_cpu_features

    site = tmp_path / "site"
    shutil.copytree(
        Path(fastlstm.__file__).parent, site / "fastlstm", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run():
        done = subprocess.run(
            [sys.executable, "-c", RATIO_SCRIPT],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["misses"] == 1 and first["hits"] == 0
    assert second["misses"] == 0 and second["hits"] == 1 and second["bits"] == first["bits"]

    source = site / "fastlstm" / "_kernels.py"
    text = source.read_text()
    option = '"fastmath": {"contract", "nsz"},'
    assert text.count(option) == 1, "the kernel options are no longer defined in _kernels.py"
    source.write_text(text.replace(option, '"fastmath": {"nsz"},'))
    edited = run()
    assert edited["misses"] == 1 and edited["hits"] == 0
    if "+fma" in get_host_cpu_features().split(","):  # without FMA, contract changes no bits
        assert edited["bits"] != first["bits"]
