"""``fastlstm score`` with token ids and ``--outputs predictions``; Dask runs the same models."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
from cell_helpers import basic_cell
from fastlstm.cli import main

N, T, VOCAB, EMBED, UNITS = 23, 7, 12, 3, 4


def classifier(mask_zero=True, return_sequences=False):
    gen = np.random.default_rng(3)
    return fastlstm.LSTMModel(
        [
            fastlstm.Embedding(gen.uniform(-1, 1, (VOCAB, EMBED)).astype(np.float32), mask_zero=mask_zero),
            basic_cell(UNITS, EMBED),
            fastlstm.Dense(gen.uniform(-1, 1, (UNITS, 2)).astype(np.float32), [0.1, -0.2], "sigmoid"),
        ],
        return_sequences=return_sequences,
    )


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokens")
    gen = np.random.default_rng(4)
    lengths = gen.integers(0, T + 1, N)
    lengths[:3] = [0, T, 1]
    ids = gen.integers(1, VOCAB, (N, T))
    ids[4, 1] = 0  # a padding id inside a sequence: masked by mask_zero
    ids[np.arange(T) >= lengths[:, None]] = 0
    np.save(folder / "ids.npy", ids)
    np.save(folder / "ids32.npy", ids.astype(np.int32))
    np.save(folder / "lengths.npy", lengths)
    np.savez(folder / "ragged.npz", values=ids[np.arange(T) < lengths[:, None]], lengths=lengths)
    for name, model in {
        "final": classifier(),
        "steps": classifier(return_sequences=True),
        "unmasked": classifier(mask_zero=False),
    }.items():
        fastlstm.save(folder / f"{name}.npz", model)
    return {"folder": folder, "ids": ids, "lengths": lengths}


def score(capsys, *args):
    code = main(["score", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("source", ["ids.npy", "ids32.npy", "ragged.npz", "parquet"])
@pytest.mark.parametrize("name", ["final", "unmasked"])
def test_predictions_of_token_ids_equal_the_model(tokens, tmp_path, capsys, source, name):
    folder = tokens["folder"]
    if source == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        rows = [list(map(int, row[:n])) for row, n in zip(tokens["ids"], tokens["lengths"])]
        path = tmp_path / "tokens.parquet"
        pq.write_table(pa.table({"tokens": pa.array(rows, pa.list_(pa.int64()))}), path, row_group_size=5)
        extra = []
    else:
        path = folder / source
        extra = ["--lengths", folder / "lengths.npy"] if source.endswith(".npy") else []
    out = tmp_path / "p.npy"
    code, err = score(
        capsys, folder / f"{name}.npz", path, "-o", out, "--outputs", "predictions", "--batch-size", 5, *extra
    )
    assert code == 0, err
    model = fastlstm.load(folder / f"{name}.npz")
    want, _ = model(tokens["ids"], sequence_length=tokens["lengths"])
    np.testing.assert_array_equal(np.load(out), want)


def test_per_step_predictions_and_final_h(tokens, tmp_path, capsys):
    folder, ids, lengths = tokens["folder"], tokens["ids"], tokens["lengths"]
    model = fastlstm.load(folder / "steps.npz")
    want, (state,) = model(ids, sequence_length=lengths)
    want[np.arange(T) >= lengths[:, None]] = 0
    for suffix in (".npy", ".npz"):
        out = tmp_path / f"p{suffix}"
        code, err = score(
            capsys,
            folder / "steps.npz",
            folder / "ragged.npz",
            "-o",
            out,
            "--outputs",
            "predictions",
            "--batch-size",
            4,
        )
        assert code == 0, err
        if suffix == ".npy":
            np.testing.assert_array_equal(np.load(out), want)
        else:
            with np.load(out) as got:
                np.testing.assert_array_equal(got["values"], want[np.arange(T) < lengths[:, None]])
    out = tmp_path / "h.npy"
    assert score(capsys, folder / "steps.npz", folder / "ragged.npz", "-o", out, "--outputs", "final")[0] == 0
    np.testing.assert_array_equal(np.load(out), state.h)


@pytest.mark.parametrize(
    ("model", "inputs", "options", "message"),
    [
        (
            "final",
            "bad_ids.npy",
            [],
            r"bad_ids.npy: token id 12 at row 1, step 2 is outside the Embedding's vocabulary \[0, 12\)",
        ),
        ("final", "negative.npz", [], r"token id -3 at row 0, step 0"),
        ("final", "vectors.npy", [], r"holds vectors but the model starts with an Embedding"),
        ("plain", "ids.npy", [], r"holds token ids but the model has no Embedding"),
        (
            "final",
            "ids.npy",
            ["--outputs", "sequences"],
            r"only final outputs \(return_sequences=False\); use --outputs predictions",
        ),
        ("final", "ids.npy", ["--outputs", "predictions", "-o", "OUT.npz"], r"writes \*.npy"),
    ],
)
def test_bad_token_inputs_exit_2_and_write_nothing(tokens, tmp_path, capsys, model, inputs, options, message):
    folder = tokens["folder"]
    np.save(tmp_path / "bad_ids.npy", np.array([[1, 2, 3], [4, 5, 12]]))
    np.savez(tmp_path / "negative.npz", values=np.array([-3, 1]), lengths=np.array([2]))
    np.save(tmp_path / "vectors.npy", np.zeros((2, 3, EMBED), np.float32))
    fastlstm.save(tmp_path / "plain.npz", fastlstm.LSTMModel([basic_cell(UNITS, EMBED)]))
    model_path = folder / f"{model}.npz" if model != "plain" else tmp_path / "plain.npz"
    source = folder / inputs if inputs == "ids.npy" else tmp_path / inputs
    out = tmp_path / "out.npy"
    args = [model_path, source, "-o", out, "--outputs", "predictions", *options]
    args = [tmp_path / "OUT.npz" if a == "OUT.npz" else a for a in args]
    code, err = score(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err
    assert not out.exists() and not (tmp_path / "OUT.npz").exists()


def test_dask_runs_embedding_models(tokens):
    dask_array = pytest.importorskip("dask.array")
    import fastlstm.dask

    ids, lengths = tokens["ids"], tokens["lengths"]
    for name in ("final", "steps"):
        model = fastlstm.load(tokens["folder"] / f"{name}.npz")
        outputs, (state,) = fastlstm.dask.run_model(model, dask_array.from_array(ids, chunks=(6, T)), lengths)
        want, (want_state,) = model(ids, sequence_length=lengths)
        np.testing.assert_array_equal(outputs.compute(scheduler="sync"), want)
        np.testing.assert_array_equal(state.h.compute(scheduler="sync"), want_state.h)
