"""Every check of the core API's arguments, in one place, raised before any compiled code runs.

The core API is the cells, :func:`~fastlstm.dynamic_rnn`,
:func:`~fastlstm.bidirectional_dynamic_rnn`, :class:`~fastlstm.LSTMModel`
and :class:`~fastlstm.Backward`: every argument they take is checked by a
function here (their modules call these and check nothing themselves). One
exception: an ``activation`` argument is checked where it is resolved,
:func:`fastlstm.activations.resolve_activation`, since only compiling a user's
function tells whether numba accepts it.

The adapters (``io``, ``convert``, ``cli``, ``scoring``, ``dask``) call that
API as a user would, so these checks apply to what they pass on; in their own
modules they check only their own arguments and what the API never sees: the
contents of files and of other frameworks' objects, command lines, the
shapes of dask arrays before any task runs, thread counts.

Messages name the offending value and, where there is one, the fix.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
from typing import Any

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Refuse requests whose buffers could not possibly be allocated.
MAX_ELEMENTS = 2**40


def float_dtype(dtype: Any, what: str = "dtype") -> np.dtype:
    """Normalise a dtype argument (numpy, string or TF-like) to float32/float64."""
    dtype = getattr(dtype, "as_numpy_dtype", dtype)
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{what} {dtype!r} is not a dtype; use 'float32' or 'float64'") from exc
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"{what} {resolved} is not supported; use float32 or float64")
    return resolved


def state_dtype(c: Any, h: Any) -> np.dtype:
    """The dtype ``c`` and ``h`` of a state share."""
    c_dtype, h_dtype = np.asarray(c).dtype, np.asarray(h).dtype
    if c_dtype != h_dtype:
        raise TypeError(f"inconsistent internal state: {c_dtype} vs {h_dtype}")
    return c_dtype


def positive_int(value: Any, what: str) -> int:
    """An integer > 0 (bools refused)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a positive integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError as exc:
        raise TypeError(f"{what} must be a positive integer, got {value!r}") from exc
    if number <= 0:
        raise ValueError(f"{what} must be a positive integer, got {number}")
    return number


def non_negative_int(value: Any, what: str) -> int:
    """An integer >= 0 (bools refused)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a non-negative integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError as exc:
        raise TypeError(f"{what} must be a non-negative integer, got {value!r}") from exc
    if number < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {number}")
    return number


def real_array(value: Any, what: str) -> np.ndarray:
    """An ndarray of real numbers (bool, complex, strings and objects refused)."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what} could not be read as a numeric array: {exc}") from exc
    kind = array.dtype.kind
    if kind == "b":
        raise TypeError(f"{what} has boolean dtype; pass numbers (e.g. array.astype('float32'))")
    if kind == "c":
        raise TypeError(f"{what} has complex dtype {array.dtype}; LSTMs here are real-valued")
    if kind not in "iuf":
        raise TypeError(f"{what} has dtype {array.dtype}, which is not numeric; pass float32 or float64 data")
    return array


