"""Turn validated arrays into one call of the parallel layer kernel.

This is where rows are sorted by length, cut into blocks and spread over the
worker threads; nothing here checks user input (that is `_validation`'s job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from . import _kernels
from .activations import Activation

# Rows per block: enough to reuse each weight row from cache, few enough that a
# small batch still gives every thread work.
MAX_BLOCK_ROWS = 16
# Columns of the weight matrix processed per tile (keeps the tile in L2).
COLUMN_TILE = 512
# Bytes of input projections ([steps x rows, 4 * units]) a block keeps at once.
CHUNK_BYTES = 256 * 1024

_custom_layers: dict[int, Callable] = {}


@dataclass(frozen=True)
class LayerWeights:
    """Everything the kernel needs to know about one cell, in one dtype."""

    kernel: np.ndarray  # [depth + out_depth, 4 * units]
    bias: np.ndarray  # [4 * units]
    forget_bias: float
    activation: Activation
    peepholes: np.ndarray | None = None  # [3, units]: w_i_diag, w_f_diag, w_o_diag
    cell_clip: float | None = None
    projection: np.ndarray | None = None  # [units, out_depth]
    proj_clip: float | None = None

    @property
    def units(self) -> int:
        return self.bias.shape[0] // 4

    @property
    def out_depth(self) -> int:
        return self.units if self.projection is None else self.projection.shape[1]

    @property
    def in_depth(self) -> int:
        return self.kernel.shape[0] - self.out_depth


def block_rows(batch: int, n_workers: int) -> int:
    """Rows per block for a batch: about two blocks per worker, at most 16 rows."""
    return int(min(MAX_BLOCK_ROWS, max(1, batch // (2 * n_workers))))


def _layer_kernel(activation: Activation) -> Callable:
    if activation.function is None:
        return _kernels.lstm_layer
    key = id(activation.function)
    if key not in _custom_layers:
        _custom_layers[key] = _kernels.specialise_for_activation(activation.function)
    return _custom_layers[key]


def run_layer(
    weights: LayerWeights,
    x: np.ndarray,
    lengths: np.ndarray,
    c0: np.ndarray,
    h0: np.ndarray,
    time_major: bool,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one layer; returns ``(outputs, c_final, h_final)``.

    ``x`` is C-contiguous in the weights' dtype, ``[batch, max_time, depth]``
    (``[max_time, batch, depth]`` when ``time_major``); ``lengths`` int64;
    ``c0``/``h0`` C-contiguous ``[batch, units]``/``[batch, out_depth]``.
    With ``reverse`` each row runs backwards within its own length.
    """
    dtype = weights.kernel.dtype
    if time_major:
        max_time, batch, depth = x.shape
        x_strides = (1, batch)
    else:
        batch, max_time, depth = x.shape
        x_strides = (max_time, 1)
    out_depth = weights.out_depth
    out_shape = (max_time, batch, out_depth) if time_major else (batch, max_time, out_depth)
    c_final = c0.copy()
    h_final = h0.copy()
    if batch == 0 or max_time == 0:
        return np.zeros(out_shape, dtype), c_final, h_final
    out = np.empty(out_shape, dtype)

    n_workers = numba.get_num_threads()
    order = np.argsort(-lengths, kind="stable")
    rows_per_block = block_rows(batch, n_workers)
    block_ptr = np.append(np.arange(0, batch, rows_per_block), batch).astype(np.int64)
    block_costs = np.add.reduceat(lengths[order], block_ptr[:-1])
    worker_ptr, worker_blocks = _kernels.schedule_blocks(block_costs, n_workers)

    units = weights.units
    peepholes = weights.peepholes
    use_peepholes = peepholes is not None
    if peepholes is None:
        peepholes = np.zeros((3, units), dtype)
    projection = weights.projection
    use_projection = projection is not None
    if projection is None:
        projection = np.zeros((1, 1), dtype)
    inf = np.inf
    scalars = np.array(
        [
            weights.forget_bias,
            inf if weights.cell_clip is None else weights.cell_clip,
            inf if weights.proj_clip is None else weights.proj_clip,
        ],
        dtype=dtype,
    )
    _layer_kernel(weights.activation)(
        x.reshape(-1, depth),
        x_strides[0],
        x_strides[1],
        max_time,
        lengths,
        order,
        block_ptr,
        worker_ptr,
        worker_blocks,
        weights.kernel,
        weights.bias,
        scalars,
        peepholes,
        use_peepholes,
        projection,
        use_projection,
        weights.activation.code,
        reverse,
        (COLUMN_TILE, max(1, CHUNK_BYTES // (4 * units * dtype.itemsize))),
        c0,
        h0,
        out.reshape(-1, out_depth),
        x_strides[0],
        x_strides[1],
        c_final,
        h_final,
    )
    return out, c_final, h_final
