"""fastlstm.Backward: a layer of LSTMModel that runs its cell backwards only (ONNX direction="reverse")."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastlstm
from cell_helpers import (
    assert_state_close,
    basic_cell,
    leaves,
    lstm_cell,
    naive_run,
    randomise,
    tolerance,
)
from fastlstm.scoring.compute import final_sizes, run_batch, with_dtype


def backward_model(dtype=np.float32, seed=0):
    """A built model: a backward projecting cell, a forward cell, a backward stack on top."""
    return randomise(
        fastlstm.LSTMModel(
            [
                fastlstm.Backward(fastlstm.LSTMCell(5, use_peepholes=True, num_proj=3, dtype=dtype)),
                fastlstm.BasicLSTMCell(4, dtype=dtype),
                fastlstm.Backward(
                    fastlstm.MultiRNNCell(
                        [
                            fastlstm.BasicLSTMCell(3, dtype=dtype),
                            fastlstm.LSTMCell(2, cell_clip=0.5, dtype=dtype),
                        ]
                    )
                ),
            ]
        ),
        4,
        seed,
    )


def naive_backward_model(m, x, lengths, initial=None):
    """The numpy reference: each Backward layer is its cell run with ``reverse=True``."""
    initial = initial or (None,) * len(m.layers)
    states = []
    for layer, state in zip(m.layers, initial):
        if isinstance(layer, fastlstm.Backward):
            x, s = naive_run(layer.cell, x, lengths, state, reverse=True)
        else:
            x, s = naive_run(layer, x, lengths, state)
        states.append(s)
    return x, tuple(states)


# -- numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_model_against_reference(rng, dtype):
    m = backward_model(dtype)
    x = rng.uniform(-1, 1, (5, 6, 4))
    lengths = np.array([6, 0, 2, 1, 5])
    outputs, states = m(x, sequence_length=lengths)
    ref, ref_states = naive_backward_model(m, x, lengths)
    assert outputs.dtype == dtype and outputs.shape == (5, 6, 2)
    np.testing.assert_allclose(outputs, ref, atol=tolerance(dtype), rtol=0)
    assert len(states) == 3 and states[0].h.shape == (5, 3) and len(states[2]) == 2
    assert_state_close(states, ref_states, tolerance(dtype))
    assert not outputs[1].any() and not outputs[2, 2:].any() and not outputs[4, 5:].any()


def test_backward_initial_state_against_reference(rng):
    m = backward_model(np.float64)
    x = rng.uniform(-1, 1, (3, 4, 4))
    state0 = fastlstm.LSTMStateTuple(rng.uniform(-1, 1, (3, 5)), rng.uniform(-1, 1, (3, 3)))
    initial = [state0, None, None]
    outputs, states = m(x, [4, 1, 0], initial_state=initial)
    ref, ref_states = naive_backward_model(m, x, [4, 1, 0], initial)
    np.testing.assert_allclose(outputs, ref, atol=1e-12, rtol=0)
    assert_state_close(states, ref_states, 1e-12)
    np.testing.assert_array_equal(states[0].c[2], state0.c[2])  # length 0: the initial state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("stacked", [False, True])
def test_backward_is_bitwise_output_bw(rng, dtype, time_major, stacked):
    """The same numbers as bidirectional_dynamic_rnn's backward half, with and without an initial state."""
    if stacked:
        cell = randomise(
            fastlstm.MultiRNNCell(
                [fastlstm.BasicLSTMCell(3, dtype=dtype), fastlstm.LSTMCell(2, dtype=dtype)]
            ),
            3,
        )
        initial = cell.zero_state(5, dtype)
        initial = (initial[0], fastlstm.LSTMStateTuple(*(rng.uniform(-1, 1, (2, 5, 2)).astype(dtype))))
    else:
        cell = lstm_cell(4, 3, dtype=dtype, use_peepholes=True, num_proj=2, cell_clip=0.4)
        initial = fastlstm.LSTMStateTuple(*(rng.uniform(-1, 1, (5, k)).astype(dtype) for k in (4, 2)))
    x = rng.uniform(-1, 1, (5, 7, 3)).astype(dtype)
    if time_major:
        x = x.transpose(1, 0, 2)
    lengths = np.array([7, 0, 3, 1, 6])
    model = fastlstm.LSTMModel([fastlstm.Backward(cell)])
    fw = basic_cell(2, 3, dtype=dtype)
    for state in (None, initial):
        outputs, (final,) = model(x, lengths, None if state is None else [state], time_major=time_major)
        (_, output_bw), (_, state_bw) = fastlstm.bidirectional_dynamic_rnn(
            fw, cell, x, lengths, initial_state_bw=state, time_major=time_major
        )
        assert outputs.dtype == dtype
        np.testing.assert_array_equal(outputs, output_bw)
        for got, want in zip(leaves_of_state(final), leaves_of_state(state_bw), strict=True):
            np.testing.assert_array_equal(got, want)


