"""Issue 6, validation everywhere: every entry point that takes user data refuses the same
bad data with the same precise message, before any compiled code runs or any big buffer is
allocated.

test_errors.py and the per-feature test files check each message once, mostly through
``dynamic_rnn``; here one catalogue of bad arguments goes through every entry point
(``dynamic_rnn`` both layouts, ``bidirectional_dynamic_rnn``, a ``MultiRNNCell`` run, an
``LSTMModel`` call, one cell step) and every weight of every cell type.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlstm
from cell_helpers import basic_cell, lstm_cell, randomise

BATCH, TIME, DEPTH, UNITS = 2, 5, 3, 4


def zero_stride(shape, dtype=np.float32):
    """A read-only view of one element posing as an array of ``shape`` (no memory behind it)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


# -- the entry points, each as run(inputs, sequence_length, initial_state) --------------------
def _dynamic(inputs, lengths=None, state=None):
    return fastlstm.dynamic_rnn(basic_cell(UNITS, DEPTH), inputs, lengths, initial_state=state)


def _dynamic_time_major(inputs, lengths=None, state=None):
    x = np.swapaxes(inputs, 0, 1) if isinstance(inputs, np.ndarray) and inputs.ndim == 3 else inputs
    return fastlstm.dynamic_rnn(basic_cell(UNITS, DEPTH), x, lengths, initial_state=state, time_major=True)


def _bidirectional_fw(inputs, lengths=None, state=None):
    return fastlstm.bidirectional_dynamic_rnn(
        basic_cell(UNITS, DEPTH),
        lstm_cell(3, DEPTH, use_peepholes=True),
        inputs,
        lengths,
        initial_state_fw=state,
    )


def _bidirectional_bw(inputs, lengths=None, state=None):
    return fastlstm.bidirectional_dynamic_rnn(
        lstm_cell(3, DEPTH, num_proj=2), basic_cell(UNITS, DEPTH), inputs, lengths, initial_state_bw=state
    )


def _multi(inputs, lengths=None, state=None):
    cell = randomise(fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(UNITS), fastlstm.BasicLSTMCell(2)]), DEPTH)
    full = None if state is None else (state, cell.cells[1].zero_state(BATCH))
    return fastlstm.dynamic_rnn(cell, inputs, lengths, initial_state=full)


def _model(inputs, lengths=None, state=None):
    model = fastlstm.LSTMModel([basic_cell(UNITS, DEPTH), basic_cell(2, UNITS, seed=1)])
    return model(inputs, lengths, initial_state=None if state is None else [state, None])


def _model_bidirectional(inputs, lengths=None, state=None):
    model = fastlstm.LSTMModel([(basic_cell(UNITS, DEPTH), basic_cell(2, DEPTH, seed=1))])
    return model(inputs, lengths, initial_state=None if state is None else [(state, None)])


ENTRY_POINTS = {
    "dynamic_rnn": _dynamic,
    "dynamic_rnn_time_major": _dynamic_time_major,
    "bidirectional_fw": _bidirectional_fw,
    "bidirectional_bw": _bidirectional_bw,
    "multi_rnn_cell": _multi,
    "model": _model,
    "model_bidirectional": _model_bidirectional,
}

GOOD = np.zeros((BATCH, TIME, DEPTH), np.float32)


def _good_state(dtype=np.float64):
    return (np.zeros((BATCH, UNITS), dtype), np.zeros((BATCH, UNITS), dtype))


BAD_INPUTS = [
    ("rank 2", np.zeros((BATCH, TIME)), ValueError, r"inputs must be 3-D .*, got shape \(2, 5\)"),
    (
        "rank 4",
        np.zeros((1, BATCH, TIME, DEPTH)),
        ValueError,
        r"inputs must be 3-D .*, got shape \(1, 2, 5, 3\)",
    ),
    ("scalar", 1.5, ValueError, r"inputs must be 3-D .*, got shape \(\)"),
    (
        "depth",
        np.zeros((BATCH, TIME, 7)),
        ValueError,
        r"inputs have depth 7 but the cell was built for depth 3",
    ),
    (
        "strings",
        np.full((BATCH, TIME, DEPTH), "0.5"),
        TypeError,
        r"inputs has dtype <U3, which is not numeric",
    ),
    (
        "bytes",
        np.zeros((BATCH, TIME, DEPTH), "S2"),
        TypeError,
        r"inputs has dtype \|S2, which is not numeric",
    ),
    (
        "objects",
        np.zeros((BATCH, TIME, DEPTH), object),
        TypeError,
        r"inputs has dtype object, which is not numeric",
    ),
    ("None", None, TypeError, r"inputs has dtype object, which is not numeric"),
    (
        "complex64",
        np.zeros((BATCH, TIME, DEPTH), np.complex64),
        TypeError,
        r"inputs has complex dtype complex64",
    ),
    ("bool", np.zeros((BATCH, TIME, DEPTH), bool), TypeError, r"inputs has boolean dtype; pass numbers"),
    ("datetime", np.zeros((BATCH, TIME, DEPTH), "M8[s]"), TypeError, r"inputs has dtype datetime64\[s\]"),
    ("structured", np.zeros((BATCH, TIME, DEPTH), "f4,f4"), TypeError, r"inputs has dtype \[\('f0', '<f4'\)"),
    (
        "ragged",
        [[[0.0] * DEPTH], [[0.0] * DEPTH] * 2],
        TypeError,
        r"inputs could not be read as a numeric array",
    ),
]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_everywhere(entry, case):
    _, inputs, error, message = case
    with pytest.raises(error, match=message):
        ENTRY_POINTS[entry](inputs)


