"""Every check of user input, in one place, raised before any compiled code runs.

Messages name the offending value and, where there is one, the fix.
"""

from __future__ import annotations

import operator
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
        raise TypeError(
            f"{what} has dtype {array.dtype}, which is not numeric; pass float32 or float64 data"
        )
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


def check_size(shape: tuple[int, ...], what: str) -> None:
    """Refuse shapes whose element count overflows or cannot be allocated."""
    total = 1
    for extent in shape:
        total *= int(extent)
    if total > MAX_ELEMENTS:
        raise ValueError(f"{what} of shape {tuple(shape)} has {total} elements: too large to allocate")


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
    return np.array(array, dtype=dtype, order="C", copy=True)
