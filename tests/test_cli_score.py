"""``fastlstm score``: formats, layouts, equality with the in-memory API, errors, atomic output."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastlstm
import fastlstm.scoring
from fastlstm.cli import main

N, T, DEPTH = 37, 9, 3


def _models():
    stack = fastlstm.MultiRNNCell(
        [
            fastlstm.LSTMCell(5, use_peepholes=True, num_proj=4),
            fastlstm.BasicLSTMCell(4, state_is_tuple=False),
        ]
    )
    model = fastlstm.LSTMModel(
        [fastlstm.LSTMCell(5), (fastlstm.BasicLSTMCell(4), fastlstm.LSTMCell(3, num_proj=2, cell_clip=2.0))]
    )
    built = {"cell": fastlstm.BasicLSTMCell(6), "stack": stack, "model": model}
    for seed, obj in enumerate(built.values()):
        obj.build(DEPTH, seed=seed)
    return built


def expected(obj, x, lengths, dtype=None):
    """Outputs and the top layer's final (c, h), straight from the public API."""
    if isinstance(obj, fastlstm.LSTMModel):
        outputs, states = obj(x, sequence_length=lengths)
        fw, bw = states[-1]
        return outputs, np.concatenate([fw.c, bw.c], 1), np.concatenate([fw.h, bw.h], 1)
    outputs, state = fastlstm.dynamic_rnn(obj, x, sequence_length=lengths, dtype=dtype)
    if isinstance(obj, fastlstm.MultiRNNCell):
        joined = state[-1]  # the top cell has state_is_tuple=False: concat([c, h])
        return outputs, joined[:, :4], joined[:, 4:]
    return outputs, state.c, state.h


def packed(outputs, lengths):
    return outputs[np.arange(outputs.shape[1]) < lengths[:, None]]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (N, T, DEPTH)).astype(np.float32)
    lengths = rng.integers(0, T + 1, N)
    lengths[:3] = [0, T, 1]
    np.save(folder / "x.npy", x)
    np.save(folder / "lengths.npy", lengths)
    np.savez(folder / "ragged.npz", values=packed(x, lengths), lengths=lengths)
    models = _models()
    for name, obj in models.items():
        fastlstm.save(folder / f"{name}.npz", obj)
    return {"folder": folder, "x": x, "lengths": lengths, "models": models}


def score(capsys, *args):
    code = main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# -- results --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cell", "stack", "model"])
@pytest.mark.parametrize("batch_size", [5, 64])
def test_padded_npy_sequences_and_finals(data, tmp_path, capsys, name, batch_size):
    folder, x, lengths = data["folder"], data["x"], data["lengths"]
    outputs, c, h = expected(data["models"][name], x, lengths)
    args = [
        folder / f"{name}.npz",
        folder / "x.npy",
        "--lengths",
        folder / "lengths.npy",
        "--batch-size",
        batch_size,
    ]
    assert score(capsys, *args, "-o", tmp_path / "seq.npy")[0] == 0
    written = np.load(tmp_path / "seq.npy")
    assert written.dtype == np.float32 and np.array_equal(written, outputs)
    assert score(capsys, *args, "-o", tmp_path / "final.npy", "--outputs", "final")[0] == 0
    assert np.array_equal(np.load(tmp_path / "final.npy"), h)
    assert score(capsys, *args, "-o", tmp_path / "both.npz", "--outputs", "both")[0] == 0
    with np.load(tmp_path / "both.npz") as both:
        assert sorted(both.files) == ["final_c", "final_h", "lengths", "values"]
        assert np.array_equal(both["values"], packed(outputs, lengths))
        assert np.array_equal(both["lengths"], lengths)
        assert np.array_equal(both["final_h"], h) and np.array_equal(both["final_c"], c)
    assert leftovers(tmp_path) == []