def as_kernel_array(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous, writeable, native-byte-order copy or view in ``dtype``.

    Never modifies the caller's array: a copy is made whenever the layout, dtype,
    byte order or writeability differs.
    """
    flags = array.flags  # a new object on every access
    if (
        array.dtype == dtype
        and array.dtype.isnative
        and flags.c_contiguous
        and flags.writeable
        and flags.aligned
    ):
        return array
    return np.array(array, dtype=dtype, order="C", copy=True)


@functools.cache
def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not exposed on this platform
        return MAX_ELEMENTS


def check_size(shape: tuple[int, ...], what: str, itemsize: int = 8, elements: int | None = None) -> None:
    """Refuse shapes whose element count overflows, or whose bytes exceed the machine's memory.

    Called before anything of that shape is allocated. ``elements``, when the
    caller has it, is the exact product of ``shape`` (a Python int).
    """
    total = elements
    if total is None:
        total = 1
        for extent in shape:
            total *= int(extent)
    if total > MAX_ELEMENTS:
        raise ValueError(f"{what} of shape {tuple(shape)} has {total} elements: too large to allocate")
    nbytes = total * itemsize
    memory = _physical_memory()
    if nbytes > memory:
        raise ValueError(
            f"{what} of shape {tuple(shape)} is too large to allocate: it would need "
            f"{nbytes / 2**30:.1f} GiB, more than this machine's {memory / 2**30:.1f} GiB of memory"
        )


def inputs_3d(inputs: Any, time_major: bool) -> np.ndarray:
    """``inputs`` as a real ndarray of rank 3."""
    array = real_array(inputs, "inputs")
    if array.ndim != 3:
        layout = "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]"
        raise ValueError(f"inputs must be 3-D {layout}, got shape {array.shape}")
    return array


def sequence_lengths(sequence_length: Any, batch: int, max_time: int) -> np.ndarray:
    """Validated lengths as int64 ``[batch]``; all ``max_time`` when None."""
    if sequence_length is None:
        lengths = np.empty(batch, dtype=np.int64)
        lengths.fill(max_time)  # as np.full, at a third of its cost on a tiny call
        return lengths
    lengths = real_array(sequence_length, "sequence_length")
    if lengths.shape != (batch,):
        raise ValueError(f"sequence_length must have shape ({batch},), got {lengths.shape}")
    if lengths.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(lengths) | (lengths != np.round(lengths)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"sequence_length[{i}] = {lengths[i].item()} is not an integer")
    if lengths.size:
        low = int(np.argmin(lengths))
        if lengths[low] < 0:
            raise ValueError(f"sequence_length[{low}] = {lengths[low].item()} is negative")
        high = int(np.argmax(lengths))
        if lengths[high] > max_time:
            raise ValueError(
                f"sequence_length[{high}] = {lengths[high].item()} exceeds max_time = {max_time}"
            )
    return lengths.astype(np.int64)


def state_part(value: Any, batch: int, depth: int, what: str) -> np.ndarray:
    """One ``[batch, depth]`` part of an initial state."""
    array = real_array(value, what)
    if array.shape != (batch, depth):
        raise ValueError(f"{what} must have shape ({batch}, {depth}), got {array.shape}")
    return array


def weight(value: Any, shape: tuple[int, ...], what: str, dtype: np.dtype) -> np.ndarray:
    """A weight array of exactly ``shape``, copied into ``dtype``."""
    array = real_array(value, what)
    if array.shape != tuple(shape):
        raise ValueError(f"{what} must have shape {tuple(shape)}, got {array.shape}")
    check_size(array.shape, what, dtype.itemsize)
    return np.array(array, dtype=dtype, order="C", copy=True)


def finite_float(value: Any, what: str) -> float:
    """A finite real number as a Python float."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a real number, got {value!r}") from exc
    if not np.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def optional_positive_float(value: Any, what: str) -> float | None:
    """None, or a finite number > 0 (a clipping bound)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a positive number or None, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a positive number or None, got {value!r}") from exc
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive finite number or None, got {value!r}")
    return number


def optional_str(value: Any, what: str) -> str | None:
    """None or a string."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None, got {type(value).__name__}: {value!r}")
    return value


def weight_list(weights: Any, names: tuple[str, ...], owner: str) -> list[Any]:
    """The list handed to ``set_weights``: a list or tuple with one entry per name."""
    expected = f"[{', '.join(names)}]"
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{owner}.set_weights expects a list {expected}, got {type(weights).__name__}")
    if len(weights) != len(names):
        raise ValueError(f"{owner}.set_weights expects {expected}, got {len(weights)} arrays")
    return list(weights)


def distinct_cells(cells: list[Any]) -> None:
    """Refuse one cell object used in two places (its weights would be shared)."""
    seen: set[int] = set()
    for cell in cells:
        if id(cell) in seen:
            raise ValueError(
                f"the same cell object is used twice ({cell!r}); create one cell per layer and direction"
            )
        seen.add(id(cell))


def same_dtype(cells: list[Any], labels: list[str]) -> np.dtype:
    """The dtype all ``cells`` share; a ValueError naming the first that differs."""
    first = cells[0].dtype
    for cell, label in zip(cells, labels):
        if cell.dtype != first:
            raise ValueError(
                f"{label} has dtype {cell.dtype} but {labels[0]} has dtype {first}; "
                f"give every cell the same dtype"
            )
    return first