BAD_LENGTHS = [
    ("negative", [3, -2], ValueError, r"sequence_length\[1\] = -2 is negative"),
    ("negative int8", np.array([-128, 1], np.int8), ValueError, r"sequence_length\[0\] = -128 is negative"),
    ("too large", [TIME + 1, 0], ValueError, r"sequence_length\[0\] = 6 exceeds max_time = 5"),
    ("too large uint64", np.array([1, 2**64 - 1], np.uint64), ValueError, r"= 18446744073709551615 exceeds"),
    ("too large float", [1e300, 1.0], ValueError, r"sequence_length\[0\] = 1e\+300 exceeds max_time = 5"),
    ("fraction", [1.0, 2.5], ValueError, r"sequence_length\[1\] = 2.5 is not an integer"),
    ("fraction float16", np.array([0.5, 1], np.float16), ValueError, r"sequence_length\[0\] = 0.5 is not"),
    ("nan", [np.nan, 1], ValueError, r"sequence_length\[0\] = nan is not an integer"),
    ("inf", [1, np.inf], ValueError, r"sequence_length\[1\] = inf is not an integer"),
    ("scalar", 3, ValueError, r"sequence_length must have shape \(2,\), got \(\)"),
    ("short", [3], ValueError, r"sequence_length must have shape \(2,\), got \(1,\)"),
    ("empty", [], ValueError, r"sequence_length must have shape \(2,\), got \(0,\)"),
    ("2-D", [[3], [3]], ValueError, r"sequence_length must have shape \(2,\), got \(2, 1\)"),
    ("bool", [True, True], TypeError, r"sequence_length has boolean dtype"),
    ("complex", [1 + 0j, 2], TypeError, r"sequence_length has complex dtype complex128"),
    ("strings", ["3", "2"], TypeError, r"sequence_length has dtype <U1, which is not numeric"),
    ("None inside", [3, None], TypeError, r"sequence_length has dtype object, which is not numeric"),
    ("ragged", [[1], [1, 2]], TypeError, r"sequence_length could not be read as a numeric array"),
]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", BAD_LENGTHS, ids=[c[0] for c in BAD_LENGTHS])
def test_bad_lengths_everywhere(entry, case):
    _, lengths, error, message = case
    before = np.array(lengths, dtype=object, copy=True) if isinstance(lengths, list) else None
    with pytest.raises(error, match=message):
        ENTRY_POINTS[entry](GOOD, lengths)
    if before is not None:
        assert lengths == before.tolist()