def test_ragged_inputs_and_outputs(data, tmp_path, capsys):
    folder, x, lengths = data["folder"], data["x"], data["lengths"]
    outputs, _, _ = expected(data["models"]["model"], x, lengths)
    model = folder / "model.npz"
    np.savez_compressed(
        tmp_path / "deflated.npz", values=packed(x, lengths), lengths=lengths, extra=np.ones(2)
    )
    for source in (folder / "ragged.npz", tmp_path / "deflated.npz"):
        assert score(capsys, model, source, "-o", tmp_path / "out.npz", "--batch-size", 4)[0] == 0
        with np.load(tmp_path / "out.npz") as out:
            assert np.array_equal(out["values"], packed(outputs, lengths))
        assert score(capsys, model, source, "-o", tmp_path / "out.npy", "--batch-size", 4)[0] == 0
        assert np.array_equal(np.load(tmp_path / "out.npy"), outputs)  # T = longest sequence = T here
    # An .npz output is a valid ragged input: chain a second model.
    cell = data["models"]["cell"]
    second = fastlstm.BasicLSTMCell(3)
    second.build(cell.output_size, seed=9)
    fastlstm.save(tmp_path / "second.npz", second)
    assert score(capsys, folder / "cell.npz", folder / "ragged.npz", "-o", tmp_path / "h1.npz")[0] == 0
    assert score(capsys, tmp_path / "second.npz", tmp_path / "h1.npz", "-o", tmp_path / "h2.npy")[0] == 0
    first_outputs, _, _ = expected(cell, x, lengths)
    assert np.array_equal(
        np.load(tmp_path / "h2.npy"), fastlstm.dynamic_rnn(second, first_outputs, lengths)[0]
    )


