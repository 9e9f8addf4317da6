"""Turn validated arrays into one call of a layer kernel.

This is where rows are sorted by length, cut into blocks and spread over the
worker threads (or the units split across them, for tiny batches), where the
kernels' native addresses are looked up, and where a process forked from a
parent running numba's OpenMP threads falls back to the serial kernel.
Nothing here checks user input (that is `_validation`'s job).
"""

from __future__ import annotations

import heapq
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np
from numba.np.ufunc import parallel as numba_parallel

from . import _kernels, _threads
from ._native_calls import native_address
from .activations import Activation

# Rows per block: enough to reuse each weight row from cache, few enough that a
# small batch still gives every thread work.
MAX_BLOCK_ROWS = 16
# Columns of the weight matrix processed per tile (keeps the tile in L2).
COLUMN_TILE = 1024
# Bytes of input projections ([steps x rows, 4 * units]) a block keeps at once:
# at most this, and at most a quarter of the outputs' size over all workers.
CHUNK_BYTES = 256 * 1024

# A batch with fewer rows than workers runs with the units split across the
# workers (one prange, i.e. one thread barrier, per step) when a step has at
# least this many multiply-adds per row to share; otherwise rows are spread.
SPLIT_UNITS_MIN_STEP_MACS = 2**16

_custom_gates: dict[int, Callable] = {}
# Set in a process forked after numba's OpenMP threads started: no parallel kernel may run here.
_forked_from_openmp = False
_kernel_addresses: dict[tuple, tuple[int, int]] = {}
_split_weights: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
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


def _note_fork_in_child() -> None:
    """After ``fork``: GNU OpenMP (numba's ``omp`` threading layer) cannot be used in the child.

    numba terminates a forked child that launches a parallel kernel once the
    parent has started its OpenMP threads, which is what ``multiprocessing``'s
    default start method on Linux does to every pool worker.  Such a child runs
    the serial kernel instead (one thread, the same bits).
    """
    global _forked_from_openmp
    try:
        started = numba_parallel._is_initialized
        layer = numba_parallel.threading_layer() if started else None
    except (AttributeError, ValueError):  # cannot tell: take the unsafe case
        started, layer = True, "omp"
    if started and layer == "omp":
        _forked_from_openmp = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork_in_child)