BAD_STATES = [
    (
        "wrong batch",
        (np.zeros((3, UNITS)), np.zeros((BATCH, UNITS))),
        ValueError,
        r"initial state c must have shape \(2, 4\), got \(3, 4\)",
    ),
    (
        "wrong units",
        (np.zeros((BATCH, UNITS)), np.zeros((BATCH, 5))),
        ValueError,
        r"initial state h must have shape \(2, 4\), got \(2, 5\)",
    ),
    (
        "1-D",
        (np.zeros(UNITS), np.zeros((BATCH, UNITS))),
        ValueError,
        r"initial state c must have shape \(2, 4\), got \(4,\)",
    ),
    (
        "one array",
        np.zeros((BATCH, 2 * UNITS)),
        ValueError,
        r"state must be an LSTMStateTuple \(c, h\) of \[2, 4\] and \[2, 4\]",
    ),
    (
        "three parts",
        (np.zeros((BATCH, UNITS)),) * 3,
        ValueError,
        r"state must be an LSTMStateTuple .* got tuple",
    ),
    ("dict", {"c": 0, "h": 0}, ValueError, r"state must be an LSTMStateTuple .* got dict"),
    (
        "complex",
        (np.zeros((BATCH, UNITS), complex), np.zeros((BATCH, UNITS))),
        TypeError,
        r"initial state c has complex dtype",
    ),
    (
        "bool",
        (np.zeros((BATCH, UNITS)), np.zeros((BATCH, UNITS), bool)),
        TypeError,
        r"initial state h has boolean dtype",
    ),
    (
        "strings",
        (np.full((BATCH, UNITS), "0"), np.zeros((BATCH, UNITS))),
        TypeError,
        r"initial state c has dtype <U1",
    ),
    ("None parts", (None, None), TypeError, r"initial state c has dtype object, which is not numeric"),
    (
        "huge batch",
        (zero_stride((2**40, UNITS)), zero_stride((2**40, UNITS))),
        ValueError,
        r"initial state c must have shape \(2, 4\), got \(1099511627776, 4\)",
    ),
]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_bad_initial_states_everywhere(entry, case):
    _, state, error, message = case
    with pytest.raises(error, match=message):
        ENTRY_POINTS[entry](GOOD, None, state)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_good_arguments_pass_through_every_entry_point(entry):
    """The catalogue above fails for its bad value only: the same call with good values runs."""
    outputs, _ = ENTRY_POINTS[entry](GOOD.astype(np.float64), np.array([TIME, 0], np.uint8), _good_state())
    first = outputs[0] if isinstance(outputs, tuple) else outputs
    assert first.shape[:2] in ((BATCH, TIME), (TIME, BATCH))


def test_cell_step_validates_like_a_run():
    cell = basic_cell(UNITS, DEPTH)
    state = cell.zero_state(BATCH)
    cases = [
        (np.zeros((BATCH, 7)), ValueError, r"inputs have depth 7 but the cell was built for depth 3"),
        (np.zeros((BATCH, DEPTH), complex), TypeError, r"inputs has complex dtype complex128"),
        (np.zeros((BATCH, DEPTH), bool), TypeError, r"inputs has boolean dtype"),
        (np.full((BATCH, DEPTH), "x"), TypeError, r"inputs has dtype <U1"),
        (np.zeros((3, DEPTH)), ValueError, r"initial state c must have shape \(3, 4\), got \(2, 4\)"),
    ]
    for inputs, error, message in cases:
        with pytest.raises(error, match=message):
            cell(inputs, state)
    with pytest.raises(
        ValueError, match=r"inputs to a cell step must be 2-D \[batch, input_size\], got shape \(2, 5, 3\)"
    ):
        cell(GOOD, state)


# -- sizes that cannot be allocated ----------------------------------------------------------
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    "shape",
    [(1, 2**40, DEPTH), (BATCH, 2**29, 2**30), (1, 2**58, DEPTH)],
    ids=["2**40 steps", "2**60 elements", "2**58 steps (bytes near int64 max)"],
)
def test_huge_inputs_refused_before_allocating(entry, shape):
    """Zero-stride views of absurd logical size: a ValueError naming the shape, no MemoryError.

    (The batch axis stays small here; see the report of issue 6 for huge batches.)
    """
    x = zero_stride(shape)
    if entry == "dynamic_rnn_time_major":
        shape = (shape[1], shape[0], shape[2])
    pattern = (
        rf"inputs of shape \({shape[0]}, {shape[1]}, {shape[2]}\) has \d+ elements: too large to allocate"
    )
    with pytest.raises(ValueError, match=pattern):
        ENTRY_POINTS[entry](x)


def test_size_check_sees_the_product_not_each_extent():
    """No single extent is large, their product is: 2**14 * 2**14 * 2**13 = 2**41 elements."""
    with pytest.raises(ValueError, match=r"has 2199023255552 elements: too large to allocate"):
        _dynamic(zero_stride((2**14, 2**14, 2**13)))


# -- weights: every weight of every cell type, wrong shape or dtype --------------------------
def _lstm_full():
    return fastlstm.LSTMCell(UNITS, use_peepholes=True, num_proj=2)