def test_parquet_input(data, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x, lengths = data["x"], data["lengths"]
    rows = [x[i, : lengths[i]].astype(np.float64).tolist() for i in range(N)]
    pq.write_table(pa.table({"id": np.arange(N), "seq": rows}), tmp_path / "in.parquet", row_group_size=8)
    code, _, _ = score(
        capsys,
        data["folder"] / "model.npz",
        tmp_path / "in.parquet",
        "-o",
        tmp_path / "out.npz",
        "--outputs",
        "both",
        "--batch-size",
        6,
    )
    assert code == 0
    outputs, c, h = expected(data["models"]["model"], x, lengths)
    with np.load(tmp_path / "out.npz") as out:
        assert np.array_equal(out["values"], packed(outputs, lengths))
        assert np.array_equal(out["final_h"], h) and np.array_equal(out["final_c"], c)


def test_dtype_float64_and_odd_layouts(data, tmp_path, capsys):
    """float64 computation; a Fortran-order, big-endian integer input; no lengths file."""
    cell = data["models"]["cell"]
    x = np.asfortranarray(np.random.default_rng(1).integers(-3, 4, (11, 5, DEPTH))).astype(">i4", order="F")
    np.save(tmp_path / "x.npy", x)
    code, _, _ = score(
        capsys,
        data["folder"] / "cell.npz",
        tmp_path / "x.npy",
        "-o",
        tmp_path / "out.npy",
        "--dtype",
        "float64",
        "--batch-size",
        3,
    )
    assert code == 0
    written = np.load(tmp_path / "out.npy")
    reference, _ = fastlstm.dynamic_rnn(cell, x.astype(np.float64), dtype=np.float64)
    assert written.dtype == np.float64 and np.array_equal(written, reference)


@pytest.mark.parametrize("name", ["cell", "model"])
def test_precision_bfloat16(data, tmp_path, capsys, name):
    """--precision bfloat16: the numbers of the API's precision="bfloat16", float32 outputs."""
    folder, x, lengths = data["folder"], data["x"], data["lengths"]
    obj = data["models"][name]
    args = [folder / f"{name}.npz", folder / "x.npy", "--lengths", folder / "lengths.npy", "--batch-size", 16]
    assert score(capsys, *args, "-o", tmp_path / "seq.npy", "--precision", "bfloat16")[0] == 0
    if isinstance(obj, fastlstm.LSTMModel):
        outputs, _ = obj(x, sequence_length=lengths, precision="bfloat16")
    else:
        outputs, _ = fastlstm.dynamic_rnn(obj, x, sequence_length=lengths, precision="bfloat16")
    written = np.load(tmp_path / "seq.npy")
    assert written.dtype == np.float32 and np.array_equal(written, outputs)
    assert not np.array_equal(written, expected(obj, x, lengths)[0])


def test_precision_bfloat16_with_dtype_float64_is_an_error(data, tmp_path, capsys):
    code, _, err = score(
        capsys,
        data["folder"] / "cell.npz",
        data["folder"] / "x.npy",
        "-o",
        tmp_path / "o.npy",
        "--precision",
        "bfloat16",
        "--dtype",
        "float64",
    )
    assert code == 2 and "--precision bfloat16 computes in float32" in err and err.count("\n") == 1
    assert not (tmp_path / "o.npy").exists()


def test_empty_input(data, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((0, T, DEPTH), np.float32))
    assert (
        score(
            capsys,
            data["folder"] / "model.npz",
            tmp_path / "x.npy",
            "-o",
            tmp_path / "out.npz",
            "--outputs",
            "both",
        )[0]
        == 0
    )
    with np.load(tmp_path / "out.npz") as out:
        assert out["values"].shape == (0, 6) and out["final_c"].shape == (0, 7)


def test_threads_option_restores_numba_threads(data, tmp_path, capsys):
    import numba

    before = numba.get_num_threads()
    assert (
        score(
            capsys,
            data["folder"] / "cell.npz",
            data["folder"] / "x.npy",
            "-o",
            tmp_path / "o.npy",
            "--threads",
            1,
        )[0]
        == 0
    )
    assert numba.get_num_threads() == before


# -- console output -------------------------------------------------------------------------------
def test_non_tty_prints_one_summary_line_and_quiet_nothing(data, tmp_path, capsys):
    args = [data["folder"] / "cell.npz", data["folder"] / "x.npy", "-o", tmp_path / "o.npy"]
    code, out, err = score(capsys, *args)
    assert code == 0 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"fastlstm score: {N} sequences ({N * T} steps) in ") and "sequences/s" in err
    assert score(capsys, *args, "--quiet") == (0, "", "")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(data, tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = [
        "score",
        str(data["folder"] / "cell.npz"),
        str(data["folder"] / "x.npy"),
        "-o",
        str(tmp_path / "o.npy"),
    ]
    assert main([*args, "--batch-size", "8"]) == 0
    assert "seq/s" in terminal.getvalue() and "sequences/s" in terminal.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*args, "--quiet"]) == 0
    assert quiet.getvalue() == ""


def test_help_documents_the_layouts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("final_h", "final_c", "ragged", "--scheduler", "exit status", "130"):
        assert word in text


# -- errors: one line naming the file, exit status 2, nothing written -------------------------------
def _truncate(source, target, keep):
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * keep)] if keep < 1 else data[:keep])
    return target


def _corrupt_deflated_values(path):
    """A deflated ragged .npz whose 'values' stream breaks in the middle."""
    rng = np.random.default_rng(0)
    np.savez_compressed(path, values=rng.random((400, DEPTH), dtype=np.float32), lengths=np.full(40, 10))
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("values.npy")
    raw = bytearray(Path(path).read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    raw[middle : middle + 64] = bytes(64)
    Path(path).write_bytes(bytes(raw))
    return path


def _parquet(path, column):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(column), path)
    return path


