"""fastlstm.dask: lazy dynamic_rnn/run_model, and ``fastlstm score --scheduler`` on a real LocalCluster."""

from __future__ import annotations

import contextlib
import os
import signal

import numpy as np
import pytest

dask = pytest.importorskip("dask")
pytest.importorskip("distributed")

import dask.array as da
from distributed import Client, LocalCluster

import fastlstm
import fastlstm.dask
from fastlstm.cli import main
from fastlstm.scoring import score_file


class CountingCell(fastlstm.BasicLSTMCell):
    """Counts, per process, how often a cell of this class is deserialised."""

    loads = 0

    def __setstate__(self, state):
        type(self).loads += 1
        self.__dict__.update(state)


def _loads() -> int:
    return CountingCell.loads


def _reset_loads() -> None:
    CountingCell.loads = 0


def _counting_cell(units=8, depth=3, seed=0):
    cell = CountingCell(units)
    cell.build(depth, seed=seed)
    return cell


def _leaves(tree):
    found = []
    fastlstm.dask._flatten(tree, found)
    return found


def _same(a, b):
    left, right = _leaves(a), _leaves(b)
    return len(left) == len(right) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(left, right)
    )


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (23, 7, 3)).astype(np.float32)
    lengths = rng.integers(0, 8, 23)
    lengths[:2] = [0, 7]
    return x, lengths


# -- lazy API, local schedulers ---------------------------------------------------------------------
def _cells():
    stack = fastlstm.MultiRNNCell(
        [
            fastlstm.LSTMCell(5, use_peepholes=True, num_proj=4),
            fastlstm.BasicLSTMCell(4, state_is_tuple=False),
        ]
    )
    cells = [fastlstm.BasicLSTMCell(6), fastlstm.LSTMCell(5, num_proj=3, cell_clip=1.0), stack]
    for seed, cell in enumerate(cells):
        cell.build(3, seed=seed)
    return cells


@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize("chunks", [5, 23, (1, 10, 12)])
def test_dynamic_rnn_equals_in_memory(batch, index, chunks):
    x, lengths = batch
    cell = _cells()[index]
    outputs, state = fastlstm.dask.dynamic_rnn(cell, da.from_array(x, chunks=(chunks, 2, 3)), lengths)
    assert outputs.chunks[0] == da.from_array(x, chunks=(chunks, 7, 3)).chunks[0]
    assert outputs.chunks[1:] == ((7,), (cell.output_size,))
    got = dask.compute(outputs, state, scheduler="threads")
    assert _same(got, fastlstm.dynamic_rnn(cell, x, sequence_length=lengths))


def test_time_major_initial_state_and_dtype(batch):
    x, lengths = batch
    cell = _cells()[1]
    rng = np.random.default_rng(0)
    init = fastlstm.LSTMStateTuple(rng.random((23, 5)), rng.random((23, 3)))  # float64: the run dtype
    x_tm = x.transpose(1, 0, 2)
    outputs, state = fastlstm.dask.dynamic_rnn(
        cell,
        da.from_array(x_tm, chunks=(7, 6, 3)),
        da.from_array(lengths, chunks=4),
        initial_state=fastlstm.LSTMStateTuple(da.from_array(init.c, chunks=9), init.h),
        time_major=True,
    )
    assert outputs.dtype == np.float64 and outputs.chunks[1] == (6, 6, 6, 5)
    expected = fastlstm.dynamic_rnn(cell, x_tm, sequence_length=lengths, initial_state=init, time_major=True)
    assert _same(dask.compute(outputs, state, scheduler="sync"), expected)
    outputs32, _ = fastlstm.dask.dynamic_rnn(cell, x, lengths, dtype="float64")
    assert outputs32.dtype == np.float64
    assert np.array_equal(outputs32.compute(), fastlstm.dynamic_rnn(cell, x, lengths, dtype="float64")[0])


def test_run_model_equals_in_memory(batch):
    x, lengths = batch
    model = fastlstm.LSTMModel(
        [(fastlstm.BasicLSTMCell(4), fastlstm.LSTMCell(3, num_proj=2)), fastlstm.BasicLSTMCell(5)]
    )
    model.build(3, seed=1)
    outputs, states = fastlstm.dask.run_model(model, da.from_array(x, chunks=6), lengths)
    assert _same(dask.compute(outputs, states)[0:2], model(x, sequence_length=lengths))