FULL_SHAPES = {
    "kernel": (DEPTH + 2, 4 * UNITS),
    "bias": (4 * UNITS,),
    "w_f_diag": (UNITS,),
    "w_i_diag": (UNITS,),
    "w_o_diag": (UNITS,),
    "projection_kernel": (UNITS, 2),
}
BAD_VALUES = {
    "complex": (lambda shape: np.zeros(shape, complex), TypeError, r"{name} has complex dtype complex128"),
    "bool": (lambda shape: np.zeros(shape, bool), TypeError, r"{name} has boolean dtype"),
    "object": (
        lambda shape: np.zeros(shape, object),
        TypeError,
        r"{name} has dtype object, which is not numeric",
    ),
    "strings": (lambda shape: np.full(shape, "1"), TypeError, r"{name} has dtype <U1, which is not numeric"),
    "None": (lambda shape: None, TypeError, r"{name} has dtype object"),
    "timedelta": (lambda shape: np.zeros(shape, "m8[s]"), TypeError, r"{name} has dtype timedelta64\[s\]"),
    "too long": (
        lambda shape: np.zeros(shape[:-1] + (shape[-1] + 1,)),
        ValueError,
        r"{name} must have shape",
    ),
    "extra axis": (lambda shape: np.zeros(shape + (1,)), ValueError, r"{name} must have shape"),
    "scalar": (lambda shape: 0.0, ValueError, r"{name} must have shape"),
}


@pytest.mark.parametrize("name", sorted(FULL_SHAPES))
@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
def test_every_weight_of_an_lstm_cell_is_checked_and_nothing_is_assigned(name, bad):
    cell = _lstm_full()
    cell.build(DEPTH, seed=0)
    before = cell.get_weights()
    weights = [np.zeros(FULL_SHAPES[n]) for n in cell.weight_names]
    make, error, message = BAD_VALUES[bad]
    weights[cell.weight_names.index(name)] = make(FULL_SHAPES[name])
    if name == "kernel" and error is ValueError:
        message = r"kernel must have shape \[input_size \+ 2, 16\]"
    with pytest.raises(error, match=message.format(name=name)):
        cell.set_weights(weights)
    for old, now in zip(before, cell.get_weights(), strict=True):
        np.testing.assert_array_equal(old, now)


@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
def test_every_weight_of_a_stack_is_checked_with_its_layer_named(bad):
    cell = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(3), _lstm_full()])
    cell.build(DEPTH, seed=0)
    before = cell.get_weights()
    make, error, message = BAD_VALUES[bad]
    for index, shape in [(1, (12,)), (4, (UNITS,)), (7, (UNITS, 2))]:
        weights = cell.get_weights()
        weights[index] = make(shape)
        name = {1: "layer0.bias", 4: "layer1.w_f_diag", 7: "layer1.projection_kernel"}[index]
        with pytest.raises(error, match=message.format(name=name.replace(".", r"\."))):
            cell.set_weights(weights)
    for old, now in zip(before, cell.get_weights(), strict=True):
        np.testing.assert_array_equal(old, now)


@pytest.mark.parametrize(
    "weights, error, message",
    [
        (
            None,
            TypeError,
            r"LSTMCell.set_weights expects a list \[kernel, bias, w_f_diag, .*\], got NoneType",
        ),
        (np.zeros((6, 5, 16)), TypeError, r"expects a list \[kernel, .*\], got ndarray"),
        ({"kernel": 0}, TypeError, r"expects a list \[kernel, .*\], got dict"),
        (
            [np.zeros((5, 16)), np.zeros(16)],
            ValueError,
            r"expects \[kernel, bias, w_f_diag, w_i_diag, w_o_diag, projection_kernel\], got 2 arrays",
        ),
    ],
)
def test_weight_list_itself(weights, error, message):
    with pytest.raises(error, match=message):
        _lstm_full().set_weights(weights)


def test_a_good_weight_in_another_dtype_layout_or_byte_order_is_copied_not_aliased():
    cell = _lstm_full()
    kernel = np.asfortranarray(
        np.arange(np.prod(FULL_SHAPES["kernel"]), dtype=">f8").reshape(FULL_SHAPES["kernel"])
    )
    weights = [kernel] + [np.ones(FULL_SHAPES[n], np.float16) for n in cell.weight_names[1:]]
    snapshot = [w.copy() for w in weights]
    cell.set_weights(weights)
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in cell.get_weights())
    np.testing.assert_array_equal(cell.kernel, kernel)
    assert not np.shares_memory(cell.kernel, kernel)
    kernel[0, 0] = -1.0
    assert cell.kernel[0, 0] == 0.0
    for w, s in zip(weights[1:], snapshot[1:]):
        np.testing.assert_array_equal(w, s)


