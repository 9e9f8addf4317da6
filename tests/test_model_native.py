"""LSTMModel and the native save/load format."""

from __future__ import annotations

import json
import os
import tempfile

import numba
import numpy as np
import pytest

import fastlstm
from cell_helpers import assert_state_close, basic_cell, leaves, lstm_cell, naive_run, randomise, tolerance
from fastlstm.activations import ACTIVATIONS


def model(dtype=np.float32, seed=0):
    """A built model: a projecting cell, a bidirectional pair, a stack on top."""
    return randomise(
        fastlstm.LSTMModel(
            [
                fastlstm.LSTMCell(5, use_peepholes=True, num_proj=3, dtype=dtype),
                (fastlstm.BasicLSTMCell(4, dtype=dtype), fastlstm.LSTMCell(3, cell_clip=0.5, dtype=dtype)),
                fastlstm.MultiRNNCell(
                    [fastlstm.BasicLSTMCell(3, dtype=dtype), fastlstm.LSTMCell(2, dtype=dtype)]
                ),
            ]
        ),
        4,
        seed,
    )


def naive_model(m, x, lengths, initial=None):
    initial = initial or (None,) * len(m.layers)
    states = []
    for layer, state in zip(m.layers, initial):
        if isinstance(layer, tuple):
            state = state or (None, None)
            out_fw, s_fw = naive_run(layer[0], x, lengths, state[0])
            out_bw, s_bw = naive_run(layer[1], x, lengths, state[1], reverse=True)
            x = np.concatenate([out_fw, out_bw], axis=-1)
            states.append((s_fw, s_bw))
        else:
            x, s = naive_run(layer, x, lengths, state)
            states.append(s)
    return x, tuple(states)


# -- LSTMModel ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_against_reference(rng, dtype):
    m = model(dtype)
    x = rng.uniform(-1, 1, (5, 6, 4))
    lengths = np.array([6, 0, 2, 1, 5])
    outputs, states = m(x, sequence_length=lengths)
    ref, ref_states = naive_model(m, x, lengths)
    assert outputs.dtype == dtype and outputs.shape == (5, 6, 2)
    np.testing.assert_allclose(outputs, ref, atol=tolerance(dtype), rtol=0)
    assert len(states) == 3 and len(states[1]) == 2 and len(states[2]) == 2
    assert states[1][0].h.shape == (5, 4) and states[1][1].c.shape == (5, 3)
    assert_state_close(states, ref_states, tolerance(dtype))
    assert not outputs[1].any() and not outputs[2, 2:].any() and not outputs[4, 5:].any()


def test_model_initial_states(rng):
    m = model(np.float64)
    x = rng.uniform(-1, 1, (3, 4, 4))
    state0 = fastlstm.LSTMStateTuple(rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, (3, 3)))
    state_bw = fastlstm.LSTMStateTuple(rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (3, 3)))
    initial = [state0, (None, state_bw), None]
    outputs, states = m(x, [4, 1, 0], initial_state=initial)
    ref, ref_states = naive_model(m, x, [4, 1, 0], initial)
    np.testing.assert_allclose(outputs, ref, atol=1e-12, rtol=0)
    assert_state_close(states, ref_states, 1e-12)
    np.testing.assert_array_equal(states[1][1].c[2], state_bw.c[2])


def test_model_time_major_is_the_transpose(rng):
    m = model()
    x = rng.uniform(-1, 1, (3, 5, 4)).astype(np.float32)
    batch_major, states = m(x, [5, 2, 3])
    time_major, states_tm = m(x.transpose(1, 0, 2), [5, 2, 3], time_major=True)
    np.testing.assert_array_equal(time_major, batch_major.transpose(1, 0, 2))
    np.testing.assert_array_equal(states_tm[1][1].h, states[1][1].h)


