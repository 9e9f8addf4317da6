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
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numba
import numpy as np
from numba.np.ufunc import parallel as numba_parallel

from . import _kernels, _threads
from ._kernels import CellArrays, GateScalars, KernelCalls, LayerArrays, SplitWeights, SplitWork
from ._native_calls import native_address, type_key
from .activations import SIGMOID_GATES, Activation, GateActivation

# Rows per block: enough to reuse each weight row from cache, few enough that a
# small batch still gives every thread work.
MAX_BLOCK_ROWS = 16
# Columns of the weight matrix processed per tile (keeps the tile in L2).
COLUMN_TILE = 1024
# Bytes of input projections ([steps x rows, 4 * units]) a block keeps at once:
# at most this, and at most a quarter of the outputs' size over all workers.
CHUNK_BYTES = 256 * 1024

# An embedding table's input projection (bias + embeddings @ W_x, [vocab, 4 * units]) is
# computed once and kept, so that token ids need only a row gather, when it takes at most
# this many bytes (float32 products only: bfloat16 ones gather the embedding rows instead).
PROJECTED_TABLE_BYTES = 32 * 2**20

# A batch with fewer rows than workers runs with the units split across the
# workers (one parallel region per layer call, the threads meeting at a spin-wait
# after every step) when a step has at least this many multiply-adds per row to
# share; otherwise rows are spread.
SPLIT_UNITS_MIN_STEP_MACS = 2**16
# Its chunks of steps hold at least this many input rows: the input product runs on
# register tiles of 4 rows, which read each panel of W_x once for all the rows of a chunk
# (the 6 rows a 200-step sequence would get read it three times: 10% slower at batch 1).
SPLIT_UNITS_MIN_CHUNK_ROWS = 16

# The unit-split kernel's threads wait for each other after every step. A call is held up
# when they were (a thread yielded its core while waiting, or ran the part of a thread that
# had run before) more than once per this many steps, or when a thread never got to its
# part. Two such calls in a row (one may be a passing blip, or a worker asleep when the
# call began) show other processes holding the cores: the calls that would split the units
# in the next CONTENDED_BACKOFF_SECONDS run on one thread instead (the serial row kernel:
# the same bits). Each further held-up call in a row doubles that time, up to
# CONTENDED_BACKOFF_MAX_SECONDS; a call not held up resets it.
CONTENDED_STEPS_PER_HOLD_UP = 16
CONTENDED_BACKOFF_SECONDS = 0.05
CONTENDED_BACKOFF_MAX_SECONDS = 0.8

# A user activation's gate kernel, by its Activation (one per function object, see
# activations.py): compiled once for every cell using the function, and gone with them.
_custom_gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Set in a process forked after numba's OpenMP threads started: no parallel kernel may run here.
_forked_from_openmp = False
# What the kernels need of a LayerWeights, by precision, made on its first run in it (see kernel_inputs).
_kernel_inputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_split_weights: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# A LayerWeights' projected embedding table: (weak reference to the table, projection).
_projected_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Until this time.monotonic(), calls that would split the units run on one thread, and the
# time the next held-up call sends them there for (see CONTENDED_STEPS_PER_HOLD_UP).
_split_units_held_up_until = 0.0
_split_units_backoff = CONTENDED_BACKOFF_SECONDS
# Whether the last unit-split call was held up.
_split_units_last_held_up = False


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
    recurrent_activation: GateActivation = SIGMOID_GATES  # of the gates i, f, o
    gate_clip: float | None = None  # ONNX's clip of every activation's input

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


def gates_kernel(activation: Activation, family: str = _kernels.PLAIN) -> Callable:
    """The gate math kernel of ``family`` for the activation (for a user function: its own, compiled once)."""
    if activation.function is None:
        return _kernels.GATE_KERNEL_FAMILIES[family][activation.code]
    by_family = _custom_gates.get(activation)
    if by_family is None:
        by_family = _custom_gates.setdefault(activation, {})
    kernel = by_family.get(family)
    if kernel is None:
        kernel = by_family.setdefault(family, _kernels.specialise_for_activation(activation.function, family))
    return kernel