def leaves_of_state(state):
    if isinstance(state, np.ndarray):
        return [state]
    return [leaf for part in state for leaf in leaves_of_state(part)]


def test_backward_above_a_layer_takes_its_outputs(rng):
    first, cell = basic_cell(4, 3), lstm_cell(3, 4, seed=1)
    x = rng.uniform(-1, 1, (4, 5, 3)).astype(np.float32)
    lengths = np.array([5, 2, 0, 4])
    outputs, (_, state) = fastlstm.LSTMModel([first, fastlstm.Backward(cell)])(x, lengths)
    below, _ = fastlstm.dynamic_rnn(first, x, lengths)
    (_, output_bw), (_, state_bw) = fastlstm.bidirectional_dynamic_rnn(basic_cell(2, 4), cell, below, lengths)
    np.testing.assert_array_equal(outputs, output_bw)
    np.testing.assert_array_equal(state.h, state_bw.h)


# -- the layer type -------------------------------------------------------------------------------
def test_backward_attributes_repr_and_lazy_build():
    cell = fastlstm.BasicLSTMCell(3)
    layer = fastlstm.Backward(cell)
    assert layer.cell is cell and repr(layer) == f"Backward({cell!r})"
    with pytest.raises(AttributeError):
        layer.cell = fastlstm.BasicLSTMCell(3)
    model = fastlstm.LSTMModel([layer, fastlstm.BasicLSTMCell(2)])
    assert model.input_size is None and model.output_size == 2 and not model.built
    assert "\n    Backward(BasicLSTMCell(num_units=3" in repr(model)
    model(np.zeros((1, 2, 6), np.float32))
    assert cell.input_size == 6 and model.input_size == 6 and model.built
    assert fastlstm.LSTMModel([fastlstm.Backward(basic_cell(2, 3))]).input_size == 3


def test_backward_builds_with_a_seed_like_other_layers():
    def make():
        return fastlstm.LSTMModel([fastlstm.Backward(fastlstm.LSTMCell(3)), fastlstm.BasicLSTMCell(2)])

    first, second = make(), make()
    first.build(4, seed=7)
    second.build(4, seed=7)
    for a, b in zip(leaves(first), leaves(second), strict=True):
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: fastlstm.Backward("lstm"),
            TypeError,
            r"the cell of a Backward layer must be a fastlstm cell .* got str",
        ),
        (
            lambda: fastlstm.Backward(fastlstm.Backward(fastlstm.BasicLSTMCell(2))),
            TypeError,
            "got Backward",
        ),
        (
            lambda: fastlstm.Backward(fastlstm.LSTMModel([fastlstm.BasicLSTMCell(2)])),
            TypeError,
            "got LSTMModel",
        ),
        (
            lambda: fastlstm.LSTMModel(
                [(fastlstm.BasicLSTMCell(2), fastlstm.Backward(fastlstm.BasicLSTMCell(2)))]
            ),
            TypeError,
            r"layers\[0\] cell_bw must be a fastlstm cell .* got Backward",
        ),
        (
            lambda: fastlstm.LSTMModel([basic_cell(5, 3), fastlstm.Backward(basic_cell(2, 6))]),
            ValueError,
            r"layers\[1\] takes inputs of depth 6 but layers\[0\] outputs depth 5",
        ),
        (
            lambda: fastlstm.LSTMModel(
                [fastlstm.BasicLSTMCell(2), fastlstm.Backward(fastlstm.BasicLSTMCell(2, dtype="float64"))]
            ),
            ValueError,
            r"layers\[1\] has dtype float64 but layers\[0\] has dtype float32",
        ),
        (
            lambda: fastlstm.LSTMModel(["lstm"]),
            TypeError,
            r"got str \(a layer that runs a cell backwards only is fastlstm.Backward\(cell\)\)",
        ),
        (
            lambda: fastlstm.dynamic_rnn(fastlstm.Backward(fastlstm.BasicLSTMCell(2)), np.zeros((1, 2, 3))),
            TypeError,
            r"cell must be a fastlstm cell .* got Backward",
        ),
    ],
)
def test_backward_construction_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_backward_refuses_a_cell_used_twice():
    cell = fastlstm.BasicLSTMCell(2)
    with pytest.raises(ValueError, match="the same cell object is used twice"):
        fastlstm.LSTMModel([cell, fastlstm.Backward(cell)])
    with pytest.raises(ValueError, match="the same cell object is used twice"):
        fastlstm.LSTMModel(
            [fastlstm.Backward(fastlstm.MultiRNNCell([cell])), (fastlstm.BasicLSTMCell(2), cell)]
        )