def test_model_attributes_and_repr():
    m = model(np.float64)
    assert m.input_size == 4 and m.output_size == 2 and m.dtype == np.float64 and m.built
    assert isinstance(m.layers, list) and isinstance(m.layers[1], tuple) and len(m.layers) == 3
    text = repr(m)
    assert text.startswith("LSTMModel([\n    LSTMCell(num_units=5")
    assert "    (BasicLSTMCell(num_units=4" in text and "MultiRNNCell([" in text


def test_model_builds_lazily_and_with_seed():
    def make():
        return fastlstm.LSTMModel(
            [[fastlstm.BasicLSTMCell(3), fastlstm.BasicLSTMCell(2)], fastlstm.LSTMCell(4)]
        )

    lazy = make()
    assert lazy.input_size is None and lazy.output_size == 4 and not lazy.built
    lazy(np.zeros((1, 2, 6)))
    assert lazy.input_size == 6 and lazy.layers[1].input_size == 5
    first, second = make(), make()
    first.build(6, seed=3)
    second.build(6, seed=3)
    for a, b in zip(leaves(first), leaves(second), strict=True):
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)


def test_model_does_not_modify_inputs(rng):
    x = np.asfortranarray(rng.uniform(-1, 1, (3, 4, 4)))
    before = x.copy()
    model()(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "layers, error, message",
    [
        ([], ValueError, "LSTMModel needs at least one layer, got an empty list"),
        (fastlstm.BasicLSTMCell(2), TypeError, "layers must be a list of cells or .* got BasicLSTMCell"),
        (["lstm"], TypeError, r"layers\[0\] must be a fastlstm cell or a \(cell_fw, cell_bw\) pair, got str"),
        (
            [(fastlstm.BasicLSTMCell(2),) * 3],
            ValueError,
            r"layers\[0\] must be a \(cell_fw, cell_bw\) pair, got 3",
        ),
        (
            [(fastlstm.BasicLSTMCell(2), 3)],
            TypeError,
            r"layers\[0\] cell_bw must be a fastlstm cell .* got int",
        ),
        (
            [(basic_cell(2, 3), basic_cell(2, 4))],
            ValueError,
            r"layers\[0\]: cell_fw was built for inputs of depth 3 but cell_bw for depth 4",
        ),
        (
            [basic_cell(5, 3), (basic_cell(2, 6), fastlstm.BasicLSTMCell(2))],
            ValueError,
            r"layers\[1\] takes inputs of depth 6 but layers\[0\] outputs depth 5",
        ),
        (
            [(basic_cell(2, 3), basic_cell(2, 3, seed=1)), basic_cell(3, 5)],
            ValueError,
            r"layers\[1\] takes inputs of depth 5 but layers\[0\] outputs depth 4",
        ),
        (
            [
                fastlstm.BasicLSTMCell(2),
                (fastlstm.BasicLSTMCell(2), fastlstm.BasicLSTMCell(2, dtype="float64")),
            ],
            ValueError,
            r"layers\[1\] cell_bw has dtype float64 but layers\[0\] has dtype float32",
        ),
    ],
)
def test_model_construction_errors(layers, error, message):
    with pytest.raises(error, match=message):
        fastlstm.LSTMModel(layers)


def test_model_refuses_a_cell_used_twice():
    cell = fastlstm.BasicLSTMCell(2)
    with pytest.raises(ValueError, match="the same cell object is used twice"):
        fastlstm.LSTMModel([(cell, cell)])
    with pytest.raises(ValueError, match="the same cell object is used twice"):
        fastlstm.LSTMModel([cell, fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(2), cell])])


