"""bfloat16 matrix products for ``precision="bfloat16"``: ``g += bf16(a) @ bf16(w)`` in float32.

Only the products change precision: the weights are rounded to bfloat16 once
(:func:`pack_weights`), the left operand as it enters each product
(:func:`round_to_bf16` inside :func:`matmul_accumulate_bf16`); every sum is a
float32 accumulation.  The arithmetic is that of the x86 instruction
``VDPBF16PS`` (AVX512-BF16), which the products use where the CPU has it; on
other CPUs an emulation gives the same bits.

``VDPBF16PS`` semantics (Intel SDM, "VDPBF16PS -- Dot Product of BF16 Pairs
Accumulated into Packed Single Precision"; checked bit for bit on this
project's Zen 4 machine, see ``tests/test_kernels_bf16.py``): for each float32
lane, with the pair ``(lo, hi)`` = elements ``(2p, 2p + 1)`` along ``k``::

    acc = FTZ(RNE(DAZ(acc) + a_hi * w_hi))     # exact product, one rounding
    acc = FTZ(RNE(DAZ(acc) + a_lo * w_lo))

DAZ: a denormal input counts as a zero of its sign; FTZ: a result that is
below the smallest normal float32 *after* rounding to 24 bits with an
unbounded exponent becomes a zero of its sign; RNE: round to nearest even,
whatever MXCSR says.

The emulation (:func:`matmul_bf16_emulated`) first computes in float32: a
product of two bfloat16 numbers (at most 16 significant bits) is exact there
unless it underflows, so each addition is the instruction's one rounding while
no denormal or underflowing product appears (:func:`_float32_columns` checks).
If one does, it starts again in float64 (:func:`_dp_step`): the product is
exact, the sum rounds once to float32 (double rounding from 53 to 24 bits is
innocuous for a sum of two such numbers), DAZ and FTZ are applied as written
above.  NaN stays NaN; its payload may differ between the paths.

Element ``g[r, n]`` gets the pairs in increasing ``p``, ``hi`` before ``lo``,
on every path (register tiles, column remainders, emulation), so a row's
result never depends on the other rows or on the thread count.

A layer runs through :func:`run_block_bf16` (``_kernels.run_block``'s
arithmetic, with the rounding where each operand is made: an input row as it
is gathered, ``h`` once per step as it is stored) and :func:`product_bf16`,
called at its address; the unit-split kernel calls
:func:`matmul_accumulate_bf16`, which rounds its float32 left operand itself.

Compile options live here, not in ``_config``: numba's on-disk cache keys a
kernel on its own source file only.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from ._config import kernel_jit
from ._kernels import CellArrays, GateScalars, KernelCalls, LayerArrays

# Products: no fastmath at all (the emulation's signed zeros and NaN tests must stay as written).
# Called only through native addresses (``_native_calls``): no Python or C wrappers.
_OPTIONS = {
    "cache": True,
    "error_model": "numpy",
    "nogil": True,
    "boundscheck": False,
    "no_cpython_wrapper": True,
    "no_cfunc_wrapper": True,
}
_INLINE = {"cache": True, "error_model": "numpy", "nogil": True, "boundscheck": False, "inline": "always"}
_CALLED = {"cache": True, "error_model": "numpy", "nogil": True, "boundscheck": False}

_TINY = np.float32(np.finfo(np.float32).tiny)  # 2**-126, the smallest normal float32
# Below this a sum rounds (to 24 bits, unbounded exponent) to a denormal: FTZ flushes it.
_FLUSH_BELOW = float(2.0**-126 - 2.0**-151)
_U16 = np.uint32(16)
_HIGH_HALF = np.uint32(0xFFFF0000)
_MAGNITUDE = np.uint32(0x7FFFFFFF)
_EXPONENT = np.uint32(0x7F800000)
_MANTISSA = np.uint32(0x007FFFFF)
_SIGN16 = np.uint32(0x8000)
_QUIET16 = np.uint32(0x0040)
_ROUND_BIAS = np.uint32(0x7FFF)
_ONE = np.uint32(1)

LANES = 16  # float32 lanes of one 512-bit register
TILE_ROWS = 4
TILE_VECTORS = 4  # 4 rows x 4 registers = 16 accumulators of the 32 zmm registers
BLOCK = TILE_VECTORS * LANES  # columns per block of packed weights
# Weight pairs per register-tile pass: 256 x 64 columns x 4 bytes = 64 KiB, read from L2 by each
# group of rows (on 512 units 5% faster than 16 KiB panels in L1: fewer loads and stores of g).
PAIR_PANEL = 256


def _has_avx512_bf16() -> bool:
    """Whether the target numba compiles for has AVX512-BF16 (``NUMBA_CPU_FEATURES``, else the host's)."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    enabled = features.split(",")
    return "+avx512bf16" in enabled and "+avx512f" in enabled


HAS_AVX512_BF16 = _has_avx512_bf16()


def round_to_bf16(x: np.ndarray) -> np.ndarray:
    """The bfloat16 bits (uint16) nearest to float32 ``x``, ties to even; denormals flush to zero.

    This is ``VCVTNE2PS2BF16``'s conversion: a float32 denormal becomes a zero
    of its sign (the products would treat a bfloat16 denormal as zero anyway),
    a NaN a quiet NaN of its sign, a value beyond the largest bfloat16 an
    infinity.
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    exponent = bits & _EXPONENT
    rounded = (bits + _ROUND_BIAS + ((bits >> _U16) & _ONE)) >> _U16
    special = np.where((bits & _MANTISSA) != 0, (bits >> _U16) | _QUIET16, bits >> _U16)
    out = np.where(exponent == 0, (bits >> _U16) & _SIGN16, rounded)
    out = np.where(exponent == _EXPONENT, special, out)
    return out.astype(np.uint16)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """The float32 values of bfloat16 ``bits`` (uint16): exact."""
    return (np.asarray(bits, dtype=np.uint32) << _U16).view(np.float32)


def pack_weights(w: np.ndarray) -> np.ndarray:
    """``w`` ``[k, n]`` float32 as bfloat16 pairs along ``k`` in 64-column blocks, for the products.

    Returns ``[blocks * pairs, 64]`` with ``pairs = ceil(k / 2)``, ``blocks =
    ceil(n / 64)``: the 32-bit word at row ``b * pairs + p``, column ``c``
    holds the bfloat16 of ``w[2p, 64b + c]`` in its low half and of ``w[2p + 1,
    64b + c]`` in its high half (the layout ``VDPBF16PS`` reads), zero past
    ``k`` and ``n``; a register tile's panel of weights is one contiguous
    stretch of memory.  The words are stored in a float32 array: the layer
    kernels pass it on typed like float32 weights of the same rank, so the
    bfloat16 mode adds no specialisation of them (only the product kernels
    here read it, as the bits they are).
    """
    k, n = w.shape
    blocks = -(-n // BLOCK)
    pairs = k // 2 + k % 2
    halves = np.zeros((2 * pairs, blocks * BLOCK), dtype=np.uint32)
    halves[:k, :n] = round_to_bf16(w)
    words = halves[0::2] | (halves[1::2] << _U16)
    by_block = words.reshape(pairs, blocks, BLOCK).transpose(1, 0, 2).reshape(blocks * pairs, BLOCK)
    return np.ascontiguousarray(by_block).view(np.float32)


@intrinsic
def _float32_bits(typingctx, x):
    """The IEEE bits of a float32, as a uint32."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(x), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        low = args[0] if bits.bitwidth == 32 else builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@kernel_jit(_INLINE)
def _bf16_bits(value):
    """:func:`round_to_bf16` of one float32, as a uint16; branch-free, so loops of it vectorise."""
    bits = _float32_bits(value)
    exponent = bits & _EXPONENT
    high = bits >> _U16
    rounded = np.uint32(bits + np.uint32(_ROUND_BIAS + (high & _ONE))) >> _U16
    special = np.uint32(high | _QUIET16) if bits & _MANTISSA != 0 else high
    out = rounded if exponent != _EXPONENT else special
    return np.uint16(out if exponent != 0 else high & _SIGN16)


@kernel_jit(_INLINE)
def _pack_rows(a, n_rows, pairs):
    """Rows ``a[:n_rows]`` (float32) rounded to bfloat16 and packed in pairs: uint32 ``[n_rows, pairs]``.

    Element ``2p`` is the low half of word ``p`` (little-endian halves), zero past ``a``'s depth.
    """
    depth = a.shape[1]
    halves = np.empty((n_rows, 2 * pairs), dtype=np.uint16)
    for r in range(n_rows):
        ar = a[r]
        hr = halves[r]
        for k in range(depth):
            hr[k] = _bf16_bits(ar[k])
        for k in range(depth, 2 * pairs):
            hr[k] = 0
    return halves.view(np.uint32)


@kernel_jit(_INLINE)
def _dp_step(acc, product):
    """One accumulation of ``VDPBF16PS``: ``FTZ(RNE(DAZ(acc) + product))``.

    ``acc`` float32, ``product`` the exact float64 product of two bfloat16
    numbers.  Signed zeros and NaN as the instruction gives them (``x * 0.0``
    keeps the sign; the comparisons are false for NaN).  Selects, no branches,
    so that loops of it vectorise.
    """
    start = acc if abs(acc) >= _TINY else acc * np.float32(0.0)
    total = np.float64(start) + product
    size = abs(total)
    smallest = _TINY if total > 0.0 else -_TINY  # what a sum just below it rounds up to
    low = smallest if size >= _FLUSH_BELOW else np.float32(total * 0.0)
    return np.float32(total) if size >= _TINY else low


@kernel_jit(_CALLED)
def _emulate_columns(ab, r0, r1, w, g, c0, c1):
    """``g[r0:r1, c0:c1] += ab @ w`` by :func:`_dp_step`, pairs in increasing order, ``hi`` first.

    ``w`` as :func:`pack_weights` gives it; its float32 elements are read as
    their bits.  The loop over columns starts at 0 on slices, so no index can
    be negative and it vectorises.
    """
    pairs = ab.shape[1]
    for r in range(r0, r1):
        abr = ab[r]
        for b in range(c0 // BLOCK, -(-c1 // BLOCK)):
            lo = max(c0, b * BLOCK)
            gb = g[r, lo : min(c1, (b + 1) * BLOCK)]
            for p in range(pairs):
                a_lo = np.float64(_float32_from_bits(abr[p] << _U16))
                a_hi = np.float64(_float32_from_bits(abr[p] & _HIGH_HALF))
                wp = w[b * pairs + p, lo - b * BLOCK :]
                for c in range(gb.shape[0]):
                    word = _float32_bits(wp[c])
                    acc = _dp_step(gb[c], a_hi * np.float64(_float32_from_bits(word & _HIGH_HALF)))
                    gb[c] = _dp_step(acc, a_lo * np.float64(_float32_from_bits(word << _U16)))


class _BFloat16(ir.Type):
    """LLVM's ``bfloat`` type, which llvmlite's ``ir`` lacks (only its name is needed)."""

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BFloat16)

    def __hash__(self) -> int:
        return hash("bfloat")


def _bf16_tile(n_rows, n_vectors):
    """An intrinsic: ``g[rows, 16 first:16 (first + n_vectors)] = init[rows, same] + ab[rows, p0:p1] @ w``.

    ``ab`` holds bfloat16 pairs (uint32 ``[rows, pairs]``), ``w`` packed
    weights (:func:`pack_weights`: ``[blocks * pairs, 64]``), ``g`` float32;
    register ``v`` covers the 16 columns from ``16 (first + v)``.
    The ``n_rows * n_vectors`` accumulators stay in zmm registers over the
    panel ``p0 <= p < p1``: per pair, ``n_vectors`` loads of ``w``, one
    broadcast of ``ab[row + r, p]`` per row and one ``VDPBF16PS`` per
    accumulator.  The accumulators start from ``init`` (``g`` itself, or the
    bias as rows of stride 0: :func:`_bias_rows`).  ``ab``, ``w`` and ``g``
    C-contiguous; bounds are the caller's.
    """

    @intrinsic
    def bf16_tile(typingctx, ab, row, w, g, init, first, p_start, p_stop):
        if not all(
            isinstance(arg, types.Array) and arg.layout == "C" and arg.ndim == 2 for arg in (ab, w, g)
        ):
            return None
        if not (isinstance(init, types.Array) and init.ndim == 2 and init.dtype == types.float32):
            return None

        def codegen(context, builder, sig, args):
            ab_array, w_array, g_array, init_array = (
                context.make_array(sig.args[i])(context, builder, args[i]) for i in (0, 2, 3, 4)
            )
            row_index, first_vector, p_first, p_last = args[1], args[5], args[6], args[7]
            pairs = builder.extract_value(ab_array.shape, 1)
            int32, int64 = ir.IntType(32), ir.IntType(64)
            floats = ir.VectorType(ir.FloatType(), LANES)
            words = ir.VectorType(int32, LANES)
            bf16s = ir.VectorType(_BFloat16(), 2 * LANES)
            byte_ptr = ir.IntType(8).as_pointer()

            def constant(value):
                return ir.Constant(int64, value)

            def address(array, offsets, pointee):
                """Pointer to ``array[offsets]`` (int64 element indices) as ``pointee*``."""
                offset = constant(0)
                for axis, index in enumerate(offsets):
                    offset = builder.add(
                        offset, builder.mul(index, builder.extract_value(array.strides, axis))
                    )
                return builder.bitcast(
                    builder.gep(builder.bitcast(array.data, byte_ptr), [offset]), pointee.as_pointer()
                )

            dot = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(floats, [floats, bf16s, bf16s]),
                "llvm.x86.avx512bf16.dpbf16ps.512",
            )
            splat = ir.Constant(ir.VectorType(int32, LANES), [0] * LANES)
            g_pointers, accumulators, w_rows = [], [], []
            for v in range(n_vectors):
                vector = builder.add(first_vector, constant(v))
                block_row = builder.mul(builder.udiv(vector, constant(TILE_VECTORS)), pairs)
                lane = builder.mul(builder.urem(vector, constant(TILE_VECTORS)), constant(LANES))
                w_rows.append((block_row, lane))
            for r in range(n_rows):
                for v in range(n_vectors):
                    column = builder.mul(builder.add(first_vector, constant(v)), constant(LANES))
                    at = (builder.add(row_index, constant(r)), column)
                    g_pointer = address(g_array, at, floats)
                    accumulator = cgutils.alloca_once(builder, floats)
                    builder.store(builder.load(address(init_array, at, floats), align=4), accumulator)
                    g_pointers.append(g_pointer)
                    accumulators.append(accumulator)
            ab_rows = [
                address(ab_array, (builder.add(row_index, constant(r)), constant(0)), int32)
                for r in range(n_rows)
            ]
            with cgutils.for_range_slice(builder, p_first, p_last, constant(1)) as (p, _):
                w_vectors = [
                    builder.bitcast(
                        builder.load(address(w_array, (builder.add(block_row, p), lane), words), align=4),
                        bf16s,
                    )
                    for block_row, lane in w_rows
                ]
                for r in range(n_rows):
                    pair = builder.load(builder.gep(ab_rows[r], [p]), align=4)
                    lane0 = builder.insert_element(
                        ir.Constant(words, ir.Undefined), pair, ir.Constant(int32, 0)
                    )
                    broadcast = builder.bitcast(
                        builder.shuffle_vector(lane0, ir.Constant(words, ir.Undefined), splat), bf16s
                    )
                    for v in range(n_vectors):
                        accumulator = accumulators[r * n_vectors + v]
                        builder.store(
                            builder.call(dot, [builder.load(accumulator), w_vectors[v], broadcast]),
                            accumulator,
                        )
            for g_pointer, accumulator in zip(g_pointers, accumulators):
                builder.store(builder.load(accumulator), g_pointer, align=4)
            return context.get_dummy_value()

        return types.none(ab, row, w, g, init, first, p_start, p_stop), codegen

    return bf16_tile


