"""LSTMCell: peepholes, cell clipping, projection; against TF and the naive reference."""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
import naive
from cell_helpers import lstm_cell, naive_options, naive_run, tolerance
from conftest import GOLDEN
from fastlstm.cell import RNNCell, glorot_uniform

LSTM_CASES = sorted(p.stem for p in GOLDEN.glob("lstm_*.npz"))

VARIANTS = {
    "plain": {},
    "peepholes": {"use_peepholes": True},
    "clip": {"use_peepholes": True, "cell_clip": 0.3},
    "proj": {"num_proj": 3},
    "proj_clip": {"use_peepholes": True, "cell_clip": 0.8, "num_proj": 3, "proj_clip": 0.25},
}


def load(name):
    with np.load(GOLDEN / f"{name}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def golden_cell(g, dtype=np.float32):
    """The LSTMCell a golden file describes, with its weights."""

    def optional(key):
        value = float(g[key])
        return None if np.isnan(value) else value

    cell = fastlstm.LSTMCell(
        int(g["num_units"]),
        use_peepholes=bool(g["use_peepholes"]),
        cell_clip=optional("cell_clip"),
        num_proj=int(g["num_proj"]) or None,
        proj_clip=optional("proj_clip"),
        forget_bias=float(g["forget_bias"]),
        dtype=dtype,
    )
    cell.set_weights([g[name] for name in cell.weight_names])
    return cell


def test_golden_cases_present():
    assert LSTM_CASES == ["lstm_clip", "lstm_peepholes", "lstm_plain", "lstm_proj", "lstm_proj_clip"]


@pytest.mark.parametrize("case", LSTM_CASES)
def test_naive_reference_matches_tensorflow(case):
    g = load(case)
    outputs, (c, h) = naive_run(golden_cell(g, np.float64), g["inputs"], g["sequence_length"])
    for got, key in ((outputs, "outputs"), (c, "final_c"), (h, "final_h")):
        np.testing.assert_allclose(got, g[key], atol=2e-6, rtol=0)


@pytest.mark.parametrize("case", LSTM_CASES)
def test_lstm_cell_matches_tensorflow(case):
    g = load(case)
    cell = golden_cell(g)
    outputs, state = fastlstm.dynamic_rnn(cell, g["inputs"], sequence_length=g["sequence_length"])
    assert outputs.dtype == np.float32 and outputs.shape == g["outputs"].shape
    np.testing.assert_allclose(outputs, g["outputs"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.c, g["final_c"], atol=2e-6, rtol=0)
    np.testing.assert_allclose(state.h, g["final_h"], atol=2e-6, rtol=0)
    if "cell_clip" in case:
        assert np.abs(state.c).max() <= float(g["cell_clip"])


@pytest.mark.parametrize("case", LSTM_CASES)
def test_golden_weights_in_float64_match_reference(case):
    g = load(case)
    cell = golden_cell(g, np.float64)
    outputs, state = fastlstm.dynamic_rnn(cell, g["inputs"], sequence_length=g["sequence_length"])
    ref, (ref_c, ref_h) = naive_run(cell, g["inputs"], g["sequence_length"])
    assert outputs.dtype == np.float64
    np.testing.assert_allclose(outputs, ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=1e-12, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=1e-12, rtol=0)


@pytest.mark.parametrize("case", LSTM_CASES)
def test_weight_order_is_tensorflow_variable_order(case):
    g = load(case)
    tf_names = [str(n).removeprefix("rnn/lstm_cell/").replace("/", "_") for n in g["variable_names"]]
    assert list(golden_cell(g).weight_names) == tf_names


def test_defaults_match_tensorflow():
    cell = fastlstm.LSTMCell(7)
    assert not cell.use_peepholes and cell.cell_clip is None and cell.initializer is None
    assert cell.num_proj is None and cell.proj_clip is None and cell.forget_bias == 1.0
    assert cell.state_is_tuple and cell.activation is None and cell.name is None and cell.dtype == np.float32
    assert cell.state_size == fastlstm.LSTMStateTuple(7, 7) and cell.output_size == 7
    assert cell.weight_names == ("kernel", "bias")
    assert not cell.built and cell.get_weights() == [] and cell.kernel is None and cell.w_f_diag is None


def test_basic_and_lstm_cell_share_one_base_but_are_distinct_types():
    basic, full = fastlstm.BasicLSTMCell(3), fastlstm.LSTMCell(3)
    assert type(basic).__mro__[1] is type(full).__mro__[1]
    assert isinstance(basic, RNNCell) and isinstance(full, RNNCell)
    assert not isinstance(basic, fastlstm.LSTMCell) and not isinstance(full, fastlstm.BasicLSTMCell)


def test_sizes_with_projection():
    cell = fastlstm.LSTMCell(5, num_proj=3)
    assert cell.state_size == fastlstm.LSTMStateTuple(5, 3) and cell.output_size == 3
    state = cell.zero_state(2, np.float64)
    assert state.c.shape == (2, 5) and state.h.shape == (2, 3) and state.h.dtype == np.float64
    flat = fastlstm.LSTMCell(5, num_proj=3, state_is_tuple=False)
    assert flat.state_size == 8 and flat.zero_state(2).shape == (2, 8)


def test_build_draws_every_variable_glorot_uniform_and_zero_bias():
    cell = fastlstm.LSTMCell(40, use_peepholes=True, num_proj=30, dtype=np.float64)
    cell.build(20, seed=0)
    assert cell.input_size == 20
    shapes = {n: w.shape for n, w in zip(cell.weight_names, cell.get_weights())}
    assert shapes == {
        "kernel": (50, 160),
        "bias": (160,),
        "w_f_diag": (40,),
        "w_i_diag": (40,),
        "w_o_diag": (40,),
        "projection_kernel": (40, 30),
    }
    assert not cell.bias.any()
    for weight, limit in (
        (cell.kernel, np.sqrt(6 / 210)),
        (cell.w_f_diag, np.sqrt(3 / 40)),
        (cell.projection_kernel, np.sqrt(6 / 70)),
    ):
        assert limit * 0.8 < np.abs(weight).max() <= limit
    again = fastlstm.LSTMCell(40, use_peepholes=True, num_proj=30, dtype=np.float64)
    again.build(20, seed=0)
    for a, b in zip(cell.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(cell.w_f_diag, cell.w_i_diag)


def test_glorot_uniform_is_tf_formula():
    rng = np.random.default_rng(0)
    values = glorot_uniform((300, 200), np.float32, rng)
    assert values.dtype == np.float32 and values.shape == (300, 200)
    assert np.sqrt(6 / 500) * 0.99 < np.abs(values).max() <= np.sqrt(6 / 500)


def test_custom_initializer_is_called_per_variable_in_tf_order():
    calls = []

    def initializer(shape, dtype, rng):
        calls.append((shape, dtype, type(rng)))
        return np.full(shape, len(calls))

    cell = fastlstm.LSTMCell(4, use_peepholes=True, num_proj=2, initializer=initializer, dtype=np.float64)
    cell.build(3, seed=1)
    assert calls == [
        ((5, 16), np.float64, np.random.Generator),
        ((4,), np.float64, np.random.Generator),
        ((4,), np.float64, np.random.Generator),
        ((4,), np.float64, np.random.Generator),
        ((4, 2), np.float64, np.random.Generator),
    ]
    assert cell.initializer is initializer
    values = dict(zip(cell.weight_names, cell.get_weights()))
    assert (values["kernel"] == 1).all() and (values["w_i_diag"] == 3).all()
    assert (values["projection_kernel"] == 5).all() and not values["bias"].any()
    assert values["kernel"].dtype == np.float64


def test_custom_initializer_gets_the_seeded_generator():
    def initializer(shape, dtype, rng):
        return rng.normal(size=shape)

    first, second = (fastlstm.LSTMCell(3, initializer=initializer) for _ in range(2))
    first.build(2, seed=5)
    second.build(2, seed=5)
    np.testing.assert_array_equal(first.kernel, second.kernel)


def test_initializer_result_is_checked():
    cell = fastlstm.LSTMCell(3, initializer=lambda shape, dtype, rng: np.zeros((2, 2)))
    with pytest.raises(
        ValueError, match=r"initializer result for kernel must have shape \(5, 12\), got \(2, 2\)"
    ):
        cell.build(2)
    assert not cell.built


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_reference_with_initial_state(rng, variant, dtype):
    cell = lstm_cell(5, 4, dtype=dtype, **VARIANTS[variant])
    x = rng.uniform(-1, 1, (5, 7, 4))
    lengths = np.array([7, 0, 3, 1, 7])
    c0 = rng.uniform(-1, 1, (5, 5)).astype(dtype)
    h0 = rng.uniform(-1, 1, (5, cell.output_size)).astype(dtype)
    outputs, state = fastlstm.dynamic_rnn(cell, x, lengths, initial_state=fastlstm.LSTMStateTuple(c0, h0))
    ref, (ref_c, ref_h) = naive_run(cell, x, lengths, (c0, h0))
    tol = tolerance(dtype)
    assert outputs.dtype == dtype and outputs.shape == (5, 7, cell.output_size)
    np.testing.assert_allclose(outputs, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=tol, rtol=0)
    np.testing.assert_allclose(state.h, ref_h, atol=tol, rtol=0)
    np.testing.assert_array_equal(state.c[1], c0[1])
    assert not outputs[1].any() and not outputs[2, 3:].any()


def test_clips_are_active_and_respected(rng):
    cell = lstm_cell(5, 4, dtype=np.float64, **VARIANTS["proj_clip"])
    x = rng.uniform(-1, 1, (6, 9, 4)) * 3
    outputs, state = fastlstm.dynamic_rnn(cell, x)
    assert np.abs(outputs).max() == 0.25 and np.abs(state.c).max() == 0.8
    unclipped = fastlstm.LSTMCell(5, use_peepholes=True, num_proj=3, dtype=np.float64)
    unclipped.set_weights(cell.get_weights())
    free_outputs, _ = fastlstm.dynamic_rnn(unclipped, x)
    assert np.abs(free_outputs).max() > 0.25


def test_time_major(rng):
    cell = lstm_cell(4, 3, **VARIANTS["proj_clip"])
    x = rng.uniform(-1, 1, (3, 6, 3)).astype(np.float32)
    lengths = [6, 2, 4]
    batch_major, state = fastlstm.dynamic_rnn(cell, x, lengths)
    time_major, state_tm = fastlstm.dynamic_rnn(cell, x.transpose(1, 0, 2), lengths, time_major=True)
    np.testing.assert_array_equal(time_major, batch_major.transpose(1, 0, 2))
    np.testing.assert_array_equal(state_tm.h, state.h)


@pytest.mark.parametrize("activation", ["relu", "softsign", "linear"])
def test_other_activations_with_peepholes_and_projection(rng, activation):
    cell = lstm_cell(4, 3, dtype=np.float64, activation=activation, **VARIANTS["proj_clip"])
    x = rng.uniform(-1, 1, (3, 5, 3))
    outputs, state = fastlstm.dynamic_rnn(cell, x, [5, 3, 0])
    ref, (ref_c, _) = naive_run(cell, x, [5, 3, 0])
    np.testing.assert_allclose(outputs, ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(state.c, ref_c, atol=1e-12, rtol=0)


def test_concatenated_state_with_projection(rng):
    tuple_cell = lstm_cell(4, 3, dtype=np.float64, num_proj=2, use_peepholes=True)
    flat_cell = fastlstm.LSTMCell(4, use_peepholes=True, num_proj=2, state_is_tuple=False, dtype=np.float64)
    flat_cell.set_weights(tuple_cell.get_weights())
    x = rng.uniform(-1, 1, (3, 5, 3))
    c0, h0 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 2))
    out_t, state_t = fastlstm.dynamic_rnn(tuple_cell, x, initial_state=(c0, h0))
    out_f, state_f = fastlstm.dynamic_rnn(flat_cell, x, initial_state=np.concatenate([c0, h0], axis=1))
    np.testing.assert_array_equal(out_f, out_t)
    np.testing.assert_array_equal(state_f, np.concatenate([state_t.c, state_t.h], axis=1))


def test_single_step_call_matches_reference(rng):
    cell = lstm_cell(4, 3, dtype=np.float64, **VARIANTS["proj_clip"])
    x = rng.uniform(-1, 1, (3, 3))
    c0, h0 = rng.uniform(-1, 1, (3, 4)), rng.uniform(-0.2, 0.2, (3, 3))
    output, state = cell(x, fastlstm.LSTMStateTuple(c0, h0))
    assert output.shape == (3, 3) and state.c.shape == (3, 4)
    for b in range(3):
        c, m = naive.lstm_step(x[b], c0[b], h0[b], cell.kernel, cell.bias, **naive_options(cell))
        np.testing.assert_allclose(output[b], m, atol=1e-14, rtol=0)
        np.testing.assert_allclose(state.c[b], c, atol=1e-14, rtol=0)


def test_set_weights_order_copies_and_accessors(rng):
    cell = fastlstm.LSTMCell(3, use_peepholes=True, num_proj=2)
    weights = [rng.uniform(-1, 1, s) for s in [(6, 12), (12,), (3,), (3,), (3,), (3, 2)]]
    cell.set_weights(weights)
    assert cell.input_size == 4
    got = cell.get_weights()
    for mine, theirs in zip(got, weights):
        np.testing.assert_array_equal(mine, theirs.astype(np.float32))
        assert mine.dtype == np.float32
    np.testing.assert_array_equal(cell.w_f_diag, got[2])
    np.testing.assert_array_equal(cell.w_i_diag, got[3])
    np.testing.assert_array_equal(cell.w_o_diag, got[4])
    np.testing.assert_array_equal(cell.projection_kernel, got[5])
    weights[0][:] = 0
    got[1][:] = 0
    assert cell.kernel.any() and cell.bias.any()


def test_new_weights_are_used_after_a_run(rng):
    cell = lstm_cell(3, 2, dtype=np.float64, use_peepholes=True)
    x = rng.uniform(-1, 1, (2, 4, 2))
    first, _ = fastlstm.dynamic_rnn(cell, x)
    weights = cell.get_weights()
    weights[2] = weights[2] * 3
    cell.set_weights(weights)
    second, _ = fastlstm.dynamic_rnn(cell, x)
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(second, naive_run(cell, x)[0], atol=1e-12, rtol=0)


def test_get_config_recreates_the_cell_and_repr_shows_it():
    cell = fastlstm.LSTMCell(
        4,
        use_peepholes=True,
        cell_clip=2.0,
        num_proj=3,
        proj_clip=1.5,
        forget_bias=0.5,
        activation="relu",
        name="enc",
        dtype="float64",
    )
    config = cell.get_config()
    assert config == {
        "num_units": 4,
        "use_peepholes": True,
        "cell_clip": 2.0,
        "num_proj": 3,
        "proj_clip": 1.5,
        "forget_bias": 0.5,
        "state_is_tuple": True,
        "activation": "relu",
        "name": "enc",
        "dtype": "float64",
    }
    assert fastlstm.LSTMCell(**config).get_config() == config
    text = repr(cell)
    assert text.startswith("LSTMCell(num_units=4, use_peepholes=True, cell_clip=2.0, num_proj=3")
    assert "activation='relu'" in text and "dtype='float64'" in text
    basic = fastlstm.BasicLSTMCell(3, name="x")
    assert fastlstm.BasicLSTMCell(**basic.get_config()).get_config() == basic.get_config()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_proj": 0}, ValueError, "num_proj must be a positive integer, got 0"),
        ({"num_proj": -2}, ValueError, "num_proj must be a positive integer, got -2"),
        ({"num_proj": 2.5}, TypeError, "num_proj must be a positive integer, got 2.5"),
        ({"num_proj": True}, TypeError, "num_proj must be a positive integer, got True"),
        ({"cell_clip": 0}, ValueError, r"cell_clip must be a positive finite number or None, got 0"),
        ({"cell_clip": -1.5}, ValueError, r"cell_clip must be a positive finite number or None, got -1.5"),
        ({"cell_clip": float("nan")}, ValueError, r"cell_clip must be .* got nan"),
        ({"cell_clip": float("inf")}, ValueError, r"cell_clip must be .* got inf"),
        ({"cell_clip": "big"}, TypeError, r"cell_clip must be a positive number or None, got 'big'"),
        ({"cell_clip": True}, TypeError, r"cell_clip must be a positive number or None, got True"),
        (
            {"num_proj": 2, "proj_clip": 0.0},
            ValueError,
            r"proj_clip must be a positive finite number or None, got 0.0",
        ),
        ({"num_proj": 2, "proj_clip": -np.inf}, ValueError, r"proj_clip must be .* got -inf"),
        ({"proj_clip": 1.0}, ValueError, r"proj_clip=1.0 needs num_proj"),
        (
            {"initializer": "glorot"},
            TypeError,
            r"initializer must be None or a callable .* got str: 'glorot'",
        ),
        ({"name": 5}, TypeError, r"name must be a string or None, got int: 5"),
        ({"forget_bias": float("inf")}, ValueError, "forget_bias must be finite, got inf"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastlstm.LSTMCell(4, **kwargs)


def test_tf_positional_shard_arguments_are_refused():
    with pytest.raises(TypeError, match="positional argument"):
        fastlstm.LSTMCell(4, False, None, None, None, None, 1)


@pytest.mark.parametrize(
    "weights, error, message",
    [
        (
            [np.zeros((7, 16))] * 2,
            ValueError,
            (
                r"LSTMCell.set_weights expects "
                r"\[kernel, bias, w_f_diag, w_i_diag, w_o_diag, projection_kernel\], got 2 arrays"
            ),
        ),
        (np.zeros((6, 3)), TypeError, r"LSTMCell.set_weights expects a list \[kernel, .*\], got ndarray"),
        (
            [np.zeros((7, 15)), np.zeros(16), *[np.zeros(4)] * 3, np.zeros((4, 2))],
            ValueError,
            r"kernel must have shape \[input_size \+ 2, 16\], got \(7, 15\)",
        ),
        (
            [np.zeros((1, 16)), np.zeros(16), *[np.zeros(4)] * 3, np.zeros((4, 2))],
            ValueError,
            r"kernel must have shape \[input_size \+ 2, 16\], got \(1, 16\)",
        ),
        (
            [np.zeros((7, 16)), np.zeros(16), np.zeros(3), np.zeros(4), np.zeros(4), np.zeros((4, 2))],
            ValueError,
            r"w_f_diag must have shape \(4,\), got \(3,\)",
        ),
        (
            [np.zeros((7, 16)), np.zeros(16), np.zeros(4), np.zeros(4), np.zeros((4, 1)), np.zeros((4, 2))],
            ValueError,
            r"w_o_diag must have shape \(4,\), got \(4, 1\)",
        ),
        (
            [np.zeros((7, 16)), np.zeros(16), *[np.zeros(4)] * 3, np.zeros((2, 4))],
            ValueError,
            r"projection_kernel must have shape \(4, 2\), got \(2, 4\)",
        ),
        (
            [np.zeros((7, 16)), np.zeros(16), *[np.zeros(4)] * 3, np.full((4, 2), "a")],
            TypeError,
            r"projection_kernel has dtype <U1",
        ),
    ],
)
def test_bad_weights(weights, error, message):
    cell = fastlstm.LSTMCell(4, use_peepholes=True, num_proj=2)
    with pytest.raises(error, match=message):
        cell.set_weights(weights)
    assert not cell.built


@pytest.mark.parametrize(
    "state, message",
    [
        ((np.zeros((2, 4)), np.zeros((2, 4))), r"initial state h must have shape \(2, 2\), got \(2, 4\)"),
        ((np.zeros((2, 2)), np.zeros((2, 2))), r"initial state c must have shape \(2, 4\), got \(2, 2\)"),
        (np.zeros((2, 6)), r"state must be an LSTMStateTuple \(c, h\) of \[2, 4\] and \[2, 2\] arrays"),
    ],
)
def test_bad_state_with_projection(state, message):
    cell = lstm_cell(4, 3, num_proj=2)
    with pytest.raises(ValueError, match=message):
        fastlstm.dynamic_rnn(cell, np.zeros((2, 5, 3), np.float32), initial_state=state)


def test_bad_concatenated_state_with_projection():
    cell = fastlstm.LSTMCell(4, num_proj=2, state_is_tuple=False)
    with pytest.raises(
        ValueError, match=r"state \(concat of c and h\) must have shape \(2, 6\), got \(2, 8\)"
    ):
        fastlstm.dynamic_rnn(cell, np.zeros((2, 5, 3), np.float32), initial_state=np.zeros((2, 8)))


def test_step_needs_a_state():
    cell = lstm_cell(4, 3)
    with pytest.raises(ValueError, match=r"a cell step needs a state; start from cell.zero_state"):
        cell(np.zeros((2, 3)), None)
