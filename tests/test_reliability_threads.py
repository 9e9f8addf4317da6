"""Issue 6, threads: a row's result is bitwise the same whatever else is in the batch, where it
sits, how big the batch is and how many numba threads run (1 and 2 in-process, 4 -- more than
the cores of a small CI machine -- in a subprocess); concurrent calls from Python threads on
shared cells give the serial results; the kernels release the GIL.

The probe rows below sit alone, in tiny batches (1 to 5 rows) and in batches of 17, 64 and 130
rows, at different positions, batch- and time-major; float32 cells also run with bfloat16 products.
One cell is wide enough for the kernel that splits units across threads for batches smaller
than the thread count (``_runner.use_split_units``): alone, its probes run with the units split
2 ways (4 ways in the subprocess) and must give the row kernel's bits of the one-thread run.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np

import fastlstm
from cell_helpers import basic_cell, lstm_cell

HERE = Path(__file__).parent
MAX_TIME, DEPTH = 9, 3
PROBE_LENGTHS = np.array([9, 5, 1, 0])


def cells():
    """Cells of every kind; all but ``basic128_f32`` run on the row kernel at any thread count."""
    return {
        "basic128_f32": basic_cell(128, DEPTH, seed=28),  # 4 * 128 * (3 + 128) >= 2**16 multiply-adds
        "basic12_f32": basic_cell(12, DEPTH, seed=21),
        "basic15_f64": basic_cell(15, DEPTH, np.float64, seed=22),
        "lstm40_peep_clip_proj_f32": lstm_cell(
            40, DEPTH, use_peepholes=True, cell_clip=1.0, num_proj=40, seed=23
        ),
        "lstm24_proj_f64": lstm_cell(
            24, DEPTH, np.float64, use_peepholes=True, num_proj=10, proj_clip=0.7, seed=24
        ),
    }


def split_cells():
    """More cells for the concurrency test (too narrow to split their units: the row kernel)."""
    return {
        "basic40_f32": basic_cell(40, DEPTH, seed=25),
        "basic40_f64": basic_cell(40, DEPTH, np.float64, seed=26),
        "lstm33_peep_clip_f32": lstm_cell(33, DEPTH, use_peepholes=True, cell_clip=1.0, seed=27),
    }


def probes_and_fillers():
    rng = np.random.default_rng(100)
    probes = rng.uniform(-2, 2, (len(PROBE_LENGTHS), MAX_TIME, DEPTH))
    fillers = rng.uniform(-2, 2, (260, MAX_TIME, DEPTH))
    filler_lengths = rng.integers(0, MAX_TIME + 1, 260)
    return probes, fillers, filler_lengths


def contexts():
    """name -> (inputs, lengths, positions of the probes in the batch, time_major)."""
    probes, fillers, filler_lengths = probes_and_fillers()
    n = len(PROBE_LENGTHS)
    out = {}
    for i in range(n):
        positions = [None] * n
        positions[i] = 0
        out[f"alone{i}"] = (probes[i : i + 1], PROBE_LENGTHS[i : i + 1], positions, False)

    # Keep every probe in each remaining context, at a given position.
    def embed(batch, positions, filler_start, time_major=False):
        x = fillers[filler_start : filler_start + batch].copy()
        lengths = filler_lengths[filler_start : filler_start + batch].copy()
        for probe, pos in enumerate(positions):
            x[pos], lengths[pos] = probes[probe], PROBE_LENGTHS[probe]
        return (x, lengths, list(positions), time_major)

    out["tiny4"] = embed(4, [0, 1, 2, 3], 0)
    out["tiny4_reversed"] = embed(4, [3, 2, 1, 0], 0)
    out["pair_rows"] = embed(5, [4, 0, 2, 1], 10)
    out["mid17"] = embed(17, [16, 3, 9, 0], 20)
    out["big64"] = embed(64, [0, 21, 42, 63], 40)
    out["big130"] = embed(130, [129, 64, 1, 77], 110)
    out["big130_time_major"] = embed(130, [129, 64, 1, 77], 110, time_major=True)
    return out


def run_all():
    """Every probe row's outputs and final state in every context, for every cell and a pair.

    Returns ``{f"{cell}/{context}/{part}": array}`` with one row per probe (a probe absent
    from a context is left out).
    """
    results = {}
    all_cells = cells()
    for ctx, (x, lengths, positions, time_major) in contexts().items():
        inputs = x.transpose(1, 0, 2) if time_major else x
        runs = {}
        for name, cell in all_cells.items():
            inputs_c = np.ascontiguousarray(inputs, cell.dtype)
            outputs, state = fastlstm.dynamic_rnn(cell, inputs_c, lengths, time_major=time_major)
            runs[name] = (outputs, [state.c, state.h])
        (fw, bw), (sfw, sbw) = fastlstm.bidirectional_dynamic_rnn(
            all_cells["basic12_f32"],
            all_cells["lstm40_peep_clip_proj_f32"],
            inputs.astype(np.float32),
            lengths,
            time_major=time_major,
        )
        runs["bidi_fw"] = (fw, [sfw.c, sfw.h])
        runs["bidi_bw"] = (bw, [sbw.c, sbw.h])
        for name in ("basic12_f32", "lstm40_peep_clip_proj_f32", "basic128_f32"):  # bfloat16 products
            outputs, state = fastlstm.dynamic_rnn(
                all_cells[name],
                inputs.astype(np.float32),
                lengths,
                time_major=time_major,
                precision="bfloat16",
            )
            runs[f"{name}_bf16"] = (outputs, [state.c, state.h])
        for name, (outputs, states) in runs.items():
            outputs = outputs.transpose(1, 0, 2) if time_major else outputs
            for probe, pos in enumerate(positions):
                if pos is None:
                    continue
                results[f"{name}/{ctx}/out/{probe}"] = outputs[pos]
                results[f"{name}/{ctx}/c/{probe}"] = states[0][pos]
                results[f"{name}/{ctx}/h/{probe}"] = states[1][pos]
    return results


def assert_all_contexts_equal(results, reference):
    """Every entry equals the probe's value when it ran alone in ``reference`` (bitwise)."""
    checked = 0
    for key, value in results.items():
        name, _, part, probe = key.split("/")
        alone = reference[f"{name}/alone{probe}/{part}/{probe}"]
        assert value.dtype == alone.dtype, key
        np.testing.assert_array_equal(value, alone, err_msg=key)
        checked += 1
    assert checked == len(reference) and checked > 500