# Register tiles (rows x registers): 4 x 4 for groups of four rows; one or two rows span two
# blocks (8 registers) to have enough independent accumulators; 3 x 4 for three rows; 1 register
# wide ones for the last block's full vectors.
_tile_4x4 = _bf16_tile(4, 4)
_tile_3x4 = _bf16_tile(3, 4)
_tile_2x8 = _bf16_tile(2, 8)
_tile_2x4 = _bf16_tile(2, 4)
_tile_1x8 = _bf16_tile(1, 8)
_tile_1x4 = _bf16_tile(1, 4)
_tile_4x1 = _bf16_tile(4, 1)
_tile_3x1 = _bf16_tile(3, 1)
_tile_2x1 = _bf16_tile(2, 1)
_tile_1x1 = _bf16_tile(1, 1)


@kernel_jit(_CALLED)
def _full_blocks(ab, row, n, w, g, init, blocks, p0, p1):
    """Rows ``row:row + n`` (1 to 4) of the full blocks ``0:blocks``, pairs ``p0:p1``, from ``init``."""
    if n == 4:
        for b in range(blocks):
            _tile_4x4(ab, row, w, g, init, TILE_VECTORS * b, p0, p1)
    elif n == 3:
        for b in range(blocks):
            _tile_3x4(ab, row, w, g, init, TILE_VECTORS * b, p0, p1)
    elif n == 2:
        for b in range(0, blocks - 1, 2):
            _tile_2x8(ab, row, w, g, init, TILE_VECTORS * b, p0, p1)
        if blocks % 2:
            _tile_2x4(ab, row, w, g, init, TILE_VECTORS * (blocks - 1), p0, p1)
    else:
        for b in range(0, blocks - 1, 2):
            _tile_1x8(ab, row, w, g, init, TILE_VECTORS * b, p0, p1)
        if blocks % 2:
            _tile_1x4(ab, row, w, g, init, TILE_VECTORS * (blocks - 1), p0, p1)