def test_unbuilt_cell_is_built_once_before_any_task(batch):
    x, _ = batch
    cell = fastlstm.BasicLSTMCell(4)
    outputs, _ = fastlstm.dask.dynamic_rnn(cell, da.from_array(x, chunks=5))
    assert cell.built
    assert np.array_equal(outputs.compute(), fastlstm.dynamic_rnn(cell, x)[0])


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x[:, :, :2]), ValueError, "depth 2"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x[0]), ValueError, "must be 3-D"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x, np.ones(5, int)), ValueError, "shape (23,)"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x, np.ones(23, bool)), TypeError, "boolean"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x.astype(str)), TypeError, "not numeric"),
        (
            lambda c, x: fastlstm.dask.dynamic_rnn(c, x, initial_state=c.zero_state(22)),
            ValueError,
            "[23, depth]",
        ),
        (
            lambda c, x: fastlstm.dask.dynamic_rnn(c, x, initial_state=(np.ones((23, 6)),) * 3),
            ValueError,
            "c, h",
        ),
        (lambda c, x: fastlstm.dask.dynamic_rnn("cell", x), TypeError, "fastlstm cell"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(fastlstm.LSTMModel([c]), x), TypeError, "run_model"),
        (lambda c, x: fastlstm.dask.run_model(c, x), TypeError, "dynamic_rnn for a cell"),
        (lambda c, x: fastlstm.dask.dynamic_rnn(c, x, numba_threads=0), ValueError, "positive"),
    ],
)
def test_bad_arguments_raise_before_any_task(batch, call, error, words):
    x, _ = batch
    with pytest.raises(error, match=None) as info:
        call(_cells()[0], da.from_array(x, chunks=5))
    assert words in str(info.value)


def test_the_cell_is_one_key_of_the_graph(batch):
    """One graph key holds the cell; every chunk's task refers to it instead of carrying the weights."""
    x, lengths = batch
    cell = _cells()[0]
    outputs, _ = fastlstm.dask.dynamic_rnn(cell, da.from_array(x, chunks=3), lengths)
    (optimised,) = dask.optimize(outputs)
    for collection in (outputs, optimised):
        graph = dict(collection.__dask_graph__())
        holders = [key for key, node in graph.items() if getattr(node, "value", None) is cell]
        assert len(holders) == 1
        users = [node for node in graph.values() if holders[0] in getattr(node, "dependencies", ())]
        assert len(users) == len(outputs.chunks[0]) == 8


def test_thread_layout_rules():
    assert fastlstm.dask.thread_layout(numba_threads=1).here() == 1
    with dask.config.set(num_workers=1):
        assert fastlstm.dask.thread_layout().local == fastlstm.dask._usable_cores()
    with dask.config.set(scheduler="sync"):
        assert fastlstm.dask.thread_layout().local == fastlstm.dask._usable_cores()
    with pytest.raises(TypeError):
        fastlstm.dask.thread_layout(numba_threads=2.0)