def _error_cases(d, tmp):
    """Case id → a function making the files and returning (arguments, file blamed, words of the message)."""
    f = d["folder"]
    model, x, lengths, ragged = f / "model.npz", f / "x.npy", f / "lengths.npy", f / "ragged.npz"
    out = tmp / "out.npy"

    def npy(name, array):
        np.save(tmp / name, array)
        return tmp / name

    def npz(name, **arrays):
        np.savez(tmp / name, **arrays)
        return tmp / name

    def bad_lengths(name, value):
        return npy(name, np.where(np.arange(N) == 4, value, d["lengths"]))

    def text(name):
        (tmp / name).write_text("hello")
        return tmp / name

    def parquet(name, columns):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.table(columns), tmp / name)
        return tmp / name

    def with_input(path, *extra):
        return [model, path, "-o", out, *extra], path

    return {
        "model-missing": lambda: (
            [tmp / "no.npz", x, "-o", out],
            tmp / "no.npz",
            "No such file or directory",
        ),
        "model-not-npz": lambda: ([text("m.txt"), x, "-o", out], tmp / "m.txt", "not a fastlstm file"),
        "model-foreign-npz": lambda: (
            [npz("w.npz", a=np.ones(2)), x, "-o", out],
            tmp / "w.npz",
            "no 'fastlstm_format_version' array",
        ),
        "model-truncated": lambda: (
            [_truncate(model, tmp / "m.npz", 0.5), x, "-o", out],
            tmp / "m.npz",
            "not a fastlstm file",
        ),
        "input-missing": lambda: (*with_input(tmp / "no.npy"), "No such file or directory"),
        "input-garbage": lambda: (*with_input(text("g.bin")), "not a .npy, .npz or Parquet file"),
        "input-rank": lambda: (*with_input(npy("r.npy", np.ones((4, 3)))), "expected a 3-D"),
        "input-depth": lambda: (
            *with_input(npy("d.npy", np.ones((4, 5, 2)))),
            "inputs have depth 2 but the model takes depth 3",
        ),
        "input-strings": lambda: (*with_input(npy("s.npy", np.full((2, 2, 3), "a"))), "has dtype <U1"),
        "input-truncated": lambda: (*with_input(_truncate(x, tmp / "t.npy", 0.6)), "truncated"),
        "input-bad-header": lambda: (
            *with_input(_truncate(x, tmp / "h.npy", 20)),
            "not a readable .npy array",
        ),
        "npz-truncated": lambda: (
            *with_input(_truncate(ragged, tmp / "t.npz", 0.5)),
            "not a readable .npz archive",
        ),
        "npz-no-values": lambda: (*with_input(npz("v.npz", lengths=d["lengths"])), "no 'values' array"),
        "npz-sum": lambda: (
            *with_input(npz("s.npz", values=np.ones((10, 3)), lengths=[4, 5])),
            "'values' has 10 steps but the lengths add up to 9",
        ),
        "npz-rank": lambda: (
            *with_input(npz("r.npz", values=np.ones((2, 2, 3)), lengths=[1, 1])),
            "'values' must be 2-D",
        ),
        "npz-negative": lambda: (
            *with_input(npz("n.npz", values=np.ones((1, 3)), lengths=[2, -1])),
            "lengths[1] = -1 is negative",
        ),
        "npz-corrupt-stream": lambda: (
            *with_input(_corrupt_deflated_values(tmp / "c.npz"), "--batch-size", 4),
            "corrupt 'values' member",
        ),
        "lengths-missing": lambda: (
            [model, x, "--lengths", tmp / "no.npy", "-o", out],
            tmp / "no.npy",
            "No such file or directory",
        ),
        "lengths-count": lambda: (
            [model, x, "--lengths", npy("c.npy", np.ones(N - 1, int)), "-o", out],
            tmp / "c.npy",
            f"holds {N - 1} lengths but the input has {N} sequences",
        ),
        "lengths-negative": lambda: (
            [model, x, "--lengths", bad_lengths("n.npy", -1), "-o", out],
            tmp / "n.npy",
            "lengths[4] = -1 is negative",
        ),
        "lengths-too-long": lambda: (
            [model, x, "--lengths", bad_lengths("l.npy", T + 1), "-o", out],
            tmp / "l.npy",
            f"lengths[4] = {T + 1} exceeds max_time = {T}",
        ),
        "lengths-fraction": lambda: (
            [model, x, "--lengths", bad_lengths("f.npy", 2.5), "-o", out],
            tmp / "f.npy",
            "lengths[4] = 2.5 is not an integer",
        ),
        "lengths-rank": lambda: (
            [model, x, "--lengths", npy("r.npy", np.ones((N, 1), int)), "-o", out],
            tmp / "r.npy",
            "must be 1-D",
        ),
        "lengths-strings": lambda: (
            [model, x, "--lengths", npy("s.npy", np.full(N, "3")), "-o", out],
            tmp / "s.npy",
            "lengths have dtype <U1",
        ),
        "lengths-with-ragged": lambda: (
            [model, ragged, "--lengths", lengths, "-o", out],
            lengths,
            "--lengths is only for a padded .npy input",
        ),
        "output-suffix": lambda: (
            [model, x, "-o", tmp / "o.txt"],
            tmp / "o.txt",
            "--outputs sequences writes *.npy or *.npz",
        ),
        "output-final-npz": lambda: (
            [model, x, "-o", tmp / "o.npz", "--outputs", "final"],
            tmp / "o.npz",
            "--outputs final writes *.npy",
        ),
        "output-both-npy": lambda: (
            [model, x, "-o", out, "--outputs", "both"],
            out,
            "--outputs both writes *.npz",
        ),
        "output-no-dir": lambda: (
            [model, x, "-o", tmp / "no" / "o.npy"],
            tmp / "no" / "o.npy",
            "cannot write here",
        ),
        "output-is-input": lambda: ([model, x, "-o", x], x, "is also an input file"),
        "parquet-no-list": lambda: (
            *with_input(parquet("a.parquet", {"a": [1.0]})),
            "no list-of-lists column",
        ),
        "parquet-nulls": lambda: (
            *with_input(parquet("n.parquet", {"s": [[[1.0, 2.0, 3.0]], None]})),
            "holds nulls",
        ),
        "parquet-depth": lambda: (
            *with_input(parquet("d.parquet", {"s": [[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0], [1.0, 2.0]]]})),
            "row 1 has a step of depth 2, earlier rows depth 3",
        ),
        "parquet-strings": lambda: (*with_input(parquet("s.parquet", {"s": [[["a"]]]})), "not numbers"),
        "parquet-truncated": lambda: (
            *with_input(
                _truncate(parquet("t.parquet", {"s": [[[1.0, 2.0, 3.0]]] * 50}), tmp / "t2.parquet", 0.7)
            ),
            "not a readable Parquet file",
        ),
    }