# -- constructors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: fastlstm.BasicLSTMCell(np.float64(4)),
            TypeError,
            r"num_units must be a positive integer, got np.float64\(4.0\)",
        ),
        (lambda: fastlstm.BasicLSTMCell(None), TypeError, r"num_units must be a positive integer, got None"),
        (
            lambda: fastlstm.BasicLSTMCell(4, forget_bias=np.ones(2)),
            TypeError,
            r"forget_bias must be a real number, got array",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4, forget_bias=1j),
            TypeError,
            r"forget_bias must be a real number, got 1j",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4, forget_bias="1e400"),
            ValueError,
            r"forget_bias must be finite, got '1e400'",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4, dtype="complex64"),
            TypeError,
            r"dtype complex64 is not supported",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4, dtype="f4,f4"),
            TypeError,
            r"dtype \[\('f0', '<f4'\), .* is not supported",
        ),
        (lambda: fastlstm.BasicLSTMCell(4, dtype=">f4"), TypeError, r"dtype >f4 is not supported"),
        (
            lambda: fastlstm.LSTMCell(4, num_proj=np.float32(2)),
            TypeError,
            r"num_proj must be a positive integer, got np.float32\(2.0\)",
        ),
        (
            lambda: fastlstm.LSTMCell(4, num_proj=-1),
            ValueError,
            r"num_proj must be a positive integer, got -1",
        ),
        (
            lambda: fastlstm.LSTMCell(4, cell_clip=np.inf),
            ValueError,
            r"cell_clip must be a positive finite number or None, got inf",
        ),
        (
            lambda: fastlstm.LSTMCell(4, cell_clip=True),
            TypeError,
            r"cell_clip must be a positive number or None, got True",
        ),
        (
            lambda: fastlstm.LSTMCell(4, num_proj=2, proj_clip=0.0),
            ValueError,
            r"proj_clip must be a positive finite number or None, got 0.0",
        ),
        (
            lambda: fastlstm.LSTMCell(4, num_proj=2, proj_clip="big"),
            TypeError,
            r"proj_clip must be a positive number or None, got 'big'",
        ),
        (
            lambda: fastlstm.LSTMCell(4, initializer="glorot"),
            TypeError,
            r"initializer must be None or a callable .* got str: 'glorot'",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4).build(-1),
            ValueError,
            r"input_size must be a non-negative integer, got -1",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4).build(2.0),
            TypeError,
            r"input_size must be a non-negative integer, got 2.0",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4).zero_state(2.0),
            TypeError,
            r"batch_size must be a non-negative integer, got 2.0",
        ),
        (
            lambda: fastlstm.BasicLSTMCell(4).zero_state(2, dtype="float16"),
            TypeError,
            r"dtype float16 is not supported",
        ),
        (
            lambda: fastlstm.MultiRNNCell((fastlstm.BasicLSTMCell(2), None)),
            TypeError,
            r"cells\[1\] must be a fastlstm cell .* got NoneType",
        ),
        (
            lambda: fastlstm.LSTMModel("lstm"),
            TypeError,
            r"layers must be a list of cells or \(cell_fw, cell_bw\) pairs, got str",
        ),
        (
            lambda: fastlstm.LSTMModel([[fastlstm.BasicLSTMCell(2)]]),
            ValueError,
            r"layers\[0\] must be a \(cell_fw, cell_bw\) pair, got 1 items",
        ),
    ],
)
def test_bad_constructor_and_build_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_run_dtype_argument_everywhere():
    x = GOOD
    for bad, error, message in [
        ("float16", TypeError, r"dtype float16 is not supported; use float32 or float64"),
        ("int32", TypeError, r"dtype int32 is not supported"),
        ("nonsense", TypeError, r"dtype 'nonsense' is not a dtype; use 'float32' or 'float64'"),
    ]:
        with pytest.raises(error, match=message):
            fastlstm.dynamic_rnn(basic_cell(UNITS, DEPTH), x, dtype=bad)
        with pytest.raises(error, match=message):
            fastlstm.bidirectional_dynamic_rnn(basic_cell(UNITS, DEPTH), basic_cell(2, DEPTH), x, dtype=bad)


# -- load: what is not a path, not a file, not ours ------------------------------------------
def test_load_of_things_that_are_not_files(tmp_path):
    with pytest.raises(TypeError):
        fastlstm.load(None)
    with pytest.raises(IsADirectoryError):
        fastlstm.load(tmp_path)
    for device, message in [
        ("/dev/null", "not a readable .npz archive"),
        ("/dev/zero", "not a readable .npz archive"),
    ]:
        with pytest.raises(ValueError, match=rf"{device} is not a fastlstm file \({message}\)"):
            fastlstm.load(device)