# -- a real cluster: two worker processes -------------------------------------------------------------
@contextlib.contextmanager
def two_worker_processes():
    """A LocalCluster of two single-threaded worker processes and a client on it."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            worker_dashboard_address=":0",
        ) as local_cluster,
        Client(local_cluster) as client,
    ):
        yield local_cluster, client


@pytest.fixture(scope="module")
def cluster():
    fastlstm.warmup(["float32"])  # the workers load the kernels from the on-disk cache
    with two_worker_processes() as (local_cluster, client):
        yield local_cluster, client


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (200, 12, 3)).astype(np.float32)
    lengths = rng.integers(0, 13, 200)
    np.save(folder / "x.npy", x)
    np.save(folder / "lengths.npy", lengths)
    model = fastlstm.LSTMModel([fastlstm.LSTMCell(6), (fastlstm.BasicLSTMCell(4), fastlstm.BasicLSTMCell(5))])
    model.build(3, seed=2)
    fastlstm.save(folder / "model.npz", model)
    # a text classifier fed token ids (issue 14): Embedding(mask_zero) -> LSTM -> Dense(sigmoid)
    ids = rng.integers(1, 30, (200, 12))
    ids[np.arange(12) >= lengths[:, None]] = 0
    ids[7, 2] = 0  # a padding id inside a sequence: masked
    np.save(folder / "ids.npy", ids)
    np.savez(folder / "ids.npz", values=ids[np.arange(12) < lengths[:, None]], lengths=lengths)
    cell = fastlstm.BasicLSTMCell(5)
    cell.build(4, seed=3)
    classifier = fastlstm.LSTMModel(
        [
            fastlstm.Embedding(rng.uniform(-1, 1, (30, 4)).astype(np.float32), mask_zero=True),
            cell,
            fastlstm.Dense(rng.uniform(-1, 1, (5, 2)).astype(np.float32), [0.1, -0.1], "sigmoid"),
        ],
        return_sequences=False,
    )
    fastlstm.save(folder / "classifier.npz", classifier)
    return folder


def test_dynamic_rnn_on_a_cluster_is_bitwise_and_ships_the_cell_once_per_worker(cluster, batch):
    _, client = cluster
    x, lengths = batch
    client.run(_reset_loads)
    cell = _counting_cell()
    outputs, state = fastlstm.dask.dynamic_rnn(cell, da.from_array(x, chunks=2), lengths)
    assert len(outputs.chunks[0]) == 12
    got = client.compute([outputs, state], sync=True)
    assert _same(got, fastlstm.dynamic_rnn(cell, x, sequence_length=lengths))
    loads = client.run(_loads)
    assert sorted(loads.values()) == [1, 1], loads  # 12 tasks, one copy of the weights per worker


@pytest.mark.parametrize(
    ("outputs", "name"), [("sequences", "out.npy"), ("both", "out.npz"), ("final", "h.npy")]
)
def test_score_with_scheduler_equals_local(cluster, saved, tmp_path, capsys, outputs, name):
    local_cluster, _ = cluster
    common = [
        "score",
        str(saved / "model.npz"),
        str(saved / "x.npy"),
        "--lengths",
        str(saved / "lengths.npy"),
        "--outputs",
        outputs,
        "--batch-size",
        "16",
        "--quiet",
    ]
    assert main([*common, "-o", str(tmp_path / f"local-{name}")]) == 0
    assert main([*common, "-o", str(tmp_path / name), "--scheduler", local_cluster.scheduler_address]) == 0
    assert (tmp_path / name).read_bytes() == (tmp_path / f"local-{name}").read_bytes()
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("source", "outputs", "name"),
    [("ids.npy", "predictions", "p.npy"), ("ids.npz", "predictions", "p.npy"), ("ids.npy", "final", "h.npy")],
)
def test_score_token_ids_with_scheduler_equals_local(cluster, saved, tmp_path, capsys, source, outputs, name):
    """An Embedding -> LSTM -> Dense model fed token ids: the cluster writes the bytes a local run writes."""
    local_cluster, _ = cluster
    lengths = ["--lengths", str(saved / "lengths.npy")] if source.endswith(".npy") else []
    common = ["score", str(saved / "classifier.npz"), str(saved / source), *lengths, "--outputs", outputs,
              "--batch-size", "16", "--quiet"]  # fmt: skip
    assert main([*common, "-o", str(tmp_path / f"local-{name}")]) == 0
    assert main([*common, "-o", str(tmp_path / name), "--scheduler", local_cluster.scheduler_address]) == 0
    assert (tmp_path / name).read_bytes() == (tmp_path / f"local-{name}").read_bytes()
    assert capsys.readouterr() == ("", "")
    if outputs == "predictions":
        model = fastlstm.load(saved / "classifier.npz")
        want, _ = model(np.load(saved / "ids.npy"), sequence_length=np.load(saved / "lengths.npy"))
        np.testing.assert_array_equal(np.load(tmp_path / name), want)


def test_score_ships_the_model_once_per_worker_and_uses_the_thread_layout(cluster, saved, tmp_path):
    _, client = cluster
    client.run(_reset_loads)
    cell = _counting_cell()
    x = np.load(saved / "x.npy")
    summary = score_file(
        cell, str(saved / "x.npy"), str(tmp_path / "h.npy"), outputs="final", batch_size=10, client=client
    )
    assert summary.sequences == 200
    assert np.array_equal(np.load(tmp_path / "h.npy"), fastlstm.dynamic_rnn(cell, x)[1].h)
    assert sorted(client.run(_loads).values()) == [1, 1]  # 20 batches, one copy per worker
    assert client.run(lambda dask_worker: list(dask_worker.plugins)) and not any(
        name.startswith("fastlstm-model-")
        for names in client.run(lambda dask_worker: list(dask_worker.plugins)).values()
        for name in names
    )  # removed at the end
    layout = fastlstm.dask.thread_layout(client)
    assert layout.per_host == {"127.0.0.1": max(1, fastlstm.dask._usable_cores() // 2)}
    assert set(client.run(lambda: layout.here()).values()) == {max(1, fastlstm.dask._usable_cores() // 2)}


def test_a_worker_killed_mid_job_loses_nothing(saved, tmp_path):
    """SIGKILL one of two worker processes after two batches: Dask reruns its tasks; the output is exact."""
    x, lengths = np.load(saved / "x.npy"), np.load(saved / "lengths.npy")
    model = fastlstm.load(saved / "model.npz")
    with two_worker_processes() as (_, client):
        pids = client.run(os.getpid)
        victim = min(pids.values())
        seen = []

        def kill_after_two_batches(done, total):
            seen.append(done)
            if len(seen) == 3:  # the start, then two batches
                os.kill(victim, signal.SIGKILL)

        score_file(
            model,
            str(saved / "x.npy"),
            str(tmp_path / "out.npz"),
            lengths_path=str(saved / "lengths.npy"),
            outputs="both",
            batch_size=5,
            client=client,
            progress=kill_after_two_batches,
        )
        client.wait_for_workers(2)
        assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    outputs, states = model(x, sequence_length=lengths)
    fw, bw = states[-1]
    with np.load(tmp_path / "out.npz") as out:
        assert np.array_equal(out["values"], outputs[np.arange(12) < lengths[:, None]])
        assert np.array_equal(out["final_h"], np.concatenate([fw.h, bw.h], 1))
        assert np.array_equal(out["final_c"], np.concatenate([fw.c, bw.c], 1))
    assert seen[-1] == 200