ERROR_CASES = sorted(_error_cases({"folder": Path(), "lengths": None}, Path()))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(data, tmp_path, capsys, case):
    args, blamed, words = _error_cases(data, tmp_path)[case]()
    output = Path(args[args.index("-o") + 1])
    previous = output.exists() and output.read_bytes()
    code, out, err = score(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"fastlstm score: error: {blamed}: "), err
    assert words in err, err
    assert (output.read_bytes() if output.exists() else False) == previous
    assert leftovers(output.parent if output.parent.exists() else tmp_path) == []


def test_errors_leave_a_previous_output_untouched(data, tmp_path, capsys):
    output = tmp_path / "out.npy"
    output.write_bytes(b"previous")
    corrupt = _corrupt_deflated_values(tmp_path / "c.npz")
    code, _, err = score(capsys, data["folder"] / "model.npz", corrupt, "-o", output, "--batch-size", 4)
    assert code == 2 and "corrupt 'values' member" in err
    assert output.read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_threads_beyond_numba_is_an_error(data, tmp_path, capsys):
    code, _, err = score(
        capsys,
        data["folder"] / "cell.npz",
        data["folder"] / "x.npy",
        "-o",
        tmp_path / "o.npy",
        "--threads",
        10_000,
    )
    assert code == 2 and err.startswith("fastlstm score: error: --threads 10000: ") and err.count("\n") == 1