@pytest.mark.parametrize(
    "inputs, initial, message",
    [
        (np.zeros((2, 3, 5)), None, r"layers\[0\]: inputs have depth 5 but the cell was built for depth 4"),
        (np.zeros((2, 3, 4)), [None, None], r"initial_state must have one entry per layer \(3\), got 2"),
        (np.zeros((2, 3, 4)), np.zeros((2, 5)), r"initial_state must be a list with one state per layer"),
        (
            np.zeros((2, 3, 4)),
            [None, np.zeros((2, 3)), None],
            r"initial_state\[1\] of a bidirectional layer must be a pair \(state_fw, state_bw\), got ndarray",
        ),
        (
            np.zeros((2, 3, 4)),
            [None, (None, (np.zeros((2, 3)), np.zeros((2, 4)))), None],
            r"layers\[1\] cell_bw: initial state h must have shape \(2, 3\), got \(2, 4\)",
        ),
        (
            np.zeros((2, 3, 4)),
            [None, None, (None, (np.zeros((2, 1)), np.zeros((2, 2))))],
            r"layers\[2\]: cells\[1\]: initial state c must have shape \(2, 2\), got \(2, 1\)",
        ),
    ],
)
def test_model_call_errors(inputs, initial, message):
    with pytest.raises(ValueError, match=message):
        model()(inputs, initial_state=initial)


# -- native save / load ---------------------------------------------------------------------
def _cases():
    cases = {
        f"basic_{name}": lambda name=name: basic_cell(3, 2, activation=name) for name in sorted(ACTIVATIONS)
    }
    cases.update(
        basic_float64_not_tuple=lambda: basic_cell(
            3, 2, dtype=np.float64, state_is_tuple=False, forget_bias=0.1, name="enc"
        ),
        basic_default_activation=lambda: basic_cell(3, 2, activation=None),
        lstm_plain=lambda: lstm_cell(3, 2),
        lstm_full_float64=lambda: lstm_cell(
            4,
            2,
            dtype=np.float64,
            use_peepholes=True,
            cell_clip=1 / 3,
            num_proj=2,
            proj_clip=0.1,
            forget_bias=-0.7,
            activation="selu",
        ),
        lstm_proj=lambda: lstm_cell(4, 2, num_proj=3, name="proj"),
        multi=lambda: randomise(
            fastlstm.MultiRNNCell(
                [fastlstm.BasicLSTMCell(3), fastlstm.MultiRNNCell([fastlstm.LSTMCell(2, use_peepholes=True)])]
            ),
            2,
        ),
        model_float32=model,
        model_float64=lambda: model(np.float64),
    )
    return cases


CASES = _cases()


