"""Every check of user input, in one place, raised before any compiled code runs.

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
    if (
        array.dtype == dtype
        and array.dtype.isnative
        and array.flags.c_contiguous
        and array.flags.writeable
        and array.flags.aligned
    ):
        return array
    return np.array(array, dtype=dtype, order="C", copy=True)


@functools.cache
def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not exposed on this platform
        return MAX_ELEMENTS


def check_size(shape: tuple[int, ...], what: str, itemsize: int = 8) -> None:
    """Refuse shapes whose element count overflows, or whose bytes exceed the machine's memory.

    Called before anything of that shape is allocated.
    """
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
        return np.full(batch, max_time, dtype=np.int64)
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