def layer_chain(layers: list[tuple[str, int | None, int]]) -> None:
    """Check that each layer's input depth is the previous layer's output depth.

    ``layers`` holds ``(label, input_size or None if not built, output_size)``.
    """
    for (prev_label, _, prev_out), (label, depth, _) in itertools.pairwise(layers):
        if depth is not None and depth != prev_out:
            raise ValueError(
                f"{label} takes inputs of depth {depth} but {prev_label} outputs depth {prev_out}"
            )


# -- cells, layers and states -------------------------------------------------------------------
CELL_KINDS = "a fastlstm cell (BasicLSTMCell, LSTMCell or MultiRNNCell)"


def rnn_cell(value: Any, what: str, cell_type: type) -> None:
    """Refuse anything but a fastlstm cell (``cell_type`` is :class:`fastlstm.cell.RNNCell`)."""
    if not isinstance(value, cell_type):
        raise TypeError(f"{what} must be {CELL_KINDS}, got {type(value).__name__}")


def cell_list(cells: Any, cell_type: type) -> None:
    """The cells of a ``MultiRNNCell``: a non-empty list or tuple of fastlstm cells."""
    if isinstance(cells, cell_type) or not isinstance(cells, (list, tuple)):
        raise TypeError(f"cells must be a list of fastlstm cells, got {type(cells).__name__}")
    if not cells:
        raise ValueError("MultiRNNCell needs at least one cell, got an empty list")
    for k, cell in enumerate(cells):
        rnn_cell(cell, f"cells[{k}]", cell_type)


def stack_state_is_tuple(state_is_tuple: Any) -> None:
    """``MultiRNNCell(state_is_tuple=False)`` is refused."""
    if not state_is_tuple:
        raise ValueError(
            "MultiRNNCell(state_is_tuple=False) is deprecated in TensorFlow and not supported; "
            "keep state_is_tuple=True (the state is then a tuple of the cells' states)"
        )


def layer_list(layers: Any, cell_type: type) -> None:
    """The layers of an ``LSTMModel``: a non-empty list or tuple (each layer is checked by :func:`layer`)."""
    if isinstance(layers, cell_type) or not isinstance(layers, (list, tuple)):
        raise TypeError(
            f"layers must be a list of cells or (cell_fw, cell_bw) pairs, got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("LSTMModel needs at least one layer, got an empty list")


def layer(value: Any, k: int, cell_type: type, backward_type: type) -> Any:
    """``layers[k]`` of an ``LSTMModel``: a cell, a ``Backward`` layer, or a ``(cell_fw, cell_bw)`` pair.

    Returns the layer with a pair as a tuple. The cells of a pair must take
    inputs of one depth when both are built.
    """
    if isinstance(value, (cell_type, backward_type)):
        return value
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"layers[{k}] must be a fastlstm cell or a (cell_fw, cell_bw) pair, got {type(value).__name__} "
            f"(a layer that runs a cell backwards only is fastlstm.Backward(cell))"
        )
    if len(value) != 2:
        raise ValueError(f"layers[{k}] must be a (cell_fw, cell_bw) pair, got {len(value)} items")
    for direction, cell in zip(("cell_fw", "cell_bw"), value):
        rnn_cell(cell, f"layers[{k}] {direction}", cell_type)
    fw, bw = value
    if fw.input_size is not None and bw.input_size is not None and fw.input_size != bw.input_size:
        raise ValueError(
            f"layers[{k}]: cell_fw was built for inputs of depth {fw.input_size} "
            f"but cell_bw for depth {bw.input_size}"
        )
    return (fw, bw)


def input_depth(depth: int, built_for: int | None, context: str) -> None:
    """Inputs of ``depth`` for a cell built for depth ``built_for``."""
    if built_for != depth:
        raise ValueError(f"{context}inputs have depth {depth} but the cell was built for depth {built_for}")


