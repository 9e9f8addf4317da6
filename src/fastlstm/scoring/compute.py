"""One batch through a cell or model, with only fastlstm's public API.

Shared by the local scorer and by the tasks that :mod:`fastlstm.dask` runs on
workers, so both give bitwise the same numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import numba
import numpy as np

from .. import Backward, BasicLSTMCell, Dense, Embedding, LSTMCell, LSTMModel, MultiRNNCell, dynamic_rnn
from ..cell import RNNCell

__all__ = ["BatchResult", "Scorable", "final_sizes", "run_batch", "using_numba_threads", "with_dtype"]

Scorable = RNNCell | LSTMModel


class BatchResult(NamedTuple):
    """What one batch gives: outputs ``[b, t, output_size]`` (``[b, output_size]`` for a model
    with ``return_sequences=False``) and the top recurrent layer's final state."""

    outputs: np.ndarray
    final_c: np.ndarray
    final_h: np.ndarray


@contextlib.contextmanager
def using_numba_threads(count: int) -> Iterator[None]:
    """numba's thread count set to ``count`` for the ``with`` block, restored afterwards.

    numba's setting is per thread, so this affects only the calling thread (a
    Dask task, or the local scorer).

    Raises
    ------
    ValueError
        If ``count`` is not between 1 and ``numba.config.NUMBA_NUM_THREADS``.
    """
    if not 1 <= count <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"numba threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS), "
            f"got {count}"
        )
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def with_dtype(obj: Scorable, dtype: np.dtype) -> Scorable:
    """``obj`` itself if it computes in ``dtype``, else a copy whose weights are cast to it.

    Casting the weights gives the numbers ``dynamic_rnn(cell, ..., dtype=dtype)``
    gives (it casts them the same way), and works for models too, which
    compute in their cells' dtype.
    """
    if obj.dtype == dtype:
        return obj
    if isinstance(obj, LSTMModel):
        layers = [_layer_with_dtype(layer, dtype) for layer in obj.layers]
        return LSTMModel(layers, return_sequences=obj.return_sequences)
    if isinstance(obj, MultiRNNCell):
        return MultiRNNCell([with_dtype(cell, dtype) for cell in obj.cells])
    if isinstance(obj, (BasicLSTMCell, LSTMCell)):
        copy = type(obj)(**{**obj.get_config(), "dtype": dtype.name})
        copy.set_weights(obj.get_weights())
        return copy
    raise TypeError(f"expected a fastlstm cell or LSTMModel, got {type(obj).__name__}")


def _layer_with_dtype(layer: Any, dtype: np.dtype) -> Any:
    """A layer of an :class:`LSTMModel` (a cell, a pair or a :class:`Backward`) as :func:`with_dtype` makes it."""
    if isinstance(layer, tuple):
        return tuple(with_dtype(cell, dtype) for cell in layer)
    if isinstance(layer, Backward):
        return Backward(with_dtype(layer.cell, dtype))
    if isinstance(layer, Embedding):
        return Embedding(layer.embeddings, layer.mask_zero, dtype=dtype)
    if isinstance(layer, Dense):
        return Dense(layer.kernel, layer.bias, layer.activation, dtype=dtype)
    return with_dtype(layer, dtype)


def _top_cells(obj: Scorable) -> tuple[RNNCell, ...]:
    """The cells whose final states make up the reported final state (two for a bidirectional top)."""
    top = obj.recurrent_layers[-1] if isinstance(obj, LSTMModel) else obj
    if isinstance(top, Backward):
        return (top.cell,)
    return top if isinstance(top, tuple) else (top,)


def _leaf_c_h(cell: RNNCell, state: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(c, h)`` of a cell's final state; a stack's top cell's."""
    if isinstance(cell, MultiRNNCell):
        return _leaf_c_h(cell.cells[-1], state[-1])
    if cell.state_is_tuple:
        return state.c, state.h
    return state[:, : cell.num_units], state[:, cell.num_units :]


def _leaf_units(cell: RNNCell) -> int:
    return _leaf_units(cell.cells[-1]) if isinstance(cell, MultiRNNCell) else cell.num_units


def final_sizes(obj: Scorable) -> tuple[int, int]:
    """Depths of ``(final_c, final_h)`` as :func:`run_batch` reports them."""
    cells = _top_cells(obj)
    return sum(_leaf_units(cell) for cell in cells), sum(cell.output_size for cell in cells)


def run_batch(
    obj: Scorable, inputs: np.ndarray, lengths: np.ndarray, precision: str = "float32"
) -> BatchResult:
    """Run ``obj`` over one padded batch.

    Parameters
    ----------
    obj : cell or LSTMModel
        A cell runs through :func:`fastlstm.dynamic_rnn`, a model through ``obj(...)``,
        both in ``obj.dtype``.
    inputs : ndarray, shape ``[batch, max_time, input_size]``
        Or integer token ids ``[batch, max_time]`` for a model with an Embedding.
    lengths : ndarray of int, shape ``[batch]``
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products.

    Returns
    -------
    BatchResult
        The outputs (zero past each length; a model's last layer's, ``[batch,
        output_size]`` with ``return_sequences=False``) and the top recurrent layer's final ``c`` and
        ``h``; for a bidirectional top layer, forward and backward concatenated
        on the last axis (as its outputs are).
    """
    if isinstance(obj, LSTMModel):
        outputs, states = obj(inputs, sequence_length=lengths, precision=precision)
        top_state = states[-1]
        if outputs.ndim == 3 and (obj.dense_layers or obj.embedding is not None):
            # A head gives activation(bias) past each length and Keras' masking repeats the last
            # output there: the scorer's per-step outputs are zero past each length, for every model.
            outputs[np.arange(outputs.shape[1]) >= lengths[:, None]] = 0
    else:
        outputs, top_state = dynamic_rnn(obj, inputs, sequence_length=lengths, precision=precision)
    cells = _top_cells(obj)
    states = top_state if len(cells) == 2 else (top_state,)
    parts = [_leaf_c_h(cell, state) for cell, state in zip(cells, states)]
    c = np.concatenate([c for c, _ in parts], axis=1)
    h = np.concatenate([h for _, h in parts], axis=1)
    return BatchResult(outputs, c, h)