def test_unreachable_scheduler(data, tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")

    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        code, _, err = score(
            capsys,
            data["folder"] / "cell.npz",
            data["folder"] / "x.npy",
            "-o",
            tmp_path / "o.npy",
            "--scheduler",
            "tcp://127.0.0.1:9",
        )
    assert code == 2 and err.startswith("fastlstm score: error: tcp://127.0.0.1:9: cannot connect")
    assert err.count("\n") == 1 and not (tmp_path / "o.npy").exists()


def test_write_failure_is_exit_1(data, tmp_path, capsys, monkeypatch):
    import errno

    def full(stream, array):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fastlstm.scoring.sinks, "_write_array", full)
    output = tmp_path / "o.npy"
    code, _, err = score(capsys, data["folder"] / "cell.npz", data["folder"] / "x.npy", "-o", output)
    assert code == 1
    assert err == f"fastlstm score: error: {output}: cannot write: No space left on device\n"
    assert not output.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--threads", "-1"], ["--outputs", "all"]])
def test_bad_options_are_usage_errors(data, tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["score", str(data["folder"] / "cell.npz"), str(data["folder"] / "x.npy"), "-o", "o.npy", *option]
        )
    assert exit_info.value.code == 2
    assert "fastlstm score: error: argument" in capsys.readouterr().err


def test_ctrl_c_in_process_cleans_up(data, tmp_path, capsys, monkeypatch):
    output = tmp_path / "out.npz"
    output.write_bytes(b"previous")
    calls = []
    real = fastlstm.scoring.job.run_batch

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(fastlstm.scoring.job, "run_batch", interrupted)
    code, _, err = score(
        capsys,
        data["folder"] / "model.npz",
        data["folder"] / "x.npy",
        "-o",
        output,
        "--outputs",
        "both",
        "--batch-size",
        4,
    )
    assert code == 130 and "interrupted" in err
    assert output.read_bytes() == b"previous" and leftovers(tmp_path) == []


# -- signals: a real process, killed at a random moment -------------------------------------------
@pytest.fixture(scope="module")
def long_job(tmp_path_factory):
    """A job of several seconds (small batches, wide cell) and a warm numba cache for the subprocesses."""
    fastlstm.warmup(["float32"])  # the subprocess loads the kernels from the on-disk cache
    folder = tmp_path_factory.mktemp("long")
    cell = fastlstm.BasicLSTMCell(256)
    cell.build(16, seed=0)
    fastlstm.save(folder / "model.npz", cell)
    inputs = np.lib.format.open_memmap(folder / "x.npy", "w+", np.float32, (8000, 100, 16))
    inputs[:] = np.random.default_rng(0).random((8000, 100, 16), dtype=np.float32)
    inputs.flush()
    del inputs
    return folder


@pytest.mark.parametrize(
    ("signum", "seed", "exit_code"),
    [(signal.SIGKILL, 1, -signal.SIGKILL), (signal.SIGINT, 2, 130), (signal.SIGTERM, 3, 143)],
    ids=["SIGKILL", "SIGINT", "SIGTERM"],
)
def test_killed_run_never_leaves_a_truncated_output(long_job, tmp_path, signum, seed, exit_code):
    import random

    output = tmp_path / "out.npy"
    output.write_bytes(b"a previous, complete output")
    command = [
        sys.executable,
        "-m",
        "fastlstm",
        "score",
        str(long_job / "model.npz"),
        str(long_job / "x.npy"),
        "-o",
        str(output),
        "--batch-size",
        "32",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(tmp_path):  # writing has begun
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(random.Random(seed).uniform(0.0, 0.8))
        assert process.poll() is None, "the job ended before the signal; make it longer"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == exit_code, err
    assert output.read_bytes() == b"a previous, complete output"
    if signum == signal.SIGKILL:  # nothing can clean up after SIGKILL: at most a hidden .tmp file
        assert all(name.startswith(".out.npy.") for name in leftovers(tmp_path))
    else:
        assert leftovers(tmp_path) == []
        assert err.decode().strip().endswith("was not written")