def kernel_shape(kernel: np.ndarray, width: int, out_depth: int, what: str) -> None:
    """A kernel ``[input_size + out_depth, width]`` (any ``input_size >= 0``)."""
    if kernel.ndim != 2 or kernel.shape[1] != width or kernel.shape[0] < out_depth:
        raise ValueError(f"{what} must have shape [input_size + {out_depth}, {width}], got {kernel.shape}")


def projection_clip(proj_clip: Any, num_proj: int | None) -> float | None:
    """``LSTMCell``'s ``proj_clip``: None, or a bound > 0 when there is a projection to clip."""
    bound = optional_positive_float(proj_clip, "proj_clip")
    if bound is not None and num_proj is None:
        raise ValueError(
            f"proj_clip={proj_clip!r} needs num_proj (there is no projection to clip); "
            f"pass num_proj or drop proj_clip"
        )
    return bound


def optional_callable(value: Any, what: str, signature: str) -> Any:
    """None or a callable (``signature`` describes the one expected, for the message)."""
    if value is not None and not callable(value):
        raise TypeError(
            f"{what} must be None or a callable {signature}, got {type(value).__name__}: {value!r}"
        )
    return value


def lstm_state(
    state: Any, batch: int, units: int, out_depth: int, state_is_tuple: bool, context: str
) -> tuple[np.ndarray, np.ndarray]:
    """A single cell's state as real ``(c, h)`` arrays ``[batch, units]``, ``[batch, out_depth]``.

    ``(c, h)`` when ``state_is_tuple``, else one ``[batch, units + out_depth]``
    array; the dtype is left as it is.
    """
    if state_is_tuple:
        if isinstance(state, np.ndarray) or not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(
                f"{context}state must be an LSTMStateTuple (c, h) of [{batch}, {units}] and "
                f"[{batch}, {out_depth}] arrays (state_is_tuple=True), got {type(state).__name__}"
            )
        return (
            state_part(state[0], batch, units, f"{context}initial state c"),
            state_part(state[1], batch, out_depth, f"{context}initial state h"),
        )
    joined = state_part(state, batch, units + out_depth, f"{context}state (concat of c and h)")
    return joined[:, :units], joined[:, units:]


def stack_states(state: Any, n: int, context: str) -> tuple:
    """A ``MultiRNNCell``'s state: a tuple of ``n`` cell states (None: ``n`` Nones)."""
    if state is None:
        return (None,) * n
    if isinstance(state, np.ndarray) or not isinstance(state, (tuple, list)) or len(state) != n:
        got = (
            f"{type(state).__name__} of length {len(state)}"
            if isinstance(state, (tuple, list))
            else (type(state).__name__)
        )
        raise ValueError(
            f"{context}the state of a MultiRNNCell must be a tuple of {n} cell states "
            f"(one per layer), got {got}"
        )
    return tuple(state)


def model_states(initial_state: Any, n: int) -> tuple:
    """An ``LSTMModel``'s ``initial_state``: one entry per layer (None: ``n`` Nones)."""
    if initial_state is None:
        return (None,) * n
    if isinstance(initial_state, np.ndarray) or not isinstance(initial_state, (list, tuple)):
        raise ValueError(
            f"initial_state must be a list with one state per layer ({n}), got {type(initial_state).__name__}"
        )
    if len(initial_state) != n:
        raise ValueError(f"initial_state must have one entry per layer ({n}), got {len(initial_state)}")
    return tuple(initial_state)


def pair_state(state: Any, k: int) -> tuple:
    """``initial_state[k]`` of a bidirectional layer: a ``(state_fw, state_bw)`` pair (None: two Nones)."""
    if state is None:
        return (None, None)
    if isinstance(state, np.ndarray) or not isinstance(state, (list, tuple)) or len(state) != 2:
        raise ValueError(
            f"initial_state[{k}] of a bidirectional layer must be a pair (state_fw, state_bw), "
            f"got {type(state).__name__}"
        )
    return tuple(state)


# -- the inputs of a run -----------------------------------------------------------------------------
PRECISIONS = ("float32", "bfloat16")


