"""What the converters share: gate reordering, the dtype rule and per-cell options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["default_dtype", "float_array", "per_cell", "to_tf_gate_order"]

# Keras (i, f, c, o) and PyTorch (i, f, g, o) -> TensorFlow (i, j, f, o): j is the candidate.
_IFCO_TO_IJFO = (0, 2, 1, 3)


def to_tf_gate_order(array: np.ndarray) -> np.ndarray:
    """Reorder the four gate blocks of the last axis from (i, f, c, o) to TF's (i, j=c, f, o)."""
    blocks = np.split(array, 4, axis=-1)
    return np.concatenate([blocks[k] for k in _IFCO_TO_IJFO], axis=-1)


def float_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a real floating-point array (float16 widened to float32)."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ValueError(f"{what} has dtype {array.dtype}; LSTM weights must be floating point")
    return array.astype(np.float32) if array.dtype.itemsize < 4 else array


def default_dtype(dtype: Any, arrays: Sequence[np.ndarray]) -> Any:
    """``dtype`` if given, else float64 when the weights are all float64 and float32 otherwise."""
    if dtype is not None:
        return dtype
    if arrays and all(array.dtype == np.float64 for array in arrays):
        return np.float64
    return np.float32


def per_cell(value: Any, count: int, name: str, order: str) -> list[Any]:
    """One value per cell: a list/tuple of ``count`` values, or one value for all of them."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(
                f"{name} has {len(value)} entries but the model has {count} cells ({order}); "
                f"pass one value for all cells or a list of {count}"
            )
        return list(value)
    return [value] * count