@kernel_jit(_CALLED)
def _last_block(ab, row, n, w, g, init, block, vectors, p0, p1):
    """Rows ``row:row + n`` (1 to 4), the first ``vectors`` registers of block ``block``, from ``init``."""
    for v in range(vectors):
        sub = block * TILE_VECTORS + v
        if n == 4:
            _tile_4x1(ab, row, w, g, init, sub, p0, p1)
        elif n == 3:
            _tile_3x1(ab, row, w, g, init, sub, p0, p1)
        elif n == 2:
            _tile_2x1(ab, row, w, g, init, sub, p0, p1)
        else:
            _tile_1x1(ab, row, w, g, init, sub, p0, p1)


@intrinsic
def _any_layout(typingctx, array):
    """``array`` typed as of any layout ("A"), so that one specialisation of a product takes all its ``init``."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, sig, args):
        return impl_ret_borrowed(context, builder, sig.return_type, args[0])

    return array.copy(layout="A")(array), codegen


@kernel_jit(_CALLED)
def _panel(ab, n_rows, w, g, init, p0, p1):
    """``g[:n_rows] = init[:n_rows] + ab[:n_rows, p0:p1] @ w`` over the columns the register tiles cover."""
    width = g.shape[1]
    blocks = width // BLOCK
    vectors = (width - blocks * BLOCK) // LANES
    groups = n_rows // TILE_ROWS
    last = groups * TILE_ROWS
    for b in range(blocks):
        for q in range(groups):
            _tile_4x4(ab, TILE_ROWS * q, w, g, init, TILE_VECTORS * b, p0, p1)
    for v in range(vectors):
        for q in range(groups):
            _tile_4x1(ab, TILE_ROWS * q, w, g, init, TILE_VECTORS * blocks + v, p0, p1)
    if last < n_rows:
        _full_blocks(ab, last, n_rows - last, w, g, init, blocks, p0, p1)
        _last_block(ab, last, n_rows - last, w, g, init, blocks, vectors, p0, p1)


@kernel_jit(_INLINE)
def _product_native(ab, n_rows, w, g, init):
    """``g[:n_rows] = init[:n_rows] + ab[:n_rows] @ w`` with ``VDPBF16PS``; ``ab`` bfloat16 pairs.

    ``ab`` uint32 ``[rows, pairs]`` (:func:`_pack_rows`), ``w``
    :func:`pack_weights` of a ``[k, n]`` matrix, ``g`` float32 ``[rows, n]``,
    ``init`` ``g`` itself (``g +=``) or :func:`_bias_rows`.  Register tiles of 4
    rows over the full 64-column blocks and then one-register tiles over the
    last block's full 16 columns, each block's panel of ``PAIR_PANEL`` pairs
    taken by every group of four rows while it is in cache (one panel when
    one group covers all rows: nothing to reuse); the last ``n_rows % 4``
    rows by the 3-, 2- and 1-row tiles; the last ``n % 16`` columns by
    :func:`_emulate_columns`.  The first panel starts from ``init``, the
    others from ``g``.
    """
    width = g.shape[1]
    if width == 0 or n_rows == 0:
        return
    pairs = w.shape[0] // -(-width // BLOCK)
    done = (width // LANES) * LANES
    if pairs == 0 or done < width:  # the columns no register tile starts from init
        first = 0 if pairs == 0 else done
        for r in range(n_rows):
            gr = g[r]
            ir = init[r]
            for c in range(first, width):
                gr[c] = ir[c]
    if pairs == 0:
        return
    panel = PAIR_PANEL if n_rows > TILE_ROWS else pairs
    g_any = _any_layout(g)
    for p0 in range(0, pairs, panel):  # one call site: the tiles are compiled once
        _panel(ab, n_rows, w, g, init if p0 == 0 else g_any, p0, min(p0 + panel, pairs))
    if done < width:
        _emulate_columns(ab, 0, n_rows, w, g, done, width)


@kernel_jit(_OPTIONS)
def matmul_bf16_native(a, n_rows, w, g, column_tile):
    """``g[:n_rows] += bf16(a[:n_rows]) @ w`` with ``VDPBF16PS`` (AVX512-BF16 CPUs only).

    ``a`` float32 ``[rows, k]``, ``w`` :func:`pack_weights` of a ``[k, n]``
    matrix, ``g`` float32 ``[rows, n]``: :func:`_pack_rows` of ``a``, then
    :func:`_product_native`.  ``column_tile`` is the float32 kernel's
    argument, unused here.
    """
    width = g.shape[1]
    if width == 0:
        return
    _product_native(_pack_rows(a, n_rows, w.shape[0] // -(-width // BLOCK)), n_rows, w, g, g)


@kernel_jit(_INLINE)
def _is_tiny(x):
    """1 if ``x`` is a nonzero float32 below the smallest normal (a denormal), else 0."""
    return np.uint32(abs(x) < _TINY) & np.uint32(x != np.float32(0.0))


@kernel_jit(_INLINE)
def _float32_columns(ab, n_rows, w, g):
    """``g[:n_rows] += ab @ w`` in float32 arithmetic, in :func:`_emulate_columns`' order.

    A product of two bfloat16 numbers is exact in float32 unless it underflows,
    so each step is ``VDPBF16PS``'s one rounding of the sum -- as long as no
    product of nonzero factors falls below the smallest normal float32 (it
    would not be exact) and no sum or starting value is a denormal (where the
    instruction flushes, DAZ/FTZ, and float32 does not; a sum of exact
    products and normal numbers is a multiple of 2**-149, so a sum below the
    smallest normal that is not zero is a denormal).  Returns whether any of
    these was met (then ``g`` is not the instruction's result).
    """
    pairs = ab.shape[1]
    width = g.shape[1]
    seen = np.uint32(0)
    for r in range(n_rows):
        abr = ab[r]
        for c in range(width):
            seen |= _is_tiny(g[r, c])
        for b in range(-(-width // BLOCK)):
            gb = g[r, b * BLOCK : min(width, (b + 1) * BLOCK)]
            for p in range(pairs):
                a_hi_bits = abr[p] & _HIGH_HALF
                a_lo_bits = np.uint32(abr[p] << _U16)
                a_hi = _float32_from_bits(a_hi_bits)
                a_lo = _float32_from_bits(a_lo_bits)
                a_hi_nonzero = np.uint32(a_hi_bits & _MAGNITUDE != 0)
                a_lo_nonzero = np.uint32(a_lo_bits & _MAGNITUDE != 0)
                wp = w[b * pairs + p]
                flags = np.uint32(0)
                for c in range(gb.shape[0]):
                    word = _float32_bits(wp[c])
                    hi = word & _HIGH_HALF
                    lo = np.uint32(word << _U16)
                    product_hi = a_hi * _float32_from_bits(hi)
                    after_hi = gb[c] + product_hi
                    product_lo = a_lo * _float32_from_bits(lo)
                    after_lo = after_hi + product_lo
                    gb[c] = after_lo
                    small_hi = (
                        np.uint32(abs(product_hi) < _TINY) & np.uint32(hi & _MAGNITUDE != 0) & a_hi_nonzero
                    )
                    small_lo = (
                        np.uint32(abs(product_lo) < _TINY) & np.uint32(lo & _MAGNITUDE != 0) & a_lo_nonzero
                    )
                    flags |= small_hi | small_lo | _is_tiny(after_hi) | _is_tiny(after_lo)
                seen |= flags
    return seen != 0


@kernel_jit(_INLINE)
def _product_emulated(ab, n_rows, w, g, init):
    """:func:`_product_native`'s results, bit for bit, on any CPU.

    ``g[:n_rows] = init[:n_rows]`` first, then in float32 arithmetic
    (:func:`_float32_columns`, vectorised); when a denormal turns up, again
    from a copy of ``g`` in float64 arithmetic (:func:`_emulate_columns`,
    slower), which follows the instruction's flushes exactly.
    """
    width = g.shape[1]
    if width == 0 or n_rows == 0:
        return
    for r in range(n_rows):
        gr = g[r]
        ir = init[r]
        for c in range(width):
            gr[c] = ir[c]
    start = g[:n_rows].copy()
    if _float32_columns(ab, n_rows, w, g):
        g[:n_rows] = start
        _emulate_columns(ab, 0, n_rows, w, g, 0, width)


@kernel_jit(_OPTIONS)
def matmul_bf16_emulated(a, n_rows, w, g, column_tile):
    """:func:`matmul_bf16_native`'s results, bit for bit, on any CPU (:func:`_product_emulated`)."""
    width = g.shape[1]
    if width == 0:
        return
    _product_emulated(_pack_rows(a, n_rows, w.shape[0] // -(-width // BLOCK)), n_rows, w, g, g)


matmul_accumulate_bf16 = matmul_bf16_native if HAS_AVX512_BF16 else matmul_bf16_emulated
_product = _product_native if HAS_AVX512_BF16 else _product_emulated


@kernel_jit(_OPTIONS)
def product_bf16(ab, n_rows, w, g, init):
    """``g[:n_rows] = init[:n_rows] + ab[:n_rows] @ w``: :func:`_product_native` (or the emulation).

    The products of :func:`run_block_bf16`, which calls them at their address
    (``KernelCalls.product``): compiled once, for :data:`PRODUCT_ARGUMENTS`'
    types (``init`` of any layout: ``g`` itself or :func:`_bias_rows`).
    """
    _product(ab, n_rows, w, g, init)


# Arguments of the types product_bf16 is compiled for: packed rows, rows, weights, g, init.
PRODUCT_ARGUMENTS = (
    np.empty((0, 0), np.uint32),
    0,
    np.empty((0, 0), np.float32),
    np.empty((0, 0), np.float32),
    np.empty((2, 4), np.float32)[:, ::2],
)


@intrinsic
def _call_at(typingctx, address, args):
    """Call the numba-compiled function at ``address`` with the arguments ``args``.

    ``_kernels.call_compiled``, repeated here: numba's disk cache stamps a
    kernel with its own file only, so code generated into this file's kernels
    is written in this file.
    """
    if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
        return None
    arg_types = list(args.types)

    def codegen(context, builder, sig, llvm_args):
        address_value, packed = llvm_args
        values = [builder.extract_value(packed, i) for i in range(len(arg_types))]
        function_type = context.call_conv.get_function_type(types.none, arg_types)
        function = builder.inttoptr(address_value, function_type.as_pointer())
        status, _ = context.call_conv.call_function(builder, function, types.none, arg_types, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(address, args), codegen


@intrinsic
def _borrowed(typingctx, array):
    """``array`` without a reference count: a callee's increments of it are no-ops.

    A layer's weights are shared by every worker thread, and numba's callees
    count references with atomic instructions on one shared word per array,
    which two cores then pass back and forth at every call.  Only for arrays
    that outlive the view (a kernel's arguments).
    """
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, sig, args):
        view = context.make_array(array)(context, builder, args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen


@intrinsic
def _round_16(typingctx, halves, values, start):
    """``halves[start + i] = `` :func:`_bf16_bits` ``(values[start + i])`` for ``i < 16``, in one register.

    The same integer formula as :func:`_bf16_bits` on a vector of 16 32-bit
    lanes (numba's own integer arithmetic widens to 64 bits, which halves the
    lanes); plain LLVM, so any CPU runs it.  C-contiguous 1-D arrays, bounds
    are the caller's.
    """
    if not (
        isinstance(halves, types.Array)
        and isinstance(values, types.Array)
        and (halves.dtype, halves.ndim, halves.layout) == (types.uint16, 1, "C")
        and (values.dtype, values.ndim, values.layout) == (types.float32, 1, "C")
    ):
        return None

    def codegen(context, builder, sig, args):
        halves_array = context.make_array(sig.args[0])(context, builder, args[0])
        values_array = context.make_array(sig.args[1])(context, builder, args[1])
        start_index = args[2]
        words = ir.VectorType(ir.IntType(32), LANES)

        def splat(value):
            return ir.Constant(words, [value] * LANES)

        source = builder.bitcast(builder.gep(values_array.data, [start_index]), words.as_pointer())
        target = builder.bitcast(
            builder.gep(halves_array.data, [start_index]), ir.VectorType(ir.IntType(16), LANES).as_pointer()
        )
        bits = builder.load(source, align=4)
        exponent = builder.and_(bits, splat(0x7F800000))
        high = builder.lshr(bits, splat(16))
        bias = builder.add(splat(0x7FFF), builder.and_(high, splat(1)))
        rounded = builder.lshr(builder.add(bits, bias), splat(16))
        nan = builder.icmp_unsigned("!=", builder.and_(bits, splat(0x007FFFFF)), splat(0))
        special = builder.select(nan, builder.or_(high, splat(0x40)), high)
        out = builder.select(builder.icmp_unsigned("==", exponent, splat(0x7F800000)), special, rounded)
        zero = builder.and_(high, splat(0x8000))
        out = builder.select(builder.icmp_unsigned("==", exponent, splat(0)), zero, out)
        builder.store(builder.trunc(out, ir.VectorType(ir.IntType(16), LANES)), target, align=2)
        return context.get_dummy_value()

    return types.none(halves, values, start), codegen


@intrinsic
def _bias_rows(typingctx, bias, n_rows):
    """``bias`` (1-D) as ``n_rows`` rows of a 2-D array of row stride 0, for the products' ``init``.

    No reference count, as :func:`_borrowed`: for a kernel's argument.
    """
    if not (isinstance(bias, types.Array) and bias.ndim == 1 and isinstance(n_rows, types.Integer)):
        return None
    rows_type = types.Array(bias.dtype, 2, "A")

    def codegen(context, builder, sig, args):
        source = context.make_array(bias)(context, builder, args[0])
        view = context.make_array(rows_type)(context, builder)
        rows = context.cast(builder, args[1], n_rows, types.intp)
        length = builder.extract_value(source.shape, 0)
        stride = builder.extract_value(source.strides, 0)
        context.populate_array(
            view,
            data=source.data,
            shape=cgutils.pack_array(builder, [rows, length]),
            strides=cgutils.pack_array(builder, [ir.Constant(rows.type, 0), stride]),
            itemsize=source.itemsize,
            meminfo=None,
        )
        return view._getvalue()

    return rows_type(bias, n_rows), codegen


@kernel_jit(_INLINE)
def _round_into(halves, values):
    """``halves[k] = `` :func:`_bf16_bits` ``(values[k])`` for every ``k`` of ``values``: by 16, then one by one."""
    n = values.shape[0]
    full = n - n % LANES
    for k in range(0, full, LANES):
        _round_16(halves, values, k)
    for k in range(full, n):
        halves[k] = _bf16_bits(values[k])


@kernel_jit(_INLINE)
def _copy(dst, src):
    """``dst[:len(src)] = src``, as a loop the vectoriser sees whole (no call, no shape check)."""
    for k in range(src.shape[0]):
        dst[k] = src[k]


@kernel_jit(_OPTIONS)
def run_block_bf16(block_start, block_stop, calls, layer, weights, gate, tiling):
    """``_kernels.run_block`` with bfloat16 products: the same arguments, outputs and bits.

    Rows ``layer.order[block_start:block_stop]``, every step; time in chunks
    whose input projections ``bias + x @ W_x`` are one product, then per
    step ``g += h @ W_h``, the cell's gate kernel (at ``calls.gates``) and the
    projection if any.  What differs from ``run_block`` is where the
    rounding happens: each input row is rounded to bfloat16 pairs as it is
    gathered, each new ``h`` as it is stored (once, not in every product that
    reads it), into buffers made once per block; the products are
    :func:`product_bf16` at ``calls.product`` (no allocation or packing per
    step), the input projections' accumulators start from the bias (no copy
    of it in every row), and the final ``h`` of a row is its last output.
    ``calls.matmul`` is not used (it is the unit-split kernel's).
    ``layer.projected`` must be False (projected tables are for float32
    products only).
    """
    layer = LayerArrays(*layer)
    weights = CellArrays(*weights)
    gate = GateScalars(*gate)
    calls = KernelCalls(*calls)
    x = layer.x
    tokens = layer.tokens
    gather = tokens.shape[0] > 0
    lengths = layer.lengths
    reverse = layer.reverse
    batch_stride = layer.batch_stride
    time_stride = layer.time_stride
    out = layer.out
    rows = layer.order[block_start:block_stop]
    n = rows.shape[0]
    depth = x.shape[1]
    units = layer.c0.shape[1]
    out_depth = layer.h0.shape[1]
    use_projection = weights.use_projection
    chunk_steps = max(1, tiling[1] // max(n, 1))
    w_x = _borrowed(weights.w_x)
    w_h = _borrowed(weights.w_h)
    projection = _borrowed(weights.projection)
    bias = weights.bias
    peepholes = _borrowed(weights.peepholes)
    # bfloat16 halves of the products' left operands, zero past each depth (pair padding)
    x_halves = np.zeros((chunk_steps * n, 2 * (depth // 2 + depth % 2)), dtype=np.uint16)
    h_halves = np.zeros((n, 2 * (out_depth // 2 + out_depth % 2)), dtype=np.uint16)
    m_halves = np.zeros((n if use_projection else 0, 2 * (units // 2 + units % 2)), dtype=np.uint16)
    x_pairs = x_halves.view(np.uint32)
    h_pairs = h_halves.view(np.uint32)
    m_pairs = m_halves.view(np.uint32)
    gates = np.empty((chunk_steps * n, 4 * units), dtype=np.float32)
    chunk_start = np.empty(chunk_steps + 1, dtype=np.int64)
    c = np.empty((n, units), dtype=np.float32)
    m = np.empty((n, units), dtype=np.float32)
    p = np.empty((n if use_projection else 0, out_depth), dtype=np.float32)
    for r in range(n):
        _copy(c[r], layer.c0[rows[r]])
        _round_into(h_halves[r], layer.h0[rows[r]])
    steps = lengths[rows[0]] if n > 0 else 0
    active = n
    for t0 in range(0, steps, chunk_steps):
        t1 = min(t0 + chunk_steps, steps)
        q = 0
        for t in range(t0, t1):  # the running rows at step t are a prefix of rows
            while active > 0 and lengths[rows[active - 1]] <= t:
                active -= 1
            chunk_start[t - t0] = q
            for r in range(active):
                b = rows[r]
                tt = lengths[b] - 1 - t if reverse else t
                line = b * batch_stride + tt * time_stride
                _round_into(x_halves[q], x[tokens[line] if gather else line])
                q += 1
        chunk_start[t1 - t0] = q
        _call_at(calls.product, (x_pairs, q, w_x, gates, _bias_rows(bias, q)))
        for t in range(t0, t1):
            lo = chunk_start[t - t0]
            running = chunk_start[t - t0 + 1] - lo
            g = gates[lo : lo + running]
            _call_at(calls.product, (h_pairs, running, w_h, g, _any_layout(g)))
            _call_at(calls.gates, (g, running, c, m, peepholes, gate))
            new_h = m
            if use_projection:
                for r in range(running):
                    _round_into(m_halves[r], m[r])
                    pr = p[r]
                    for k in range(out_depth):
                        pr[k] = 0.0
                _call_at(calls.product, (m_pairs, running, projection, p, _any_layout(p)))
                bound = weights.proj_clip
                for r in range(running):
                    pr = p[r]
                    for k in range(out_depth):
                        upper = bound if pr[k] > bound else pr[k]
                        pr[k] = -bound if upper < -bound else upper
                new_h = p
            for r in range(running):
                b = rows[r]
                tt = lengths[b] - 1 - t if reverse else t
                _copy(out[b * batch_stride + tt * time_stride], new_h[r])
                _round_into(h_halves[r], new_h[r])
    for r in range(n):
        b = rows[r]
        _copy(layer.c_final[b], c[r])
        if lengths[b] > 0:  # the last step's output (h_final holds h0 otherwise)
            last = 0 if reverse else lengths[b] - 1
            _copy(layer.h_final[b], out[b * batch_stride + last * time_stride])
        for t in range(lengths[b], layer.max_time):
            ot = out[b * batch_stride + t * time_stride]
            for k in range(out_depth):
                ot[k] = 0.0


if config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the emulation, as Python

    def _float32_bits(x):
        """Python stand-in of the intrinsic."""
        return np.float32(x).view(np.uint32)

    def _float32_from_bits(bits):
        """Python stand-in of the intrinsic."""
        return np.uint32(bits).view(np.float32)

    def _call_at(address, args):  # "address" is the Python function itself
        """Python stand-in of the intrinsic: call the function."""
        address(*args)

    def _borrowed(array):
        """Python stand-in of the intrinsic."""
        return array

    def _bias_rows(bias, n_rows):
        """Python stand-in of the intrinsic."""
        return np.broadcast_to(bias, (n_rows, bias.shape[0]))

    def _any_layout(array):
        """Python stand-in of the intrinsic."""
        return array

    def _round_16(halves, values, start):
        """Python stand-in of the intrinsic."""
        for k in range(start, start + LANES):
            halves[k] = _bf16_bits(values[k])

    matmul_accumulate_bf16 = matmul_bf16_emulated
    _product = _product_emulated