def precision(value: Any, dtype: np.dtype, fix: str) -> str:
    """The precision of a run's matrix products, ``"float32"`` or ``"bfloat16"``.

    bfloat16 products accumulate in float32 and the state stays float32, so
    the run's dtype must be float32; ``fix`` says how to get there.
    """
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(f"precision must be 'float32' or 'bfloat16', got {value!r}")
    if value == "bfloat16" and dtype != np.float32:
        raise ValueError(f"precision='bfloat16' computes in float32, but this run's dtype is {dtype}; {fix}")
    return value


def warmup_runs(dtypes: Any, precisions: Any) -> list[tuple[np.dtype, str]]:
    """The ``(dtype, precision)`` runs :func:`fastlstm.warmup` prepares: every precision in every dtype.

    ``"float32"`` (the default products) runs in every dtype, ``"bfloat16"``
    in float32 only; the float32 precision comes first.  A single dtype or
    precision counts as a list of one; repeats count once.  Refused: an
    unknown precision, none at all, ``"bfloat16"`` without float32 among the
    dtypes, and a dtype that no precision runs in.
    """
    if isinstance(dtypes, (str, np.dtype, type)):
        dtypes = [dtypes]
    wanted = list(dict.fromkeys(float_dtype(d) for d in dtypes))
    names = [precisions] if isinstance(precisions, str) else list(precisions)
    for value in names:
        if not isinstance(value, str) or value not in PRECISIONS:
            raise ValueError(f"precisions must hold 'float32' and/or 'bfloat16', got {value!r}")
    if not names:
        raise ValueError("precisions is empty: pass 'float32' and/or 'bfloat16'")
    names = sorted(set(names), key=PRECISIONS.index)
    float32 = np.dtype(np.float32)
    if "bfloat16" in names and float32 not in wanted:
        raise ValueError(
            f"precision 'bfloat16' computes in float32, but dtypes are {[d.name for d in wanted]}: "
            "add 'float32' to dtypes"
        )
    runs = [(d, p) for p in names for d in wanted if p == "float32" or d == float32]
    for d in wanted:
        if not any(run_dtype == d for run_dtype, _ in runs):
            raise ValueError(
                f"dtype {d.name} has nothing to prepare: precision 'bfloat16' computes in float32 only; "
                f"add 'float32' to precisions or drop {d.name} from dtypes"
            )
    return runs