def gate_family(weights: LayerWeights) -> str:
    """Which family of gate kernels runs ``weights``: the plain sigmoid one unless it needs more."""
    if weights.recurrent_activation.hard:
        return _kernels.HARD
    return _kernels.PLAIN if weights.gate_clip is None else _kernels.CLIPPED


@dataclass(frozen=True)
class KernelInputs:
    """A cell's weights as records, and the addresses of the kernels its layer kernels call."""

    cell: CellArrays
    gate: GateScalars
    calls: KernelCalls
    gates_kernel: Callable  # keeps a user activation's kernel (and so its address) alive
    block_kernel: Callable  # run_block, or run_block_bf16 for bfloat16 products (see _block_kernel)
    # run_block's address by the types of the caller's arrays in LayerArrays (see _run_rows_spread)
    block_addresses: dict = field(default_factory=dict)


def _product_kernel(precision: str) -> tuple[Callable, Callable | None]:
    """The matrix product kernel of ``precision`` and how it wants the weights (None: as they are).

    The bfloat16 module is imported on first use, so float32 runs never load or compile it.
    """
    if precision == "bfloat16":
        from . import _kernels_bf16

        return _kernels_bf16.matmul_accumulate_bf16, _kernels_bf16.pack_weights
    return _kernels.matmul_accumulate, None


def _block_kernel(precision: str) -> tuple[Callable, Callable | None, tuple]:
    """``(block kernel, product of packed operands or None, the types it is compiled for)``.

    ``_kernels_bf16.run_block_bf16`` rounds each product operand once, where it is made
    (an input row as it is gathered, ``h`` as it is stored), and multiplies the packed
    operands with ``product_bf16``; the unit-split kernel calls the product kernel of
    :func:`_product_kernel`, as ``_kernels.run_block`` does.
    """
    if precision == "bfloat16":
        from . import _kernels_bf16

        return _kernels_bf16.run_block_bf16, _kernels_bf16.product_bf16, _kernels_bf16.PRODUCT_ARGUMENTS
    return _kernels.run_block, None, ()