def block_rows(batch: int, n_workers: int) -> int:
    """Rows per block for a batch: about two blocks per worker, at most 16 rows."""
    return int(min(MAX_BLOCK_ROWS, max(1, batch // (2 * n_workers))))


def _gates_kernel(activation: Activation) -> Callable:
    """The gate math kernel for the activation (a private copy for user functions)."""
    if activation.function is None:
        return _kernels.GATE_KERNELS[activation.code]
    key = id(activation.function)
    if key not in _custom_gates:
        _custom_gates[key] = _kernels.specialise_for_activation(activation.function)
    return _custom_gates[key]


def kernel_addresses(weights: LayerWeights) -> tuple[int, int]:
    """Native addresses of the matrix product and gate math kernels for ``weights``.

    The sample arguments have exactly the types the layer kernels pass: C-contiguous
    arrays in the weights' dtype, int64 counts and flags as numba sees them.
    """
    dtype = weights.kernel.dtype
    gates_kernel = _gates_kernel(weights.activation)
    key = (dtype, id(gates_kernel))  # gate kernels live as long as the process
    if key not in _kernel_addresses:
        matrix = np.empty((0, 0), dtype)
        scalar = dtype.type(0)
        _kernel_addresses[key] = (
            native_address(_kernels.matmul_accumulate, (matrix, 0, matrix, matrix, np.int64(0))),
            native_address(gates_kernel, (matrix, 0, matrix, matrix, matrix, False, scalar, scalar, 0)),
        )
    return _kernel_addresses[key]


def schedule_blocks(block_costs: np.ndarray, n_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest-processing-time-first assignment of blocks to workers.

    Returns ``(worker_ptr, worker_blocks)``: worker ``w`` runs the blocks
    ``worker_blocks[worker_ptr[w]:worker_ptr[w + 1]]``.  Which worker runs a
    block never changes its results, only the balance of the threads.
    """
    by_cost = np.argsort(-block_costs, kind="stable")
    if block_costs.shape[0] <= n_workers:  # one block per worker: the k-th costliest to worker k
        worker_ptr = np.minimum(np.arange(n_workers + 1), block_costs.shape[0]).astype(np.int64)
        return worker_ptr, by_cost.astype(np.int64)
    load = [(0, w) for w in range(n_workers)]
    owner = np.empty(block_costs.shape[0], dtype=np.int64)
    for blk in by_cost:
        worker_load, worker = heapq.heappop(load)
        owner[blk] = worker
        heapq.heappush(load, (worker_load + int(block_costs[blk]), worker))
    worker_blocks = np.argsort(owner, kind="stable").astype(np.int64)
    worker_ptr = np.searchsorted(owner[worker_blocks], np.arange(n_workers + 1)).astype(np.int64)
    return worker_ptr, worker_blocks


def use_split_units(weights: LayerWeights, batch: int, n_workers: int) -> bool:
    """Whether to split units across workers: too few rows to spread, steps big enough.

    A barrier per step costs microseconds on an idle machine and much more on a
    busy one, so only steps with plenty of work per row are split.
    """
    step_macs = 4 * weights.units * (weights.in_depth + weights.out_depth)
    return (
        n_workers > 1
        and weights.projection is None
        and batch < n_workers
        and step_macs >= SPLIT_UNITS_MIN_STEP_MACS
    )


def split_weights(weights: LayerWeights, n_parts: int) -> tuple[np.ndarray, ...]:
    """Weights regrouped by unit part for :func:`_kernels.lstm_layer_split_units`.

    Returns ``(w_x_parts, w_h_parts, bias_parts, peephole_parts)``; part ``p``
    holds the gate columns (i, j, f, o) of units ``[p * u, (p + 1) * u)``,
    ``u = ceil(units / n_parts)``, zero-padded past ``units``.
    """
    cached = _split_weights.setdefault(weights, {})
    if n_parts not in cached:
        units, depth = weights.units, weights.in_depth
        part_units = -(-units // n_parts)
        dtype = weights.kernel.dtype
        kernel = np.zeros((depth + units, 4 * part_units * n_parts), dtype)
        bias = np.zeros(4 * part_units * n_parts, dtype)
        peepholes = np.zeros((n_parts, 3, part_units), dtype)
        for p in range(n_parts):
            u0, u1 = p * part_units, min((p + 1) * part_units, units)
            for gate in range(4):
                dst = 4 * part_units * p + gate * part_units
                kernel[:, dst : dst + u1 - u0] = weights.kernel[:, gate * units + u0 : gate * units + u1]
                bias[dst : dst + u1 - u0] = weights.bias[gate * units + u0 : gate * units + u1]
            if weights.peepholes is not None:
                peepholes[p, :, : u1 - u0] = weights.peepholes[:, u0:u1]
        by_part = kernel.reshape(depth + units, n_parts, 4 * part_units).transpose(1, 0, 2)
        cached[n_parts] = (
            np.ascontiguousarray(by_part[:, :depth]),
            np.ascontiguousarray(by_part[:, depth:]),
            np.ascontiguousarray(bias.reshape(n_parts, 4 * part_units)),
            peepholes,
        )
    return cached[n_parts]


def run_layer(
    weights: LayerWeights,
    x: np.ndarray,
    lengths: np.ndarray,
    c0: np.ndarray,
    h0: np.ndarray,
    time_major: bool,
    reverse: bool = False,
    split_units: bool | None = None,
    serial: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one layer; returns ``(outputs, c_final, h_final)``.

    ``x`` is C-contiguous in the weights' dtype, ``[batch, max_time, depth]``
    (``[max_time, batch, depth]`` when ``time_major``); ``lengths`` int64;
    ``c0``/``h0`` C-contiguous ``[batch, units]``/``[batch, out_depth]``.
    With ``reverse`` each row runs backwards within its own length.
    ``split_units`` picks the kernel (None: :func:`use_split_units` decides);
    both give bitwise the same results.  ``serial`` runs the blocks one after
    the other on the calling thread (same bits), as every call does in a
    process forked after numba's OpenMP threads started.
    """
    serial = serial or _forked_from_openmp
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

    n_workers = 1 if serial else numba.get_num_threads()
    units = weights.units
    inf = np.inf
    scalars = np.array(
        [
            weights.forget_bias,
            inf if weights.cell_clip is None else weights.cell_clip,
            inf if weights.proj_clip is None else weights.proj_clip,
        ],
        dtype=dtype,
    )
    chunk_bytes = min(CHUNK_BYTES, out.nbytes // (4 * n_workers))
    tiling = np.array([COLUMN_TILE, max(1, chunk_bytes // (4 * units * dtype.itemsize))], dtype=np.int64)
    layer = LayerArrays(
        x=x.reshape(batch * max_time, depth),
        batch_stride=x_strides[0],
        time_stride=x_strides[1],
        max_time=max_time,
        lengths=lengths,
        order=np.argsort(-lengths, kind="stable"),
        reverse=reverse,
        c0=c0,
        h0=h0,
        out=out.reshape(batch * max_time, out_depth),
        c_final=c_final,
        h_final=h_final,
    )
    if serial:
        _run_rows_spread(weights, layer, scalars, tiling, 1, serial=True)
    elif split_units or (split_units is None and use_split_units(weights, batch, n_workers)):
        _run_units_split(weights, layer, scalars, tiling, n_workers)
    else:
        _run_rows_spread(weights, layer, scalars, tiling, n_workers)
    _threads.undo_openmp_nesting()
    return out, c_final, h_final


class LayerArrays(NamedTuple):
    """A layer call's inputs, outputs and row order, as the kernels see them.

    ``x``/``out`` are 2-D ``[batch * max_time, depth]`` views; step ``t`` of row
    ``b`` is line ``b * batch_stride + t * time_stride`` of both.
    """

    x: np.ndarray
    batch_stride: int
    time_stride: int
    max_time: int
    lengths: np.ndarray
    order: np.ndarray  # rows by decreasing length
    reverse: bool
    c0: np.ndarray
    h0: np.ndarray
    out: np.ndarray
    c_final: np.ndarray
    h_final: np.ndarray


def _run_rows_spread(
    weights: LayerWeights,
    layer: LayerArrays,
    scalars: np.ndarray,
    tiling: np.ndarray,
    n_workers: int,
    serial: bool = False,
) -> None:
    """Blocks of rows spread over the workers: :func:`_kernels.lstm_layer` (``serial``: one after another)."""
    dtype = weights.kernel.dtype
    batch = layer.lengths.shape[0]
    rows_per_block = block_rows(batch, n_workers)
    block_ptr = np.append(np.arange(0, batch, rows_per_block), batch).astype(np.int64)
    peepholes = weights.peepholes
    if peepholes is None:
        peepholes = np.zeros((3, weights.units), dtype)
    projection = weights.projection
    if projection is None:
        projection = np.zeros((1, 1), dtype)
    block_args = (
        *kernel_addresses(weights),
        layer.x,
        layer.batch_stride,
        layer.time_stride,
        layer.max_time,
        layer.lengths,
        weights.kernel,
        weights.bias,
        scalars,
        peepholes,
        weights.peepholes is not None,
        projection,
        weights.projection is not None,
        weights.activation.code,
        layer.reverse,
        tiling,
        layer.c0,
        layer.h0,
        layer.out,
        layer.c_final,
        layer.h_final,
    )
    block_address = native_address(_kernels.run_block, (layer.order, 0, 0, *block_args))
    if serial:
        _kernels.lstm_layer_serial(block_address, layer.order, block_ptr, block_args)
        return
    block_costs = np.add.reduceat(layer.lengths[layer.order], block_ptr[:-1])
    worker_ptr, worker_blocks = schedule_blocks(block_costs, n_workers)
    _kernels.lstm_layer(block_address, layer.order, block_ptr, worker_ptr, worker_blocks, block_args)


def _run_units_split(
    weights: LayerWeights, layer: LayerArrays, scalars: np.ndarray, tiling: np.ndarray, n_workers: int
) -> None:
    """One block, the units split over the workers: :func:`_kernels.lstm_layer_split_units`."""
    dtype = weights.kernel.dtype
    batch = layer.lengths.shape[0]
    units, depth = weights.units, weights.in_depth
    n_parts = max(n_workers, 2)
    w_x_parts, w_h_parts, bias_parts, peephole_parts = split_weights(weights, n_parts)
    part_units = peephole_parts.shape[2]
    chunk_steps = max(1, int(tiling[1]) // batch)
    x_rows = np.empty((chunk_steps * batch, depth), dtype)
    h = np.empty((batch, units), dtype)
    h_next = np.empty((batch, units), dtype)
    c = np.zeros((n_parts, batch, part_units), dtype)  # padded units stay zero
    step_args = (
        *kernel_addresses(weights),
        x_rows,
        w_x_parts,
        w_h_parts,
        bias_parts,
        scalars,
        peephole_parts,
        weights.peepholes is not None,
        weights.activation.code,
        int(tiling[0]),
        np.empty((n_parts, chunk_steps * batch, 4 * part_units), dtype),
        h,
        h_next,
        c,
        np.empty((n_parts, batch, part_units), dtype),
        layer.order,
        layer.lengths,
        layer.reverse,
        layer.out,
        layer.batch_stride,
        layer.time_stride,
    )
    step_address = native_address(_kernels.step_unit_part, (0, 0, 0, 0, 0, *step_args))
    _kernels.lstm_layer_split_units(
        step_address,
        step_args,
        layer.x,
        layer.batch_stride,
        layer.time_stride,
        layer.max_time,
        layer.lengths,
        layer.reverse,
        layer.order,
        chunk_steps,
        x_rows,
        np.empty(chunk_steps + 1, np.int64),
        h,
        h_next,
        c,
        layer.c0,
        layer.h0,
        layer.out,
        layer.c_final,
        layer.h_final,
    )