def run_inputs(
    inputs: Any, sequence_length: Any, time_major: bool, dtype: np.dtype, output_depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validated, kernel-ready inputs and int64 lengths ``[batch]`` (shared by all drivers).

    Sizes are checked before anything is allocated: the inputs (and a copy of
    them in ``dtype``), the lengths and outputs of depth ``output_depth``.
    """
    array = inputs_3d(inputs, time_major)
    max_time, batch = (array.shape[0], array.shape[1]) if time_major else (array.shape[1], array.shape[0])
    check_size(array.shape, "inputs", dtype.itemsize, array.size)
    outputs = batch * max_time * int(output_depth)
    check_size((batch, max_time, output_depth), "outputs", dtype.itemsize, outputs)
    check_size((batch,), "sequence_length", 8, batch)
    lengths = sequence_lengths(sequence_length, batch, max_time)
    return as_kernel_array(array, dtype), lengths


def step_inputs(inputs: Any, state: Any) -> np.ndarray:
    """The inputs ``[batch, input_size]`` of one cell step, which needs a state."""
    x = real_array(inputs, "inputs")
    if x.ndim != 2:
        raise ValueError(f"inputs to a cell step must be 2-D [batch, input_size], got shape {x.shape}")
    if state is None:
        raise ValueError("a cell step needs a state; start from cell.zero_state(batch_size)")
    return x


# -- the layers around the recurrent ones: Embedding and Dense -------------------------------------
def layer_weight(value: Any, ndim: int, what: str, dtype: Any) -> np.ndarray:
    """An Embedding's or Dense layer's weight: a real array of rank ``ndim`` with no empty axis.

    Copied, C-contiguous, in ``dtype`` (None: the array's own float32/float64
    dtype, float32 for any other real dtype).
    """
    array = real_array(value, what)
    if array.ndim != ndim or 0 in array.shape:
        raise ValueError(f"{what} must be a non-empty {ndim}-D array, got shape {array.shape}")
    if dtype is None:
        resolved = array.dtype if array.dtype in SUPPORTED_DTYPES else np.dtype(np.float32)
    else:
        resolved = float_dtype(dtype)
    check_size(array.shape, what, resolved.itemsize)
    return np.array(array, dtype=resolved, order="C", copy=True)


def flag(value: Any, what: str) -> bool:
    """A bool argument (Python or numpy bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {type(value).__name__}: {value!r}")
    return bool(value)


def dense_activation(value: Any, names: Any) -> str:
    """A Dense layer's activation: one of ``names`` (None: ``"linear"``)."""
    if value is None:
        return "linear"
    if not isinstance(value, str):
        raise TypeError(
            f"a Dense layer's activation must be a name ({sorted(names)}) or None, "
            f"got {type(value).__name__}: {value!r}"
        )
    key = value.lower()
    if key not in names:
        raise ValueError(f"unknown Dense activation {value!r}; expected one of {sorted(names)} or None")
    return key


def dense_bias(bias: np.ndarray | None, units: int) -> None:
    """A Dense layer's bias: None or ``[units]``."""
    if bias is not None and bias.shape != (units,):
        raise ValueError(f"a Dense layer's bias must have shape ({units},), got {bias.shape}")


def layer_roles(roles: list[str]) -> None:
    """The order of an ``LSTMModel``'s layers: an optional ``"embedding"`` first, then
    at least one ``"recurrent"`` layer, then any number of ``"dense"`` layers."""
    for k, role in enumerate(roles):
        if role == "embedding" and k != 0:
            raise ValueError(f"layers[{k}] is an Embedding; an Embedding can only be layers[0]")
        if role == "recurrent" and "dense" in roles[:k]:
            first = roles.index("dense")
            raise ValueError(
                f"layers[{k}] is a recurrent layer after the Dense layer layers[{first}]; "
                f"Dense layers come after every recurrent layer"
            )
    if "recurrent" not in roles:
        raise ValueError("LSTMModel needs at least one recurrent layer (a cell, a Backward layer or a pair)")


def token_ids(inputs: Any, time_major: bool, vocab: int) -> np.ndarray:
    """Token ids for an Embedding of ``vocab`` rows, as C-contiguous int64 ``[batch, max_time]``.

    Time-major ids ``[max_time, batch]`` are transposed; a ValueError names the
    row and step of the first id outside ``[0, vocab)``.
    """
    try:
        array = np.asarray(inputs)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"token ids could not be read as an integer array: {exc}") from exc
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"a model with an Embedding takes integer token ids, got dtype {array.dtype} "
            f"(cast whole-number ids with ids.astype('int64'))"
        )
    if array.ndim != 2:
        layout = "[max_time, batch]" if time_major else "[batch, max_time]"
        raise ValueError(f"token ids must be 2-D {layout}, got shape {array.shape}")
    check_size(array.shape, "token ids", 8, array.size)
    ids = array.T if time_major else array
    if ids.size:
        outside = (ids < 0) | (ids >= vocab)
        first = int(np.argmax(outside))
        row, step = divmod(first, ids.shape[1])
        if outside[row, step]:
            raise ValueError(
                f"token id {ids[row, step].item()} at row {row}, step {step} is outside the "
                f"Embedding's vocabulary [0, {vocab})"
            )
    return np.ascontiguousarray(ids, dtype=np.int64)


def model_input_size(input_size: Any, embedding_dim: int | None) -> int:
    """``LSTMModel.build``'s ``input_size``: required without an Embedding, else its ``output_dim`` (or None)."""
    if input_size is None:
        if embedding_dim is None:
            raise TypeError(
                "build() needs input_size (the depth of the inputs) for a model without an Embedding"
            )
        return embedding_dim
    depth = positive_int(input_size, "input_size")
    if embedding_dim is not None and depth != embedding_dim:
        raise ValueError(f"input_size={depth} but the Embedding makes vectors of depth {embedding_dim}")
    return depth