def kernel_inputs(
    weights: LayerWeights, precision: str = "float32", units_split: bool = False
) -> KernelInputs:
    """The records and kernel addresses for ``weights``; made once per ``weights`` object and precision.

    Every kernel address the layer kernels use is looked up here (matrix products and
    gate math) or, for the layer kernels' own block and step functions, from the
    records they pass, so a record's field types are always the ones compiled for:
    C-contiguous arrays and scalars in the weights' dtype, bools, int64 addresses.
    With ``precision="bfloat16"`` (float32 weights) the product operands are the
    kernel's and projection's bfloat16 packing, rounded here once (a cell's
    ``LayerWeights`` lives as long as its weights do); they have the float32
    matrices' types, so the parallel layer kernels are the float32 ones (the block
    kernel is ``run_block_bf16``). Its ``matmul`` (float32 operands, for the unit-split
    kernel only) is compiled when ``units_split`` first asks for it (``calls.matmul``
    is 0 until then).
    """
    by_precision = _kernel_inputs.get(weights)
    if by_precision is None:
        by_precision = _kernel_inputs.setdefault(weights, {})
    inputs = by_precision.get(precision)
    matmul, pack = _product_kernel(precision)
    block_kernel, product, product_arguments = _block_kernel(precision)
    matrix = np.empty((0, 0), weights.kernel.dtype)
    if inputs is not None:
        if units_split and inputs.calls.matmul == 0:
            matmul_address = native_address(matmul, (matrix, 0, matrix, matrix, 0))
            inputs = replace(inputs, calls=inputs.calls._replace(matmul=matmul_address))
            by_precision[precision] = inputs
        return inputs
    dtype = weights.kernel.dtype
    scalar = dtype.type
    inf = np.inf
    operand = (lambda matrix: matrix) if pack is None else pack
    depth = weights.in_depth
    peepholes = weights.peepholes if weights.peepholes is not None else np.zeros((3, weights.units), dtype)
    projection = operand(weights.projection) if weights.projection is not None else np.zeros((1, 1), dtype)
    cell = CellArrays(
        w_x=operand(weights.kernel[:depth]),
        w_h=operand(weights.kernel[depth:]),
        bias=weights.bias,
        peepholes=peepholes,
        projection=projection,
        use_projection=weights.projection is not None,
        proj_clip=scalar(inf if weights.proj_clip is None else weights.proj_clip),
    )
    recurrent = weights.recurrent_activation
    gate = GateScalars(
        forget_bias=scalar(weights.forget_bias),
        cell_clip=scalar(inf if weights.cell_clip is None else weights.cell_clip),
        use_peepholes=weights.peepholes is not None,
        gate_clip=scalar(inf if weights.gate_clip is None else weights.gate_clip),
        hard_alpha=scalar(recurrent.alpha),
        hard_beta=scalar(recurrent.beta),
        hard_top=scalar(recurrent.top),
    )
    gates = gates_kernel(weights.activation, gate_family(weights))
    needs_matmul = product is None or units_split  # bfloat16 blocks multiply with product
    calls = KernelCalls(
        matmul=native_address(matmul, (matrix, 0, matrix, matrix, 0)) if needs_matmul else 0,
        gates=native_address(gates, (matrix, 0, matrix, matrix, matrix, gate)),
        product=0 if product is None else native_address(product, product_arguments),
    )
    inputs = KernelInputs(cell=cell, gate=gate, calls=calls, gates_kernel=gates, block_kernel=block_kernel)
    by_precision[precision] = inputs
    return inputs


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

    The threads meet after every step (a spin-wait: under a microsecond on an
    idle machine, much more on a busy one), so only steps with plenty of work
    per row are split.
    """
    step_macs = 4 * weights.units * (weights.in_depth + weights.out_depth)
    return (
        n_workers > 1
        and weights.projection is None
        and batch < n_workers
        and step_macs >= SPLIT_UNITS_MIN_STEP_MACS
    )


def split_weights(weights: LayerWeights, n_parts: int, precision: str = "float32") -> SplitWeights:
    """Weights regrouped by unit part for :func:`_kernels.lstm_layer_split_units`.

    Part ``p`` holds the gate columns (i, j, f, o) of units ``[p * u, (p + 1) * u)``,
    ``u = ceil(units / n_parts)``, zero-padded past ``units``.  With
    ``precision="bfloat16"`` each part's ``w_x`` and ``w_h`` are packed as
    :func:`kernel_inputs` packs a cell's.
    """
    cached = _split_weights.setdefault(weights, {})
    _, pack = _product_kernel(precision)
    if pack is not None:
        if (n_parts, precision) not in cached:
            split = split_weights(weights, n_parts)
            cached[n_parts, precision] = split._replace(
                w_x=np.stack([pack(part) for part in split.w_x]),
                w_h=np.stack([pack(part) for part in split.w_h]),
            )
        return cached[n_parts, precision]
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
        cached[n_parts] = SplitWeights(
            w_x=np.ascontiguousarray(by_part[:, :depth]),
            w_h=np.ascontiguousarray(by_part[:, depth:]),
            bias=np.ascontiguousarray(bias.reshape(n_parts, 4 * part_units)),
            peepholes=peepholes,
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
    precision: str = "float32",
    tokens: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one layer; returns ``(outputs, c_final, h_final)``.

    ``x`` is C-contiguous in the weights' dtype, ``[batch, max_time, depth]``
    (``[max_time, batch, depth]`` when ``time_major``); ``lengths`` int64;
    ``c0``/``h0`` C-contiguous ``[batch, units]``/``[batch, out_depth]``.
    With ``reverse`` each row runs backwards within its own length.
    ``split_units`` picks the kernel (None: :func:`use_split_units` decides,
    and for a while after a split call that found its threads held up, the
    serial one runs instead: see ``CONTENDED_STEPS_PER_HOLD_UP``); all give
    bitwise the same results.  ``serial`` runs the blocks one after the other
    on the calling thread (same bits), as every call does in a process forked
    after numba's OpenMP threads started.  ``precision=
    "bfloat16"`` (float32 weights only) runs the matrix products in bfloat16
    (``_kernels_bf16``): the same layer kernels, another product kernel.

    With ``tokens`` (int64 ``[batch, max_time]``, or time-major, each in
    ``[0, vocab)``, C-contiguous) ``x`` is a read-only embedding table
    ``[vocab, depth]`` whose rows the kernel gathers step by step; for float32
    products and a table whose projection ``bias + x @ W_x`` fits
    :data:`PROJECTED_TABLE_BYTES`, that projection (made once per weights and
    table, by the same product kernel) is gathered instead. Both give bitwise
    the outputs of ``x[tokens]`` fed as inputs: the product sums each row in a
    fixed order, whatever the other rows.
    """
    serial = serial or _forked_from_openmp
    dtype = weights.kernel.dtype
    if tokens is not None:
        dims = tokens.shape
        depth = x.shape[1]
    else:
        dims = x.shape[:2]
        depth = x.shape[2]
    if time_major:
        max_time, batch = dims
        x_strides = (1, batch)
    else:
        batch, max_time = dims
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
    chunk_bytes = min(CHUNK_BYTES, out.nbytes // (4 * n_workers))
    tiling = np.array([COLUMN_TILE, max(1, chunk_bytes // (4 * units * dtype.itemsize))], dtype=np.int64)
    split = not serial and (
        split_units or (split_units is None and use_split_units(weights, batch, n_workers))
    )
    if split and split_units is None and time.monotonic() < _split_units_held_up_until:
        split, serial = False, True
    inputs = kernel_inputs(weights, precision, units_split=split)
    projected = tokens is not None and not split and precision == "float32" and _fits_projection(weights, x)
    layer = LayerArrays(
        x=x if tokens is not None else x.reshape(batch * max_time, depth),
        tokens=_NO_TOKENS if tokens is None else tokens.reshape(batch * max_time),
        projected=projected,
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
    if projected:
        layer = layer._replace(x=projected_table(weights, x, inputs))
    if serial:
        _run_rows_spread(inputs, layer, tiling, 1, serial=True)
    elif split:
        _run_units_split(weights, inputs, layer, tiling, n_workers, precision)
    else:
        _run_rows_spread(inputs, layer, tiling, n_workers)
    _threads.undo_openmp_nesting()
    return out, c_final, h_final


_NO_TOKENS = np.empty(0, np.int64)


def _fits_projection(weights: LayerWeights, table: np.ndarray) -> bool:
    return table.shape[0] * 4 * weights.units * table.itemsize <= PROJECTED_TABLE_BYTES


def projected_table(weights: LayerWeights, table: np.ndarray, inputs: KernelInputs) -> np.ndarray:
    """``bias + table @ W_x`` ``[vocab, 4 * units]`` by the layer's own product kernel; kept per weights.

    The one kept per ``weights`` is for the last table seen (an Embedding's
    read-only array, so it cannot change under the cache).
    """
    kept = _projected_tables.get(weights)
    if kept is not None and kept[0]() is table:
        return kept[1]
    projection = np.empty((table.shape[0], 4 * weights.units), table.dtype)
    projection[:] = weights.bias
    # Kept writeable, as every kernel input (a read-only array is another type: another compile).
    _kernels.project_table(inputs.calls, table, inputs.cell.w_x, projection, COLUMN_TILE)
    _projected_tables[weights] = (weakref.ref(table), projection)
    return projection


def _run_rows_spread(
    inputs: KernelInputs, layer: LayerArrays, tiling: np.ndarray, n_workers: int, serial: bool = False
) -> None:
    """Blocks of rows spread over the workers: :func:`_kernels.lstm_layer` (``serial``: one after another)."""
    batch = layer.lengths.shape[0]
    rows_per_block = block_rows(batch, n_workers)
    block_ptr = np.append(np.arange(0, batch, rows_per_block), batch).astype(np.int64)
    # The arrays of `layer` that run_layer makes (order, out, c_final, h_final) and the
    # records of `inputs` always have the same types for one LayerWeights; only the
    # caller's arrays can change run_block's specialisation.
    caller_types = type_key((layer.x, layer.lengths, layer.c0, layer.h0))
    # The layer kernels take the records as plain tuples (see _kernels.as_records).
    records = (tuple(inputs.calls), tuple(layer), tuple(inputs.cell), tuple(inputs.gate), tiling)
    block_address = inputs.block_addresses.get(caller_types)
    if block_address is None:
        block_address = native_address(inputs.block_kernel, (0, 0, *records))
        inputs.block_addresses[caller_types] = block_address
    if serial:
        _kernels.lstm_layer_serial(block_address, block_ptr, *records)
        return
    block_costs = np.add.reduceat(layer.lengths[layer.order], block_ptr[:-1])
    worker_ptr, worker_blocks = schedule_blocks(block_costs, n_workers)
    _kernels.lstm_layer(block_address, block_ptr, worker_ptr, worker_blocks, *records)


def _run_units_split(
    weights: LayerWeights,
    inputs: KernelInputs,
    layer: LayerArrays,
    tiling: np.ndarray,
    n_workers: int,
    precision: str,
) -> None:
    """One block, the units split over the workers: :func:`_kernels.lstm_layer_split_units`.

    The second held-up call in a row (see ``CONTENDED_STEPS_PER_HOLD_UP``) sends the
    unit-split calls of the next ``_split_units_backoff`` seconds to one thread.
    """
    global _split_units_held_up_until, _split_units_backoff, _split_units_last_held_up
    dtype = weights.kernel.dtype
    batch = layer.lengths.shape[0]
    units, depth = weights.units, weights.in_depth
    n_parts = max(n_workers, 2)
    split = split_weights(weights, n_parts, precision)
    part_units = split.peepholes.shape[2]
    chunk_steps = max(1, max(int(tiling[1]), SPLIT_UNITS_MIN_CHUNK_ROWS) // batch)
    sync = np.empty((_kernels.SYNC_FIELDS, n_parts, _kernels.SYNC_STRIDE), np.int64)
    work = SplitWork(
        x_rows=np.empty((n_parts, chunk_steps * batch, depth), dtype),
        chunk_start=np.empty((n_parts, chunk_steps + 1), np.int64),
        gates=np.empty((n_parts, chunk_steps * batch, 4 * part_units), dtype),
        h=np.empty((2, batch, units), dtype),
        c=np.zeros((n_parts, batch, part_units), dtype),  # padded units stay zero
        m=np.empty((n_parts, batch, part_units), dtype),
        sync=sync.reshape(-1),
    )
    column_tile = int(tiling[0])
    # Records, not plain tuples as in _run_rows_spread: this kernel runs only steps big
    # enough for numba's slower typing of named tuples not to matter (see as_records).
    step_address = native_address(
        _kernels.step_unit_part, (0, 0, 0, 0, inputs.calls, split, inputs.gate, work, layer, column_tile)
    )
    _kernels.lstm_layer_split_units(
        step_address, inputs.calls, split, inputs.gate, work, layer, chunk_steps, column_tile
    )
    steps = int(layer.lengths.max())
    hold_ups = int(sync[_kernels.SYNC_HELD_UP, :, 0].sum())
    missing = steps > 0 and not sync[_kernels.SYNC_STARTED, :, 0].all()
    held_up = hold_ups * CONTENDED_STEPS_PER_HOLD_UP > steps or missing
    if held_up and _split_units_last_held_up:
        _split_units_held_up_until = time.monotonic() + _split_units_backoff
        _split_units_backoff = min(2 * _split_units_backoff, CONTENDED_BACKOFF_MAX_SECONDS)
    elif not held_up:
        _split_units_backoff = CONTENDED_BACKOFF_SECONDS
    _split_units_last_held_up = held_up