@pytest.mark.parametrize(
    "inputs, initial, message",
    [
        (np.zeros((2, 3, 5)), None, r"layers\[0\]: inputs have depth 5 but the cell was built for depth 4"),
        (
            np.zeros((2, 3, 4)),
            [(np.zeros((2, 5)), np.zeros((2, 2))), None, None],
            r"layers\[0\]: initial state h must have shape \(2, 3\), got \(2, 2\)",
        ),
        (
            np.zeros((2, 3, 4)),
            [None, None, (None, (np.zeros((2, 1)), np.zeros((2, 2))))],
            r"layers\[2\]: cells\[1\]: initial state c must have shape \(2, 2\), got \(2, 1\)",
        ),
    ],
)
def test_backward_call_errors(inputs, initial, message):
    with pytest.raises(ValueError, match=message):
        backward_model()(inputs, initial_state=initial)


# -- save / load ----------------------------------------------------------------------------------
def test_backward_round_trip_is_bit_exact(tmp_path, rng):
    original = backward_model(np.float64)
    path = tmp_path / "backward.npz"
    fastlstm.save(path, original)
    with np.load(path) as archive:
        config = json.loads(str(archive["fastlstm_config"]))
        names = set(archive.files)
    assert config["layers"][0]["class"] == "Backward" and config["layers"][0]["cell"]["class"] == "LSTMCell"
    assert {"layers.0.bw.kernel", "layers.1.kernel", "layers.2.bw.cells.1.bias"} <= names
    loaded = fastlstm.load(path)
    assert repr(loaded) == repr(original) and isinstance(loaded.layers[2], fastlstm.Backward)
    for mine, theirs in zip(leaves(loaded), leaves(original), strict=True):
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    x = rng.uniform(-1, 1, (2, 3, 4))
    np.testing.assert_array_equal(loaded(x, [3, 1])[0], original(x, [3, 1])[0])


def _saved_with(tmp_path, edit):
    path = tmp_path / "edited.npz"
    fastlstm.save(path, fastlstm.LSTMModel([fastlstm.Backward(basic_cell(2, 3))]))
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(str(arrays["fastlstm_config"]))
    edit(config, arrays)
    arrays["fastlstm_config"] = np.array(json.dumps(config))
    np.savez(path, **arrays)
    return path


def _nest_a_model(config, arrays):
    config["layers"][0]["cell"] = {"class": "LSTMModel", "layers": [config["layers"][0]["cell"]]}
    for name in ("kernel", "bias"):
        arrays[f"layers.0.bw.layers.0.{name}"] = arrays.pop(f"layers.0.bw.{name}")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c, _: c["layers"][0].pop("cell"),
            r"config.layers\[0\] \(Backward\): missing keys \['cell'\]",
        ),
        (lambda c, _: c["layers"][0].update(reverse=True), r"unexpected keys \['reverse'\]"),
        (lambda c, _: c["layers"][0].update(cell=[1]), r"config.layers\[0\].cell must be a JSON object"),
        (_nest_a_model, r"config.layers\[0\]: invalid Backward: .* got LSTMModel"),
        (lambda c, _: c.update(c["layers"][0]), r"config: unknown class 'Backward'; expected one of \["),
    ],
)
def test_load_refuses_bad_backward_configs(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.load(_saved_with(tmp_path, edit))


def test_a_backward_alone_is_not_saveable(tmp_path):
    with pytest.raises(
        TypeError, match="save expects a BasicLSTMCell, LSTMCell, MultiRNNCell or LSTMModel, got Backward"
    ):
        fastlstm.save(tmp_path / "x.npz", fastlstm.Backward(basic_cell(2, 3)))


# -- the scorer and Dask run it like any layer -------------------------------------------------------
def test_scorer_reports_a_backward_top_layer(rng):
    m = backward_model()
    x = rng.uniform(-1, 1, (5, 6, 4)).astype(np.float32)
    lengths = np.array([6, 0, 2, 1, 5])
    result = run_batch(m, x, lengths)
    outputs, states = m(x, lengths)
    np.testing.assert_array_equal(result.outputs, outputs)
    np.testing.assert_array_equal(result.final_c, states[2][1].c)
    np.testing.assert_array_equal(result.final_h, states[2][1].h)
    assert final_sizes(m) == (2, 2)
    wide = with_dtype(m, np.dtype(np.float64))
    assert wide.dtype == np.float64 and [type(layer) for layer in wide.layers] == [
        type(layer) for layer in m.layers
    ]
    np.testing.assert_allclose(run_batch(wide, x, lengths).outputs, outputs, atol=2e-6, rtol=0)


def test_dask_runs_a_backward_layer(rng):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    import fastlstm.dask

    m = backward_model()
    x = rng.uniform(-1, 1, (6, 5, 4)).astype(np.float32)
    lengths = np.array([5, 0, 2, 1, 5, 3])
    outputs, states = fastlstm.dask.run_model(m, da.from_array(x, chunks=(2, 5, 4)), lengths)
    want, want_states = m(x, lengths)
    np.testing.assert_array_equal(outputs.compute(scheduler="sync"), want)
    np.testing.assert_array_equal(states[0].h.compute(scheduler="sync"), want_states[0].h)