def test_rows_are_bitwise_independent_of_batch_position_and_thread_count_in_process():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        reference = run_all()
        assert_all_contexts_equal(reference, reference)
        for threads in range(2, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            assert_all_contexts_equal(run_all(), reference)
    finally:
        numba.set_num_threads(before)
    assert numba.get_num_threads() == before


def test_more_threads_than_cores_in_a_subprocess(tmp_path):
    """NUMBA_NUM_THREADS=4 (> the 2 cores CI has): tiny batches split units 4 ways, big ones
    use 4 workers; the subprocess loads the kernels from the on-disk cache."""
    target = tmp_path / "threads4.npz"
    script = (
        "import sys, json, numba, numpy as np\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import test_reliability_threads as t\n"
        "results = t.run_all()\n"
        f"np.savez({str(target)!r}, **results)\n"
        "print(json.dumps({'threads': numba.get_num_threads(), 'layer': numba.threading_layer()}))\n"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "4"}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["threads"] == 4
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        reference = run_all()
    finally:
        numba.set_num_threads(before)
    with np.load(target, allow_pickle=False) as data:
        theirs = {key: data[key] for key in data.files}
    assert sorted(theirs) == sorted(reference)
    assert_all_contexts_equal(theirs, reference)


# -- concurrent calls from Python threads ----------------------------------------------------
def jobs():
    """(name, callable) pairs sharing built cells; each callable returns a list of arrays."""
    shared = {**cells(), **split_cells()}
    model = fastlstm.LSTMModel(
        [
            (basic_cell(16, DEPTH, seed=31), lstm_cell(17, DEPTH, use_peepholes=True, seed=32)),
            basic_cell(8, 33, seed=33),
        ]
    )
    multi = fastlstm.MultiRNNCell([basic_cell(20, DEPTH, seed=34), lstm_cell(6, 20, num_proj=3, seed=35)])
    rng = np.random.default_rng(7)
    big = rng.uniform(-2, 2, (150, MAX_TIME, DEPTH)).astype(np.float32)
    big_lengths = rng.integers(0, MAX_TIME + 1, 150)
    tiny = big[:3]

    def flat(*nested):
        arrays, stack = [], list(reversed(nested))
        while stack:
            part = stack.pop()
            if isinstance(part, np.ndarray):
                arrays.append(part)
            else:
                stack.extend(reversed(part))
        return arrays

    out = []
    for name, cell in shared.items():
        out.append((f"{name}/big", lambda cell=cell: flat(*fastlstm.dynamic_rnn(cell, big, big_lengths))))
        out.append(
            (f"{name}/tiny", lambda cell=cell: flat(*fastlstm.dynamic_rnn(cell, tiny, big_lengths[:3])))
        )
    one = big[:1]  # the units split across the threads (see cells())
    out.append(("basic128_f32/one", lambda: flat(*fastlstm.dynamic_rnn(shared["basic128_f32"], one))))
    out.append(
        (
            "basic128_f32/one_bf16",
            lambda: flat(*fastlstm.dynamic_rnn(shared["basic128_f32"], one, precision="bfloat16")),
        )
    )
    out.append(
        (
            "bidi",
            lambda: flat(
                *fastlstm.bidirectional_dynamic_rnn(
                    shared["basic40_f32"], shared["lstm33_peep_clip_f32"], big, big_lengths
                )
            ),
        )
    )
    out.append(("model", lambda: flat(*model(big, big_lengths))))
    out.append(
        (
            "multi_tiny_time_major",
            lambda: flat(
                *fastlstm.dynamic_rnn(multi, tiny.transpose(1, 0, 2), big_lengths[:3], time_major=True)
            ),
        )
    )
    out.append(
        ("step", lambda: flat(*shared["basic40_f64"](big[:3, 0], shared["basic40_f64"].zero_state(3))))
    )
    return out


def test_concurrent_calls_on_shared_cells_match_serial_results_bitwise():
    work = jobs()
    default = numba.get_num_threads()
    serial = {}
    try:
        for threads in {1, default}:
            numba.set_num_threads(threads)
            serial[threads] = {name: call() for name, call in work}
    finally:
        numba.set_num_threads(default)
    # The workqueue threading layer aborts the whole process on concurrent parallel calls;
    # fail here with a message instead of killing the test run.
    assert numba.threading_layer() in ("omp", "tbb"), numba.threading_layer()
    n_threads, rounds = 4, 3
    barrier = threading.Barrier(n_threads)
    results: list[list[tuple[str, list[np.ndarray]]]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def worker(k):
        before = numba.get_num_threads()
        try:
            if k % 2:  # half the Python threads run single-threaded kernels
                numba.set_num_threads(1)
            order = np.random.default_rng(k).permutation(len(work))
            barrier.wait()
            for _ in range(rounds):
                for i in order:
                    name, call = work[i]
                    results[k].append((name, call()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            numba.set_num_threads(before)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert all(len(r) == rounds * len(work) for r in results)
    for k, per_thread in enumerate(results):
        reference = serial[1 if k % 2 else default]
        for name, arrays in per_thread:
            assert len(arrays) == len(reference[name])
            for got, want in zip(arrays, reference[name]):
                np.testing.assert_array_equal(got, want, err_msg=name)


def test_the_kernel_releases_the_gil():
    """While one Python thread is inside a long kernel call, another keeps running Python code.

    Robust to a busy machine: it only needs the main thread to get the CPU now and then
    (the largest gap between its loop iterations well under the kernel's duration); with the
    GIL held it would not run at all until the call returns.
    """
    cell = basic_cell(64, 32, seed=41)
    x = np.random.default_rng(41).uniform(-1, 1, (3072, 40, 32)).astype(np.float32)
    fastlstm.dynamic_rnn(cell, x[:32])  # compile / load outside the measurement
    best = 1.0
    for _ in range(3):
        best = min(best, _longest_stall(cell, x))
        if best < 0.5:
            break
    assert best < 0.5, f"the main thread stalled for {best:.0%} of a kernel call: is the GIL held?"


def _longest_stall(cell, x):
    """Longest pause of this thread's Python loop while another thread runs one kernel call,
    as a fraction of that call's duration."""
    span = {}

    def worker():
        numba.set_num_threads(1)
        span["start"] = time.perf_counter()
        fastlstm.dynamic_rnn(cell, x)
        span["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    ticks = []
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    inside = [t for t in ticks if span["start"] <= t <= span["end"]]
    edges = [span["start"], *inside, span["end"]]
    return max(b - a for a, b in itertools.pairwise(edges)) / (span["end"] - span["start"])