def run(obj, x):
    if isinstance(obj, fastlstm.LSTMModel):
        return obj(x, [3, 1])
    return fastlstm.dynamic_rnn(obj, x, [3, 1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_is_bit_exact(tmp_path, rng, case):
    original = CASES[case]()
    path = tmp_path / "saved.npz"
    fastlstm.save(path, original)
    loaded = fastlstm.load(path)
    assert type(loaded) is type(original) and repr(loaded) == repr(original)
    for mine, theirs in zip(leaves(loaded), leaves(original), strict=True):
        assert type(mine) is type(theirs) and mine.get_config() == theirs.get_config()
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    depth = leaves(original)[0].input_size
    x = rng.uniform(-1, 1, (2, 3, depth))
    out_loaded, _ = run(loaded, x)
    out_original, _ = run(original, x)
    np.testing.assert_array_equal(out_loaded, out_original)


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "m.fastlstm"
    fastlstm.save(path, model())
    assert os.listdir(tmp_path) == ["m.fastlstm"]
    with np.load(path, allow_pickle=False) as data:
        assert int(data["fastlstm_format_version"]) == 1
        config = json.loads(str(data["fastlstm_config"]))
        assert data["fastlstm_config"].shape == () and config["class"] == "LSTMModel"
        assert config["layers"][1][0]["class"] == "BasicLSTMCell"
        assert data["layers.1.bw.kernel"].shape == (6, 12) and data["layers.2.cells.1.bias"].shape == (8,)


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "cell.npz"
    first, second = lstm_cell(3, 2), lstm_cell(3, 2, seed=9)
    fastlstm.save(str(path), first)
    fastlstm.save(path, second)
    assert os.listdir(tmp_path) == ["cell.npz"]
    np.testing.assert_array_equal(fastlstm.load(path).kernel, second.kernel)
    with pytest.raises(ValueError, match="has no weights yet"):
        fastlstm.save(path, fastlstm.LSTMModel([first, fastlstm.BasicLSTMCell(2)]))
    assert os.listdir(tmp_path) == ["cell.npz"]
    np.testing.assert_array_equal(fastlstm.load(path).kernel, second.kernel)


def test_failed_write_removes_the_temporary_file(tmp_path, monkeypatch):
    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fastlstm.save(tmp_path / "x.npz", lstm_cell(3, 2))
    assert os.listdir(tmp_path) == []


def test_save_errors(tmp_path):
    with pytest.raises(
        ValueError, match=r"cannot save BasicLSTMCell\(num_units=3.*has no weights yet; call build"
    ):
        fastlstm.save(tmp_path / "x.npz", fastlstm.BasicLSTMCell(3))
    with pytest.raises(
        TypeError, match="save expects a BasicLSTMCell, LSTMCell, MultiRNNCell or LSTMModel, got dict"
    ):
        fastlstm.save(tmp_path / "x.npz", {"kernel": np.zeros(3)})

    @numba.njit
    def leaky(v):
        return v if v > 0 else 0.1 * v

    cell = fastlstm.BasicLSTMCell(3, activation=leaky)
    cell.build(2)
    with pytest.raises(ValueError, match=r"activation is a custom function.*by name only \(one of \['elu'"):
        fastlstm.save(tmp_path / "x.npz", cell)
    assert os.listdir(tmp_path) == []


# Corrupted files: start from a valid archive's contents and break one thing.
def contents(obj):
    """The arrays of a valid file holding ``obj``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.npz")
        fastlstm.save(path, obj)
        with np.load(path) as data:
            return {key: data[key] for key in data.files}


def with_config(obj, edit):
    data = contents(obj)
    config = json.loads(str(data["fastlstm_config"]))
    edit(config)
    data["fastlstm_config"] = np.array(json.dumps(config))
    return data


def _set(key, value):
    def edit(config):
        config[key] = value

    return edit


def _drop(key):
    def edit(config):
        del config[key]

    return edit


LSTM = lstm_cell(4, 3, use_peepholes=True)
MULTI = randomise(fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(3), fastlstm.BasicLSTMCell(2)]), 2)
MODEL = randomise(fastlstm.LSTMModel([(fastlstm.BasicLSTMCell(2), fastlstm.BasicLSTMCell(2))]), 2)


def _bad_archives():
    def edited(obj, **changes):
        data = contents(obj)
        for key, value in changes.items():
            if value is None:
                del data[key]
            else:
                data[key] = value
        return data

    def two_layer_mismatch(config):
        config["cells"][1]["num_units"] = 3

    def pair_of_three(config):
        config["layers"][0].append(config["layers"][0][0])

    return [
        (edited(LSTM, kernel=None), r"missing array 'kernel' \(config is a LSTMCell with \['kernel', 'bias'"),
        (edited(LSTM, extra=np.zeros(2)), r"arrays not used by the config: \['extra'\]"),
        (
            edited(LSTM, bias=np.zeros(15, np.float32)),
            r"config: bad weights: bias must have shape \(16,\), got \(15,\)",
        ),
        (
            edited(LSTM, w_o_diag=np.zeros(4)),
            r"array 'w_o_diag' has dtype float64, but config has dtype float32",
        ),
        (edited(LSTM, w_o_diag=np.zeros(4, np.int32)), r"array 'w_o_diag' has dtype int32"),
        (
            edited(LSTM, fastlstm_format_version=np.array(2)),
            (
                r"format version 2 is not supported; this fastlstm reads version 1 "
                r"\(the file is newer: upgrade fastlstm\)"
            ),
        ),
        (
            edited(LSTM, fastlstm_format_version=np.array("1")),
            r"'fastlstm_format_version' must be a 0-d integer array",
        ),
        (edited(LSTM, fastlstm_format_version=None), r"no 'fastlstm_format_version' array"),
        (edited(LSTM, fastlstm_config=None), r"no 'fastlstm_config' array"),
        (edited(LSTM, fastlstm_config=np.array(["{}"])), r"'fastlstm_config' must be a 0-d unicode array"),
        (edited(LSTM, fastlstm_config=np.array("{not json")), r"'fastlstm_config' is not valid JSON"),
        (edited(LSTM, fastlstm_config=np.array("[1, 2]")), r"config must be a JSON object, got list"),
        (with_config(LSTM, _set("class", "GRUCell")), r"config: unknown class 'GRUCell'; expected one of"),
        (
            with_config(LSTM, _drop("num_units")),
            r"config \(LSTMCell\): missing keys \['num_units'\], unexpected keys \[\]",
        ),
        (with_config(LSTM, _set("units", 4)), r"missing keys \[\], unexpected keys \['units'\]"),
        (
            with_config(LSTM, _set("num_units", "4")),
            r"config: invalid LSTMCell: num_units must be a positive integer, got '4'",
        ),
        (
            with_config(LSTM, _set("num_units", 5)),
            r"config: bad weights: kernel must have shape \[input_size \+ 5, 20\]",
        ),
        (
            with_config(LSTM, _set("use_peepholes", "yes")),
            r"config.use_peepholes must be true or false, got 'yes'",
        ),
        (with_config(LSTM, _set("dtype", "int8")), r"invalid LSTMCell: dtype int8 is not supported"),
        (with_config(LSTM, _set("activation", "gelu")), r"invalid LSTMCell: unknown activation 'gelu'"),
        (
            with_config(LSTM, _set("cell_clip", -1)),
            r"invalid LSTMCell: cell_clip must be a positive finite number",
        ),
        (
            with_config(LSTM, _set("forget_bias", None)),
            r"invalid LSTMCell: forget_bias must be a real number",
        ),
        (with_config(MULTI, two_layer_mismatch), r"config.cells\[1\]: bad weights: kernel must have shape"),
        (with_config(MULTI, _set("cells", {})), r"config.cells must be a JSON list, got dict"),
        (
            with_config(MODEL, pair_of_three),
            r"config.layers\[0\] must be a cell or a \[cell_fw, cell_bw\] pair, got 3",
        ),
    ]


BAD = _bad_archives()


@pytest.mark.parametrize("index", range(len(BAD)))
def test_load_refuses_invalid_archives(tmp_path, index):
    data, message = BAD[index]
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(ValueError, match=message):
        fastlstm.load(path)


def test_load_refuses_an_incompatible_stack(tmp_path):
    data = contents(MULTI)
    config = json.loads(str(data["fastlstm_config"]))
    config["cells"][1]["num_units"] = 3
    data["cells.1.kernel"] = np.zeros((7, 12), np.float32)
    data["cells.1.bias"] = np.zeros(12, np.float32)
    data["fastlstm_config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(
        ValueError,
        match=r"invalid MultiRNNCell: cells\[1\] takes inputs of depth 4 but cells\[0\] outputs depth 3",
    ):
        fastlstm.load(tmp_path / "bad.npz")


def _write_npy(path):
    with open(path, "wb") as stream:
        np.save(stream, np.zeros(3))


def _write_pickled(path):
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_bytes(b"\x00 definitely not numpy"), "not a readable .npz archive"),
        (lambda p: p.write_bytes(b""), "not a readable .npz archive"),
        (_write_npy, "it holds a single array, not an .npz archive"),
        (_write_pickled, "cannot read its arrays"),
    ],
)
def test_load_refuses_files_that_are_not_fastlstm(tmp_path, write, message):
    path = tmp_path / "file.npz"
    write(path)
    with pytest.raises(ValueError, match=message):
        fastlstm.load(path)


def test_load_refuses_a_truncated_file(tmp_path):
    path = tmp_path / "cell.npz"
    fastlstm.save(path, LSTM)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cell.npz is not a"):
        fastlstm.load(path)


def test_load_of_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastlstm.load(tmp_path / "absent.npz")
