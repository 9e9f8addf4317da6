"""The compiled arithmetic of fastlstm: arrays and scalars in, arrays out.

Nothing here knows about cells, validation or user input; `_runner` prepares
plain C-contiguous arrays and calls :func:`lstm_layer` (or, for batches
smaller than the thread count, :func:`lstm_layer_split_units`).  The heavy
functions call each other through native addresses (``_native_calls``), so
each is compiled once; ``_runner`` looks the addresses up.

Data path of one layer call::

    rows sorted by length -> blocks of rows -> workers (prange) -> per block,
    per step: A = [x_t, h_prev] ; G = bias + A @ kernel ; gate math ; (projection)

Each output element is computed by one fixed sequence of floating-point
operations that depends only on the weights' shapes, never on which rows share
its block, how many rows are still running or how many threads there are: that
is what makes results bitwise independent of the batch and of the thread count.
"""

from __future__ import annotations

import os
import platform
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, overload

from ._config import kernel_jit

# The compile options of every kernel below. They live in this file because numba's
# disk cache stamps a kernel with the contents of its own file only: options imported
# from elsewhere could change while stale machine code kept loading from the cache.
#
# * ``error_model="numpy"``: no zero-division check on float division, which
#   would otherwise stop the vectoriser.
# * fastmath flags are chosen one by one. Never ``nnan``/``ninf`` (NaN and Inf
#   must propagate) and never ``reassoc`` (the order of every sum is fixed).
#   ``contract`` (fuse a multiply and an add into one FMA) is allowed only where
#   the fusion is unambiguous: in the matrix products every addition has exactly
#   one product operand, so each sum becomes the same FMA chain in every
#   kernel, vector lane and loop remainder.  The gate math adds two products
#   (``c * sigmoid(f) + sigmoid(i) * act(j)``), which LLVM could fuse either way
#   depending on the surrounding code, so it is compiled without ``contract``
#   (:data:`GATE_OPTIONS`): that is what keeps a row's result bitwise the same in
#   every kernel.
# * ``cache=True``: compiled kernels are written to numba's on-disk cache so a
#   new process does not pay the compile time again.
# * ``nogil=True``: the kernels release the GIL, so Python threads overlap.
# * :data:`CALLED_BY_ADDRESS`: functions that only other kernels call, through
#   their native address (see ``_native_calls``), skip the Python and C
#   wrappers numba would otherwise generate and compile for each of them.
KERNEL_OPTIONS = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"contract", "nsz"},
    "nogil": True,
    "boundscheck": False,
}
GATE_OPTIONS = {**KERNEL_OPTIONS, "fastmath": {"nsz"}}
CALLED_BY_ADDRESS = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


# The records the layer kernels take (numba passes named tuples field by field, typed by
# field): one argument per record instead of two dozen positional ones of a few types.
# Every field is always present with one type per dtype (e.g. zero peepholes when a cell
# has none), so each kernel has one specialisation per dtype.
class KernelCalls(NamedTuple):
    """Native addresses (``_native_calls``) of the kernels a layer kernel calls."""

    matmul: int  # matmul_accumulate
    gates: int  # the cell's gate kernel
    product: int  # bfloat16 runs: _kernels_bf16.product_bf16 (run_block_bf16's products); else 0


class LayerArrays(NamedTuple):
    """A layer call's inputs, outputs and row order.

    ``x``/``out`` are 2-D ``[batch * max_time, depth]`` views; step ``t`` of row
    ``b`` is line ``b * batch_stride + t * time_stride`` of both. With
    ``tokens`` (non-empty, int64 ``[batch * max_time]``) ``x`` is an embedding
    table instead and step line ``l`` reads its row ``tokens[l]``: the rows are
    gathered into the chunk, never copied into a ``[batch, max_time, depth]``
    array. With ``projected`` those rows are already ``bias + x @ W_x``
    (``[vocab, 4 * units]``): they go straight into the gates, with no product.
    """

    x: np.ndarray
    tokens: np.ndarray  # int64; empty: x holds the steps themselves
    projected: bool  # x rows are bias + embedding @ W_x (run_block only)
    batch_stride: int
    time_stride: int
    max_time: int
    lengths: np.ndarray  # int64
    order: np.ndarray  # rows by decreasing length
    reverse: bool  # each row runs backwards within its own length
    c0: np.ndarray
    h0: np.ndarray
    out: np.ndarray
    c_final: np.ndarray
    h_final: np.ndarray


class CellArrays(NamedTuple):
    """A cell's weights as :func:`run_block` reads them (all in the weights' dtype).

    ``w_x``, ``w_h`` and ``projection`` are the matrix product's operands: views
    of the kernel, or with bfloat16 products ``_kernels_bf16.pack_weights`` of
    each (typed like the float32 matrices, so no new specialisation).
    """

    w_x: np.ndarray  # [depth, 4 * units]: the kernel's input rows
    w_h: np.ndarray  # [out_depth, 4 * units]: the kernel's recurrent rows
    bias: np.ndarray  # [4 * units]
    peepholes: np.ndarray  # [3, units]: w_i_diag, w_f_diag, w_o_diag (zeros without peepholes)
    projection: np.ndarray  # [units, out_depth] ([1, 1] zeros without projection)
    use_projection: bool
    proj_clip: float  # inf: no clipping


class GateScalars(NamedTuple):
    """The scalars of a cell's gate math, in the weights' dtype.

    The gate kernels of :data:`GATE_KERNELS` (sigmoid gates, no gate clip) read
    the first three; the others also ``gate_clip`` and, for the hard sigmoid
    gates, ``min(max(hard_alpha * x + hard_beta, 0), hard_top) / hard_top``.
    """

    forget_bias: float
    cell_clip: float  # inf: no clipping
    use_peepholes: bool
    gate_clip: float  # inf: no clipping
    hard_alpha: float
    hard_beta: float
    hard_top: float


class SplitWeights(NamedTuple):
    """A cell's weights regrouped by unit part, for :func:`lstm_layer_split_units`."""

    w_x: np.ndarray  # [parts, depth, 4 * part_units]
    w_h: np.ndarray  # [parts, units, 4 * part_units]
    bias: np.ndarray  # [parts, 4 * part_units]
    peepholes: np.ndarray  # [parts, 3, part_units]


class SplitWork(NamedTuple):
    """Work arrays of :func:`lstm_layer_split_units`, shared by its threads."""

    x_rows: np.ndarray  # [parts, chunk_steps * batch, depth]: each part gathers its own
    chunk_start: np.ndarray  # [parts, chunk_steps + 1] int64
    gates: np.ndarray  # [parts, chunk_steps * batch, 4 * part_units]
    h: np.ndarray  # [2, batch, units]: step t reads h[t % 2], writes h[(t + 1) % 2]
    c: np.ndarray  # [parts, batch, part_units]; padded units stay zero
    m: np.ndarray  # [parts, batch, part_units]
    sync: np.ndarray  # int64 [SYNC_FIELDS * parts * SYNC_STRIDE]: see lstm_layer_split_units


# Gate kernel families: sigmoid gates (the TF cell), sigmoid gates with ONNX's clip of
# the activations' inputs, and hard sigmoid gates (with that clip; inf when unused).
PLAIN, CLIPPED, HARD = "plain", "clipped", "hard"

# Activation codes understood by the kernels (see activations.py for the names).
TANH, RELU, SIGMOID, LINEAR, SOFTSIGN, ELU, HARD_SIGMOID, RELU6, SELU, SWISH = range(10)
CUSTOM = -1

# float32 tanh: Eigen's rational approximation (the one TensorFlow's CPU kernels
# use), |error| < 3e-7 over the real line; plain arithmetic, so it vectorises.
_F32_TANH_CLAMP = np.float32(7.90531110763549805)
_F32_ALPHA = tuple(
    np.float32(a)
    for a in (
        -2.76076847742355e-16,
        2.00018790482477e-13,
        -8.60467152213735e-11,
        5.12229709037114e-08,
        1.48572235717979e-05,
        6.37261928875436e-04,
        4.89352455891786e-03,
    )
)
_F32_BETA = tuple(
    np.float32(b)
    for b in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
)
_A13, _A11, _A9, _A7, _A5, _A3, _A1 = _F32_ALPHA
_B6, _B4, _B2, _B0 = _F32_BETA
_F32_HALF = np.float32(0.5)
_F32_TWO = np.float32(2.0)
_F32_ZERO = np.float32(0.0)

# float64 tanh: Cephes' rational form below 0.625, 1 - 2 / (exp(2|x|) + 1) above,
# exp by Cephes' Pade form with 2**n built from its bits; about 1 ulp, and plain
# arithmetic, so it vectorises (numpy's tanh is a scalar libm call, ~10x slower).
_F64_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_F64_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (
    3.00198505138664455042e-6,
    2.52448340349684104192e-3,
    2.27265548208155028766e-1,
    2.00000000000000000009,
)
_LN2_HI, _LN2_LO = 6.93145751953125e-1, 1.42860682030941723212e-6
_LOG2E = 1.4426950408889634073599
# Adding 1.5 * 2**52 rounds to an integer and leaves it in the low bits of the sum.
_ROUND_SHIFT = 6755399441055744.0


def tanh(x):
    """tanh in the precision of ``x`` (vectorisable approximations: Eigen's for float32, ~1 ulp for float64)."""
    return np.tanh(x)


@overload(tanh, jit_options={"fastmath": set(GATE_OPTIONS["fastmath"])})
def _tanh_overload(x):
    if x == types.float32:

        def tanh_f32(x):
            p, q = _tanh_ratio_f32(x)
            return p / q

        return tanh_f32
    return lambda x: _tanh_f64(x)


def sigmoid(x):
    """Logistic sigmoid as 0.5 * tanh(0.5 x) + 0.5 in the precision of ``x``."""
    return 0.5 * np.tanh(0.5 * x) + 0.5


@overload(sigmoid, jit_options={"fastmath": set(GATE_OPTIONS["fastmath"])})
def _sigmoid_overload(x):
    if x == types.float32:
        return lambda x: _F32_HALF * tanh(_F32_HALF * x) + _F32_HALF
    return lambda x: 0.5 * tanh(0.5 * x) + 0.5


def hard_sigmoid_gate(x, alpha, beta, top):
    """``min(max(alpha * x + beta, 0), top) / top`` in the precision of ``x``; NaN stays NaN.

    ``top = 1``: ONNX's HardSigmoid (tf.keras' hard_sigmoid with alpha 0.2, beta 0.5);
    ``alpha = 1, beta = 3, top = 6``: Keras 3's ``relu6(x + 3) / 6``.
    """
    return min(max(alpha * x + beta, 0.0), top) / top


@overload(hard_sigmoid_gate, jit_options={"fastmath": set(GATE_OPTIONS["fastmath"])})
def _hard_sigmoid_gate_overload(x, alpha, beta, top):
    zero = _F32_ZERO if x == types.float32 else 0.0

    def hard_sigmoid_gate_impl(x, alpha, beta, top):
        y = alpha * x + beta
        y = zero if y < zero else y
        y = top if y > top else y
        return y / top

    return hard_sigmoid_gate_impl


@kernel_jit(KERNEL_OPTIONS)
def _tanh_ratio_f32(x):
    """Numerator and denominator of the float32 tanh approximation (q > 0).

    Compiled on its own with ``contract``: its Horner steps fuse into FMAs the
    same way wherever it is inlined, while the gate math around it is not
    contracted (see :data:`GATE_OPTIONS`).
    """
    y = _F32_TANH_CLAMP if x > _F32_TANH_CLAMP else x
    y = -_F32_TANH_CLAMP if y < -_F32_TANH_CLAMP else y
    y2 = y * y
    p = _A13
    p = p * y2 + _A11
    p = p * y2 + _A9
    p = p * y2 + _A7
    p = p * y2 + _A5
    p = p * y2 + _A3
    p = p * y2 + _A1
    q = _B6
    q = q * y2 + _B4
    q = q * y2 + _B2
    q = q * y2 + _B0
    return y * p, q


@kernel_jit(GATE_OPTIONS, inline="always")
def clip(value, bound):
    """``value`` clamped to ``[-bound, bound]`` with comparisons, so NaN stays NaN."""
    upper = bound if value > bound else value
    return -bound if upper < -bound else upper


@kernel_jit(GATE_OPTIONS, inline="always")
def _new_cell_state_f32(c, i, j, f):
    """float32 ``c * sigmoid(f) + sigmoid(i) * tanh(j)`` with one division.

    sigmoid(z) = (P + Q) / (2 Q) where P / Q = tanh(z / 2); every Q lies in
    [0.0049, 0.9], so the products cannot overflow or underflow.
    """
    pi, qi = _tanh_ratio_f32(_F32_HALF * i)
    pj, qj = _tanh_ratio_f32(j)
    pf, qf = _tanh_ratio_f32(_F32_HALF * f)
    return (c * (pf + qf) * qi * qj + (pi + qi) * pj * qf) / (_F32_TWO * qf * qi * qj)


@kernel_jit(GATE_OPTIONS, inline="always")
def _new_output_f32(c, o):
    """float32 ``tanh(c) * sigmoid(o)`` with one division."""
    pc, qc = _tanh_ratio_f32(c)
    po, qo = _tanh_ratio_f32(_F32_HALF * o)
    return (pc * (po + qo)) / (_F32_TWO * qc * qo)


def _tanh_gates_impl(new_cell, new_out):
    def tanh_gates(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip):
        """Gate math with the tanh activation for rows ``[0, n_rows)``.

        ``g`` holds the pre-activations (gate blocks i, j, f, o); ``c`` the
        previous cell state on entry and the new one on exit; ``m`` receives
        ``tanh(c_new) * sigmoid(o)``.  Vectorised along the units: float32 uses
        the rational tanh with two divisions per unit, float64 the ~1 ulp
        :func:`_tanh_f64`.
        """
        units = c.shape[1]
        w_i = peepholes[0]
        w_f = peepholes[1]
        w_o = peepholes[2]
        for r in range(n_rows):
            gi = g[r, 0:units]
            gj = g[r, units : 2 * units]
            gf = g[r, 2 * units : 3 * units]
            go = g[r, 3 * units : 4 * units]
            cr = c[r]
            mr = m[r]
            if use_peepholes:
                for u in range(units):
                    cp = cr[u]
                    cu = clip(
                        new_cell(cp, gi[u] + w_i[u] * cp, gj[u], gf[u] + forget_bias + w_f[u] * cp), cell_clip
                    )
                    cr[u] = cu
                    mr[u] = new_out(cu, go[u] + w_o[u] * cu)
            else:
                for u in range(units):
                    cu = clip(new_cell(cr[u], gi[u], gj[u], gf[u] + forget_bias), cell_clip)
                    cr[u] = cu
                    mr[u] = new_out(cu, go[u])

    return tanh_gates


@intrinsic
def _int64_bits(typingctx, x):
    """The IEEE bits of a float64, as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(x), codegen


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits``."""
    if bits != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(bits), codegen


@kernel_jit(GATE_OPTIONS, inline="always")
def _exp_parts_f64(y):
    """``(exp(r) - 1, 2**n)`` with ``exp(y) = 2**n * exp(r)``, ``|r| <= ln2 / 2``; for ``|y| <= 40``.

    ``exp(r) - 1`` is Cephes' Pade form ``2 P / (Q - P)``, accurate also as
    ``r`` nears 0; ``2**n`` is built from its IEEE bits.
    """
    shifted = y * _LOG2E + _ROUND_SHIFT
    n = shifted - _ROUND_SHIFT
    r = y - n * _LN2_HI
    r = r - n * _LN2_LO
    rr = r * r
    pr = r * ((_EXP_P[0] * rr + _EXP_P[1]) * rr + _EXP_P[2])
    qr = ((_EXP_Q[0] * rr + _EXP_Q[1]) * rr + _EXP_Q[2]) * rr + _EXP_Q[3]
    two_to_n = _float64_from_bits((_int64_bits(shifted) - _int64_bits(_ROUND_SHIFT) + 1023) << 52)
    return 2.0 * (pr / (qr - pr)), two_to_n


@kernel_jit(GATE_OPTIONS, inline="always")
def _tanh_f64(x):
    """float64 tanh to about 1 ulp (|error| < 2e-16), NaN and +-inf as numpy's."""
    z = -x if x < 0.0 else x
    z = 20.0 if z > 20.0 else z  # tanh(20) is 1 in float64; exp stays finite (NaN passes)
    s = x * x
    p = (_F64_P[0] * s + _F64_P[1]) * s + _F64_P[2]
    q = ((s + _F64_Q[0]) * s + _F64_Q[1]) * s + _F64_Q[2]
    small = x + x * s * (p / q)
    exp_r_minus_1, two_to_n = _exp_parts_f64(2.0 * z)
    large = 1.0 - 2.0 / ((1.0 + exp_r_minus_1) * two_to_n + 1.0)
    large = -large if x < 0.0 else large
    return small if z < 0.625 else large


@kernel_jit(GATE_OPTIONS, inline="always")
def _expm1_negative_f64(x):
    """float64 ``exp(x) - 1`` for ``x <= 0`` to about 2 ulp, NaN as numpy's; vectorisable.

    ``2**n * (exp(r) - 1) + (2**n - 1)``: exactly the Pade form near 0 (n = 0),
    no cancellation below; -1 to float64 precision below -40.
    """
    y = -40.0 if x < -40.0 else x + 0.0
    y = 0.0 if y > 0.0 else y
    exp_r_minus_1, two_to_n = _exp_parts_f64(y)
    return two_to_n * exp_r_minus_1 + (two_to_n - 1.0)


@kernel_jit(GATE_OPTIONS, inline="always")
def _sigmoid_f64(x):
    """0.5 * tanh(0.5 x) + 0.5 in float64 (a float32 ``x`` is widened)."""
    return 0.5 * _tanh_f64(0.5 * x) + 0.5


@kernel_jit(GATE_OPTIONS, inline="always")
def _new_cell_state_f64(c, i, j, f):
    return c * _sigmoid_f64(f) + _sigmoid_f64(i) * _tanh_f64(j)


@kernel_jit(GATE_OPTIONS, inline="always")
def _new_output_f64(c, o):
    return _tanh_f64(c) * _sigmoid_f64(o)


tanh_gates = _tanh_gates_impl(_new_cell_state_f64, _new_output_f64)


@overload(tanh_gates, jit_options={"fastmath": set(GATE_OPTIONS["fastmath"]), "error_model": "numpy"})
def _tanh_gates_overload(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip):
    if g.dtype == types.float32:
        return _tanh_gates_impl(_new_cell_state_f32, _new_output_f32)
    return _tanh_gates_impl(_new_cell_state_f64, _new_output_f64)


# The built-in activations other than tanh, as TF computes them; written so that
# NaN stays NaN. The float64 constants make a float32 cell evaluate them in float64.
@kernel_jit(GATE_OPTIONS, inline="always")
def _relu(x):
    return 0.0 if x <= 0.0 else x + 0.0


@kernel_jit(GATE_OPTIONS, inline="always")
def _linear(x):
    return x + 0.0


@kernel_jit(GATE_OPTIONS, inline="always")
def _softsign(x):
    return x / (1.0 + abs(x))


@kernel_jit(GATE_OPTIONS, inline="always")
def _elu(x):
    return x if x > 0.0 else _expm1_negative_f64(x)


@kernel_jit(GATE_OPTIONS, inline="always")
def _hard_sigmoid(x):
    y = 0.2 * x + 0.5
    y = 1.0 if y > 1.0 else y
    return 0.0 if y < 0.0 else y


@kernel_jit(GATE_OPTIONS, inline="always")
def _relu6(x):
    y = 0.0 if x <= 0.0 else x + 0.0
    return 6.0 if y > 6.0 else y


@kernel_jit(GATE_OPTIONS, inline="always")
def _selu(x):
    scale = 1.0507009873554804934193349852946
    alpha = 1.6732632423543772848170429916717
    return scale * x if x > 0.0 else scale * alpha * _expm1_negative_f64(x)


@kernel_jit(GATE_OPTIONS, inline="always")
def _swish(x):
    return x * _sigmoid_f64(x)


@intrinsic
def call_compiled(typingctx, address, args):
    """Call the numba-compiled function at ``address`` with the arguments ``args``.

    ``address`` is the native entry point of a function compiled for exactly
    the types of the tuple ``args`` and returning nothing (see
    ``_native_calls.native_address``).  The callee's code is not linked into the
    caller: it is compiled, optimised and cached once, on its own, instead of
    again inside every parallel kernel that runs it.  An exception raised by
    the callee propagates to the caller.  It lives in this module because
    numba's cache watches only the file a kernel is defined in: editing it
    here drops the cached kernels that use it.
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


def _register_tile(n_rows, n_vectors, prefetch=False):
    """An intrinsic ``g[row:row + n_rows, col:col + width] += a[rows, k0:k1] @ w[k0:k1, col:col + width]``.

    ``width`` is ``n_vectors`` SIMD registers of ``g``'s dtype.  The
    ``n_rows * n_vectors`` accumulators stay in registers for the whole panel
    ``k0 <= k < k1``: per ``k``, ``n_vectors`` loads of ``w``, one broadcast of
    ``a`` per row and one multiply-add (``llvm.fmuladd``: fused exactly where
    numba's ``contract`` would fuse) per accumulator.  Each element therefore
    gets the same chain of multiply-adds, in increasing ``k``, as the scalar
    loop ``g = g + a * w`` compiled with ``contract``.  Arrays are
    C-contiguous; bounds are the caller's.  With ``prefetch``, each ``k`` also
    asks for the cache lines of ``w[k + 1, col:col + width]`` (``llvm.prefetch``,
    a hint that never faults and changes no result): a one-row tile streams
    ``w`` from L2 faster when the hardware prefetchers get that help.
    """

    @intrinsic
    def register_tile(typingctx, a, row, w, g, col, k_start, k_stop):
        if not all(isinstance(arg, types.Array) and arg.layout == "C" and arg.ndim == 2 for arg in (a, w, g)):
            return None
        dtype = g.dtype

        def codegen(context, builder, sig, args):
            a_array, w_array, g_array = (
                context.make_array(sig.args[i])(context, builder, args[i]) for i in (0, 2, 3)
            )
            row_index, col_index, k_first, k_last = args[1], args[4], args[5], args[6]
            element = context.get_value_type(dtype)
            itemsize = context.get_abi_sizeof(element)
            lanes = VECTOR_BYTES // itemsize
            vector = ir.VectorType(element, lanes)
            int64 = ir.IntType(64)
            byte_ptr = ir.IntType(8).as_pointer()

            def pointer(array, row_offset, col_offset, pointee):
                row_stride = builder.extract_value(array.strides, 0)
                offset = builder.add(
                    builder.mul(row_offset, row_stride), builder.mul(col_offset, ir.Constant(int64, itemsize))
                )
                address = builder.gep(builder.bitcast(array.data, byte_ptr), [offset])
                return builder.bitcast(address, pointee.as_pointer())

            def plus(value, constant):
                return builder.add(value, ir.Constant(int64, constant))

            muladd = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(vector, [vector, vector, vector]),
                f"llvm.fmuladd.v{lanes}f{8 * itemsize}",
            )
            prefetch_line = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [byte_ptr, *[ir.IntType(32)] * 3]),
                "llvm.prefetch.p0",
            )
            read, keep_in_l1, data = (ir.Constant(ir.IntType(32), v) for v in (0, 3, 1))
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            g_pointers, accumulators = [], []
            for r in range(n_rows):
                for v in range(n_vectors):
                    g_pointer = pointer(g_array, plus(row_index, r), plus(col_index, v * lanes), vector)
                    accumulator = cgutils.alloca_once(builder, vector)
                    builder.store(builder.load(g_pointer, align=itemsize), accumulator)
                    g_pointers.append(g_pointer)
                    accumulators.append(accumulator)
            a_rows = [
                pointer(a_array, plus(row_index, r), ir.Constant(int64, 0), element) for r in range(n_rows)
            ]
            with cgutils.for_range_slice(builder, k_first, k_last, ir.Constant(int64, 1)) as (k, _):
                if prefetch:
                    for offset in range(0, n_vectors * VECTOR_BYTES, CACHE_LINE_BYTES):
                        line = pointer(
                            w_array, plus(k, 1), plus(col_index, offset // itemsize), ir.IntType(8)
                        )
                        builder.call(prefetch_line, [line, read, keep_in_l1, data])
                w_vectors = [
                    builder.load(pointer(w_array, k, plus(col_index, v * lanes), vector), align=itemsize)
                    for v in range(n_vectors)
                ]
                for r in range(n_rows):
                    scalar = builder.load(builder.gep(a_rows[r], [k]))
                    lane0 = builder.insert_element(
                        ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0)
                    )
                    broadcast = builder.shuffle_vector(lane0, ir.Constant(vector, ir.Undefined), splat)
                    for v in range(n_vectors):
                        accumulator = accumulators[r * n_vectors + v]
                        builder.store(
                            builder.call(muladd, [broadcast, w_vectors[v], builder.load(accumulator)]),
                            accumulator,
                        )
            for g_pointer, accumulator in zip(g_pointers, accumulators):
                builder.store(builder.load(accumulator), g_pointer, align=itemsize)
            return context.get_dummy_value()

        return types.none(a, row, w, g, col, k_start, k_stop), codegen

    return register_tile


def _vector_bytes() -> int:
    """Bytes per SIMD register of the target numba compiles for: 64 with AVX-512, else 32.

    The same features numba's code generator uses (``NUMBA_CPU_FEATURES`` if
    set, else the host's); numba's cache is keyed by them too.
    """
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return 64 if "+avx512f" in features.split(",") else 32


VECTOR_BYTES = _vector_bytes()
# Registers per tile row: 4 rows x 4 accumulators of the 32 AVX-512 registers, 4 x 2 of AVX2's 16.
TILE_VECTORS = 4 if VECTOR_BYTES == 64 else 2
# Weight rows per register-tile pass: a tile's panel of w (K_PANEL x tile width) stays in L1.
K_PANEL = 128
# Registers of one row's tile (the rows left over from the groups of four: a matrix-vector
# product): enough independent accumulators to cover the multiply-add latency.
ROW_TILE_VECTORS = 4 * TILE_VECTORS
CACHE_LINE_BYTES = 64
_wide_tile = _register_tile(4, TILE_VECTORS)
_narrow_tile = _register_tile(4, 1)
_row_tile = _register_tile(1, ROW_TILE_VECTORS, prefetch=True)
_row_narrow_tile = _register_tile(1, 1)


@kernel_jit(KERNEL_OPTIONS, **CALLED_BY_ADDRESS)
def matmul_accumulate(a, n_rows, w, g, column_tile):
    """``g[:n_rows] += a[:n_rows] @ w`` with a fixed summation order per element.

    Whatever path computes it, element ``g[r, n]`` receives ``a[r, 0] *
    w[0, n]``, ``a[r, 1] * w[1, n]``, ... one multiply-add at a time in
    increasing ``k``, so a row's result never depends on the other rows.
    Rows in groups of four go through register tiles (4 rows x
    ``TILE_VECTORS`` SIMD registers of columns, then 4 x 1 for the columns
    left, then a scalar loop for the last few), one panel of ``K_PANEL``
    weight rows at a time.  The last ``n_rows % 4`` rows (a matrix-vector
    product each) go through one-row register tiles of ``ROW_TILE_VECTORS``
    registers over the whole depth, columns tiled by ``column_tile``.
    """
    depth = a.shape[1]
    width = w.shape[1]
    lanes = VECTOR_BYTES // g.itemsize
    groups = n_rows // 4
    n = 0
    while n + TILE_VECTORS * lanes <= width:
        for k0 in range(0, depth, K_PANEL):
            k1 = min(k0 + K_PANEL, depth)
            for q in range(groups):
                _wide_tile(a, 4 * q, w, g, n, k0, k1)
        n += TILE_VECTORS * lanes
    while n + lanes <= width:
        for k0 in range(0, depth, K_PANEL):
            k1 = min(k0 + K_PANEL, depth)
            for q in range(groups):
                _narrow_tile(a, 4 * q, w, g, n, k0, k1)
        n += lanes
    for r in range(4 * groups):
        for k in range(depth):
            ak = a[r, k]
            for c in range(n, width):
                g[r, c] = g[r, c] + ak * w[k, c]
    for n0 in range(0, width, column_tile):
        n1 = n0 + column_tile if n0 + column_tile < width else width
        for r in range(4 * groups, n_rows):
            n = n0
            while n + ROW_TILE_VECTORS * lanes <= n1:
                _row_tile(a, r, w, g, n, 0, depth)
                n += ROW_TILE_VECTORS * lanes
            while n + lanes <= n1:
                _row_narrow_tile(a, r, w, g, n, 0, depth)
                n += lanes
            for k in range(depth):
                ak = a[r, k]
                for c in range(n, n1):
                    g[r, c] = g[r, c] + ak * w[k, c]


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_tanh(g, n_rows, c, m, peepholes, gate):
    """Gate math for the tanh activation: the default cell's kernel.

    The arguments of every gate kernel: ``g`` holds the pre-activations of
    ``n_rows`` rows, ``c`` the previous cell state (the new one on exit), ``m``
    receives ``tanh(c_new) * sigmoid(o)``; ``peepholes`` are the rows
    (w_i_diag, w_f_diag, w_o_diag) and ``gate`` a :class:`GateScalars`.
    Vectorised along the units (float32: rational tanh, two divisions per unit).
    """
    tanh_gates(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip)


@kernel_jit(GATE_OPTIONS, inline="always")
def _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act):
    """Turn pre-activations ``g`` (gate blocks i, j, f, o) into new ``c`` and ``m``.

    ``c`` holds the previous cell state on entry and the new one on exit;
    ``m = act(c_new) * sigmoid(o)`` (before any projection); ``act`` is a
    scalar numba function (a built-in activation other than tanh, which has
    :func:`lstm_gates_tanh`, or a user's).
    """
    units = c.shape[1]
    w_i = peepholes[0]
    w_f = peepholes[1]
    w_o = peepholes[2]
    for r in range(n_rows):
        gi = g[r, 0:units]
        gj = g[r, units : 2 * units]
        gf = g[r, 2 * units : 3 * units]
        go = g[r, 3 * units : 4 * units]
        cr = c[r]
        mr = m[r]
        for u in range(units):
            cp = cr[u]
            f_in = gf[u] + forget_bias
            i_in = gi[u]
            if use_peepholes:
                f_in = f_in + w_f[u] * cp
                i_in = i_in + w_i[u] * cp
            cu = sigmoid(f_in) * cp + sigmoid(i_in) * act(gj[u])
            cu = clip(cu, cell_clip)
            cr[u] = cu
            o_in = go[u] + w_o[u] * cu if use_peepholes else go[u]
            mr[u] = sigmoid(o_in) * act(cu)


# One gate kernel per built-in activation (:func:`_gate_math` with it inlined): each
# vectorises along the units and compiles only when a cell uses its activation.
# Module-level functions, because numba's disk cache cannot hold closures.
@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _relu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_sigmoid(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _sigmoid_f64)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_linear(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _linear)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_softsign(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _softsign)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_elu(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _elu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_hard_sigmoid(g, n_rows, c, m, peepholes, gate):
    _gate_math(
        g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _hard_sigmoid
    )


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu6(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _relu6)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_selu(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _selu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_swish(g, n_rows, c, m, peepholes, gate):
    _gate_math(g, n_rows, c, m, peepholes, gate.use_peepholes, gate.forget_bias, gate.cell_clip, _swish)


@kernel_jit(GATE_OPTIONS, inline="always")
def _tanh_act(x):
    return tanh(x)


@kernel_jit(GATE_OPTIONS, inline="always")
def _sigmoid_gate(x, gate):
    return sigmoid(x)


@kernel_jit(GATE_OPTIONS, inline="always")
def _hard_sigmoid_gate(x, gate):
    return hard_sigmoid_gate(x, gate.hard_alpha, gate.hard_beta, gate.hard_top)


@kernel_jit(GATE_OPTIONS, inline="always")
def _gate_math_clipped(g, n_rows, c, m, peepholes, gate, act, gate_act):
    """:func:`_gate_math` with ONNX's ``clip`` and a choice of gate activation ``gate_act``.

    As onnxruntime's CPU LSTM: each of the four activations' inputs (i, f and
    o with their peephole terms, bias and ``forget_bias`` added, and j) is
    clamped to ``[-gate_clip, gate_clip]``; the cell state is not (``cell_clip``
    still applies to it, as TF's).  ``gate_act(x, gate)`` is the sigmoid or the
    hard sigmoid of :class:`GateScalars`.
    """
    units = c.shape[1]
    w_i = peepholes[0]
    w_f = peepholes[1]
    w_o = peepholes[2]
    forget_bias = gate.forget_bias
    cell_clip = gate.cell_clip
    gate_clip = gate.gate_clip
    use_peepholes = gate.use_peepholes
    for r in range(n_rows):
        gi = g[r, 0:units]
        gj = g[r, units : 2 * units]
        gf = g[r, 2 * units : 3 * units]
        go = g[r, 3 * units : 4 * units]
        cr = c[r]
        mr = m[r]
        for u in range(units):
            cp = cr[u]
            f_in = gf[u] + forget_bias
            i_in = gi[u]
            if use_peepholes:
                f_in = f_in + w_f[u] * cp
                i_in = i_in + w_i[u] * cp
            f_in = clip(f_in, gate_clip)
            i_in = clip(i_in, gate_clip)
            cu = gate_act(f_in, gate) * cp + gate_act(i_in, gate) * act(clip(gj[u], gate_clip))
            cu = clip(cu, cell_clip)
            cr[u] = cu
            o_in = go[u] + w_o[u] * cu if use_peepholes else go[u]
            mr[u] = gate_act(clip(o_in, gate_clip), gate) * act(cu)


# The other two families, one kernel per activation each (same arguments as
# lstm_gates_tanh), compiled only when a cell uses gate_clip or a hard sigmoid gate.
@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_tanh_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _tanh_act, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _relu, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_sigmoid_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _sigmoid_f64, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_linear_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _linear, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_softsign_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _softsign, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_elu_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _elu, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_hard_sigmoid_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _hard_sigmoid, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu6_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _relu6, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_selu_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _selu, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_swish_clipped(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _swish, _sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_tanh_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _tanh_act, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _relu, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_sigmoid_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _sigmoid_f64, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_linear_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _linear, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_softsign_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _softsign, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_elu_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _elu, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_hard_sigmoid_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _hard_sigmoid, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu6_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _relu6, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_selu_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _selu, _hard_sigmoid_gate)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_swish_hard(g, n_rows, c, m, peepholes, gate):
    _gate_math_clipped(g, n_rows, c, m, peepholes, gate, _swish, _hard_sigmoid_gate)


GATE_KERNELS = {
    TANH: lstm_gates_tanh,
    RELU: lstm_gates_relu,
    SIGMOID: lstm_gates_sigmoid,
    LINEAR: lstm_gates_linear,
    SOFTSIGN: lstm_gates_softsign,
    ELU: lstm_gates_elu,
    HARD_SIGMOID: lstm_gates_hard_sigmoid,
    RELU6: lstm_gates_relu6,
    SELU: lstm_gates_selu,
    SWISH: lstm_gates_swish,
}
CLIPPED_GATE_KERNELS = {
    TANH: lstm_gates_tanh_clipped,
    RELU: lstm_gates_relu_clipped,
    SIGMOID: lstm_gates_sigmoid_clipped,
    LINEAR: lstm_gates_linear_clipped,
    SOFTSIGN: lstm_gates_softsign_clipped,
    ELU: lstm_gates_elu_clipped,
    HARD_SIGMOID: lstm_gates_hard_sigmoid_clipped,
    RELU6: lstm_gates_relu6_clipped,
    SELU: lstm_gates_selu_clipped,
    SWISH: lstm_gates_swish_clipped,
}
HARD_GATE_KERNELS = {
    TANH: lstm_gates_tanh_hard,
    RELU: lstm_gates_relu_hard,
    SIGMOID: lstm_gates_sigmoid_hard,
    LINEAR: lstm_gates_linear_hard,
    SOFTSIGN: lstm_gates_softsign_hard,
    ELU: lstm_gates_elu_hard,
    HARD_SIGMOID: lstm_gates_hard_sigmoid_hard,
    RELU6: lstm_gates_relu6_hard,
    SELU: lstm_gates_selu_hard,
    SWISH: lstm_gates_swish_hard,
}
# Every built-in gate kernel by family, then activation code.
GATE_KERNEL_FAMILIES = {PLAIN: GATE_KERNELS, CLIPPED: CLIPPED_GATE_KERNELS, HARD: HARD_GATE_KERNELS}


@intrinsic
def copy_into(typingctx, dst, src):
    """``dst[:] = src[:]`` for C-contiguous 1-D arrays of one dtype, as one memcpy.

    ``src.shape[0]`` elements are copied; ``dst`` must be at least that long
    and must not overlap ``src``.  A memcpy instead of a loop: numba's slice
    assignment carries a broadcast-shape check whose error message alone costs
    seconds of compile time, and LLVM would vectorise each copy loop anew.
    """
    contiguous_1d = all(
        isinstance(arg, types.Array) and arg.ndim == 1 and arg.layout == "C" for arg in (dst, src)
    )
    if not contiguous_1d or dst.dtype != src.dtype:
        return None

    def codegen(context, builder, sig, args):
        dst_array = context.make_array(dst)(context, builder, args[0])
        src_array = context.make_array(src)(context, builder, args[1])
        count = builder.extract_value(src_array.shape, 0)
        itemsize = context.get_abi_sizeof(context.get_data_type(src.dtype))
        cgutils.raw_memcpy(builder, dst_array.data, src_array.data, count, itemsize)
        return context.get_dummy_value()

    return types.none(dst, src), codegen


@kernel_jit(KERNEL_OPTIONS, inline="always")
def gather_chunk(
    rows, active, t0, t1, x, tokens, batch_stride, time_stride, lengths, reverse, x_rows, chunk_start
):
    """Copy the inputs of steps ``t0 <= t < t1`` of the running rows into ``x_rows``.

    ``rows`` are sorted by decreasing length, so the rows running at step ``t``
    are a prefix of them; step ``t``'s rows land in
    ``x_rows[chunk_start[t - t0]:chunk_start[t - t0 + 1]]``.  With ``tokens``
    (non-empty) a step's line ``l`` reads row ``tokens[l]`` of ``x`` (an
    embedding table), else row ``l``.  Returns the new number of running rows.
    """
    q = 0
    gather = tokens.shape[0] > 0
    for t in range(t0, t1):
        while active > 0 and lengths[rows[active - 1]] <= t:
            active -= 1
        chunk_start[t - t0] = q
        for r in range(active):
            b = rows[r]
            tt = lengths[b] - 1 - t if reverse else t
            line = b * batch_stride + tt * time_stride
            copy_into(x_rows[q], x[tokens[line] if gather else line])
            q += 1
    chunk_start[t1 - t0] = q
    return active


@kernel_jit(KERNEL_OPTIONS, inline="always")
def finish_rows(rows, c, h, lengths, max_time, out, batch_stride, time_stride, c_final, h_final):
    """Store each row's final state and zero its outputs past its length."""
    for r in range(rows.shape[0]):
        b = rows[r]
        copy_into(c_final[b], c[r])
        copy_into(h_final[b], h[r])
        for t in range(lengths[b], max_time):
            out[b * batch_stride + t * time_stride] = 0


@kernel_jit(KERNEL_OPTIONS, inline="always")
def as_records(calls, layer, weights, gate):
    """The plain tuples :func:`run_block` gets, as the records they hold.

    numba types a named tuple argument of a call from Python in Python (about a
    microsecond per record and call) but a plain tuple in C, so the layer
    kernels, called from Python, take each record as ``tuple(record)``; the
    functions they call by address rebuild the records here (and parallel
    loops cannot carry named tuples built inside the kernel).
    """
    return KernelCalls(*calls), LayerArrays(*layer), CellArrays(*weights), GateScalars(*gate)


@kernel_jit(KERNEL_OPTIONS, **CALLED_BY_ADDRESS)
def run_block(block_start, block_stop, calls, layer, weights, gate, tiling):
    """Run the rows ``layer.order[block_start:block_stop]`` through every step.

    ``layer`` is a :class:`LayerArrays`: ``order`` lists the rows of the batch
    by decreasing length; ``x`` and ``out`` are 2-D views ``[batch * max_time,
    depth]``; step ``t`` of row ``b`` is line ``b * batch_stride + t *
    time_stride`` of both (this covers both batch-major and time-major layouts
    without a copy).  Rows retire as their lengths run out; the padding of
    ``out`` past each length is set to zero.  ``weights`` is a
    :class:`CellArrays`, ``gate`` the :class:`GateScalars` for the gate kernel.

    Time is processed in chunks: for a chunk, the input part ``bias + x @ W_x``
    of every (step, running row) pair is one matrix product with many rows
    (each weight row is reused across all of them); then each step adds
    ``h @ W_h`` for the running rows and applies the gate math (with
    ``layer.projected`` the gathered rows are those sums already).
    ``tiling = [column_tile, chunk_rows]`` bounds the cache footprint.  The
    products and the gate math are :func:`matmul_accumulate` (or the bfloat16
    product of ``_kernels_bf16``, which takes ``w_x``, ``w_h`` and
    ``projection`` in its packed form) and the cell's gate kernel (one of
    :data:`GATE_KERNELS`, or a user activation's), called at the addresses in
    ``calls`` (a :class:`KernelCalls`).  The records come as plain tuples
    (see :func:`as_records`).
    """
    calls, layer, weights, gate = as_records(calls, layer, weights, gate)
    x = layer.x
    lengths = layer.lengths
    reverse = layer.reverse
    batch_stride = layer.batch_stride
    time_stride = layer.time_stride
    rows = layer.order[block_start:block_stop]
    n = rows.shape[0]
    depth = x.shape[1]
    units = layer.c0.shape[1]
    out_depth = layer.h0.shape[1]
    column_tile = tiling[0]
    chunk_steps = max(1, tiling[1] // max(n, 1))
    w_x = weights.w_x
    w_h = weights.w_h
    dtype = weights.bias.dtype
    projected = layer.projected
    x_rows = np.empty((0 if projected else chunk_steps * n, depth), dtype=dtype)
    gates = np.empty((chunk_steps * n, 4 * units), dtype=dtype)
    chunk_start = np.empty(chunk_steps + 1, dtype=np.int64)
    h = np.empty((n, out_depth), dtype=dtype)
    c = np.empty((n, units), dtype=dtype)
    m = np.empty((n, units), dtype=dtype)
    p = np.empty((n, out_depth), dtype=dtype)
    for r in range(n):
        copy_into(c[r], layer.c0[rows[r]])
        copy_into(h[r], layer.h0[rows[r]])
    steps = lengths[rows[0]] if n > 0 else 0
    active = n
    for t0 in range(0, steps, chunk_steps):
        t1 = min(t0 + chunk_steps, steps)
        if projected:  # the rows are bias + x @ W_x already: gathered straight into the gates
            active = gather_chunk(
                rows,
                active,
                t0,
                t1,
                x,
                layer.tokens,
                batch_stride,
                time_stride,
                lengths,
                reverse,
                gates,
                chunk_start,
            )
        else:
            active = gather_chunk(
                rows,
                active,
                t0,
                t1,
                x,
                layer.tokens,
                batch_stride,
                time_stride,
                lengths,
                reverse,
                x_rows,
                chunk_start,
            )
            total = chunk_start[t1 - t0]
            for q in range(total):
                copy_into(gates[q], weights.bias)
            call_compiled(calls.matmul, (x_rows, total, w_x, gates, column_tile))
        for t in range(t0, t1):
            lo = chunk_start[t - t0]
            running = chunk_start[t - t0 + 1] - lo
            g = gates[lo : lo + running]
            call_compiled(calls.matmul, (h, running, w_h, g, column_tile))
            call_compiled(calls.gates, (g, running, c, m, weights.peepholes, gate))
            new_h = m
            if weights.use_projection:
                p[:running] = 0
                call_compiled(calls.matmul, (m, running, weights.projection, p, column_tile))
                for r in range(running):
                    pr = p[r]
                    for k in range(out_depth):
                        pr[k] = clip(pr[k], weights.proj_clip)
                new_h = p
            for r in range(running):
                b = rows[r]
                tt = lengths[b] - 1 - t if reverse else t
                copy_into(h[r], new_h[r])
                copy_into(layer.out[b * batch_stride + tt * time_stride], new_h[r])
    finish_rows(
        rows,
        c,
        h,
        lengths,
        layer.max_time,
        layer.out,
        batch_stride,
        time_stride,
        layer.c_final,
        layer.h_final,
    )


# The counters of lstm_layer_split_units in SplitWork.sync (int64), each on a cache line
# (SYNC_STRIDE int64) of its own, SYNC_FIELDS of them per part (see sync_slot): the part's
# next step to claim; its steps done; whether its own thread has run it yet (1) or not (0);
# and, written at the end, how often that thread was held up.
SYNC_NEXT, SYNC_DONE, SYNC_STARTED, SYNC_HELD_UP = range(4)
SYNC_FIELDS = 4
SYNC_STRIDE = 16
# Turns of a spin-wait (a CPU pause each, about 30 ns on Zen 4) before a waiting thread yields its core.
SPINS_BEFORE_YIELD = 2000


def _int64_slot(context, builder, array_type, array, index, index_type):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [context.cast(builder, index, index_type, types.intp)])


def _is_int64_vector(array):
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64


@intrinsic
def sync_load(typingctx, array, index):
    """``array[index]`` of a 1-D int64 array as an atomic load with acquire order."""
    if not _is_int64_vector(array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        slot = _int64_slot(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        return builder.load_atomic(slot, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def sync_store(typingctx, array, index, value):
    """``array[index] = value`` on a 1-D int64 array as an atomic store with release order."""
    if not _is_int64_vector(array) or not isinstance(index, types.Integer) or value != types.int64:
        return None

    def codegen(context, builder, sig, args):
        slot = _int64_slot(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        builder.store_atomic(args[2], slot, "release", 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def sync_claim(typingctx, array, index, step):
    """Atomically turn ``array[index]`` from ``step`` into ``step + 1``; whether this call did it."""
    if not _is_int64_vector(array) or not isinstance(index, types.Integer) or step != types.int64:
        return None

    def codegen(context, builder, sig, args):
        slot = _int64_slot(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        following = builder.add(args[2], ir.Constant(ir.IntType(64), 1))
        swapped = builder.cmpxchg(slot, args[2], following, "acq_rel", "acquire")
        return builder.extract_value(swapped, 1)

    return types.boolean(array, index, step), codegen


@intrinsic
def spin_pause(typingctx):
    """One turn of a spin-wait: the CPU's pause hint on x86 (nothing elsewhere)."""

    def codegen(context, builder, sig, args):
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
            pause = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
            )
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def yield_core(typingctx):
    """``sched_yield()`` (POSIX; nothing elsewhere): let another thread waiting for this core run."""

    def codegen(context, builder, sig, args):
        if os.name == "posix":
            sched_yield = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"
            )
            builder.call(sched_yield, [])
        return context.get_dummy_value()

    return types.none(), codegen


@kernel_jit(KERNEL_OPTIONS, inline="always")
def sync_slot(field, part, n_parts):
    """Index in ``SplitWork.sync`` of counter ``field`` (``SYNC_NEXT``, ...) of part ``part``."""
    return (field * n_parts + part) * SYNC_STRIDE


@kernel_jit(KERNEL_OPTIONS, **CALLED_BY_ADDRESS)
def step_unit_part(part, t, t0, t1, calls, split, gate, work, layer, column_tile):
    """Step ``t`` of the units of part ``part`` (one task of :func:`lstm_layer_split_units`).

    ``split`` is a :class:`SplitWeights`, ``work`` a :class:`SplitWork`; ``t``
    lies in the chunk of steps ``[t0, t1)``.  At the chunk's first step the
    part gathers the chunk's inputs into its own ``work.x_rows[part]`` (rows of
    ``layer.x``, or with ``layer.tokens`` the embedding rows they name) and
    computes its input projections ``bias + x @ W_x`` for them.  The part's
    units of ``h`` are read from ``work.h[t % 2]``, their new values written to
    ``work.h[(t + 1) % 2]`` and ``layer.out``.
    """
    units = work.h.shape[2]
    part_units = split.peepholes.shape[2]
    part_gates = work.gates[part]
    chunk_start = work.chunk_start[part]
    rows = layer.order
    if t == t0:
        x_rows = work.x_rows[part]
        gather_chunk(
            rows,
            rows.shape[0],
            t0,
            t1,
            layer.x,
            layer.tokens,
            layer.batch_stride,
            layer.time_stride,
            layer.lengths,
            layer.reverse,
            x_rows,
            chunk_start,
        )
        chunk_rows = chunk_start[t1 - t0]
        for q in range(chunk_rows):
            copy_into(part_gates[q], split.bias[part])
        call_compiled(calls.matmul, (x_rows, chunk_rows, split.w_x[part], part_gates, column_tile))
    lo = chunk_start[t - t0]
    running = chunk_start[t - t0 + 1] - lo
    g = part_gates[lo : lo + running]
    call_compiled(calls.matmul, (work.h[t % 2], running, split.w_h[part], g, column_tile))
    m = work.m[part]
    call_compiled(calls.gates, (g, running, work.c[part], m, split.peepholes[part], gate))
    u0 = part * part_units
    u1 = min(u0 + part_units, units)
    h_next = work.h[(t + 1) % 2]
    for r in range(running):
        copy_into(h_next[r, u0:u1], m[r, : u1 - u0])
        b = rows[r]
        tt = layer.lengths[b] - 1 - t if layer.reverse else t
        copy_into(layer.out[b * layer.batch_stride + tt * layer.time_stride, u0:u1], m[r, : u1 - u0])


@kernel_jit(KERNEL_OPTIONS, parallel=True, no_cfunc_wrapper=True)
def lstm_layer_split_units(step_address, calls, split, gate, work, layer, chunk_steps, column_tile):
    """Run a small batch as one block, the threads splitting the units of every step.

    For batches too small to give every thread its own rows.  Units are cut
    into ``n_parts = work.c.shape[0]`` equal parts (the last one padded with
    zero-weight units); part ``p`` of step ``t`` is one call of
    :func:`step_unit_part` (compiled at ``step_address``) on the weights by
    part (``split``) and the work arrays (``work``).

    One parallel region runs the whole sequence: thread ``p`` of a prange over
    the parts runs part ``p`` of every step (its weights stay in that core's
    caches), and the threads meet after each step at a spin-wait on the
    counters of ``work.sync`` (see :func:`sync_slot`).  Each part of each step
    is claimed by one atomic compare-and-swap, so a thread that has run its own
    part of a step and finds another part of it not yet claimed (its thread
    descheduled, or not started: not yet woken, or fewer threads than parts)
    runs that part itself: the sequence never waits for a thread that is not
    running, only for a part under way.  A thread that has spun
    ``SPINS_BEFORE_YIELD`` turns yields its core between turns.  On return
    ``SYNC_HELD_UP`` of part ``p`` says how often thread ``p`` yielded or ran
    the part of a thread that had run before (signs of a machine too busy for
    this kernel), and ``SYNC_STARTED`` whether thread ``p`` ran its own part
    at all (not: not woken in time, or kept off its core).  Whichever
    thread runs a part, each element gets exactly the operations it gets in
    :func:`run_block`, so results are bitwise the same.  No projection
    (``LSTMCell(num_proj=...)`` always runs through :func:`lstm_layer`), and
    never ``layer.projected`` inputs (token ids gather their rows all the same).
    """
    rows = layer.order
    c0 = layer.c0
    h = work.h[0]
    c = work.c
    sync = work.sync
    n = rows.shape[0]
    n_parts = c.shape[0]
    units = c0.shape[1]
    part_units = c.shape[2]
    for r in range(n):
        copy_into(h[r], layer.h0[rows[r]])
        for p in range(n_parts):
            for u in range(min(part_units, units - p * part_units)):
                c[p, r, u] = c0[rows[r], p * part_units + u]
    for p in range(n_parts):
        sync[sync_slot(SYNC_NEXT, p, n_parts)] = 0
        sync[sync_slot(SYNC_DONE, p, n_parts)] = 0
        sync[sync_slot(SYNC_STARTED, p, n_parts)] = 0
        sync[sync_slot(SYNC_HELD_UP, p, n_parts)] = 0
    steps = layer.lengths[rows[0]] if n > 0 else 0
    for role in prange(n_parts):
        held_up = 0
        started = False
        for t in range(steps):
            t0 = t - t % chunk_steps
            t1 = min(t0 + chunk_steps, steps)
            for k in range(n_parts):
                part = (role + k) % n_parts  # its own part first
                done = sync_slot(SYNC_DONE, part, n_parts)
                claim = sync_slot(SYNC_NEXT, part, n_parts)
                spins = 0
                while sync_load(sync, done) <= t:
                    if sync_load(sync, claim) == t and sync_claim(sync, claim, t):
                        call_compiled(
                            step_address, (part, t, t0, t1, calls, split, gate, work, layer, column_tile)
                        )
                        sync_store(sync, done, t + 1)
                        if part == role and not started:
                            started = True
                            sync_store(sync, sync_slot(SYNC_STARTED, role, n_parts), 1)
                        elif part != role and sync_load(sync, sync_slot(SYNC_STARTED, part, n_parts)) != 0:
                            held_up += 1  # its thread ran before: descheduled since
                        break
                    spins += 1
                    spin_pause()
                    if spins % SPINS_BEFORE_YIELD == 0:
                        yield_core()
                        held_up += 1
        sync_store(sync, sync_slot(SYNC_HELD_UP, role, n_parts), held_up)
    h_rows = np.empty((n, units), dtype=c.dtype)
    c_rows = np.empty((n, units), dtype=c.dtype)
    for r in range(n):
        copy_into(h_rows[r], work.h[layer.lengths[rows[r]] % 2, r])
    for p in range(n_parts):
        u0 = p * part_units
        u1 = min(u0 + part_units, units)
        for r in range(n):
            copy_into(c_rows[r, u0:u1], c[p, r, : u1 - u0])
    finish_rows(
        rows,
        c_rows,
        h_rows,
        layer.lengths,
        layer.max_time,
        layer.out,
        layer.batch_stride,
        layer.time_stride,
        layer.c_final,
        layer.h_final,
    )


@kernel_jit(KERNEL_OPTIONS, parallel=True, no_cfunc_wrapper=True)
def lstm_layer(block_address, block_ptr, worker_ptr, worker_blocks, calls, layer, weights, gate, tiling):
    """Run one LSTM layer over a batch; each prange task is one worker's blocks.

    Block ``k`` is the rows ``layer.order[block_ptr[k]:block_ptr[k + 1]]``;
    worker ``w`` runs the blocks ``worker_blocks[worker_ptr[w]:worker_ptr[w + 1]]``.
    Each block is one call of the :func:`run_block` compiled at ``block_address``.
    The records come as plain tuples, passed on to :func:`run_block` as they are.
    """
    for worker in prange(worker_ptr.shape[0] - 1):
        for i in range(worker_ptr[worker], worker_ptr[worker + 1]):
            blk = worker_blocks[i]
            call_compiled(
                block_address, (block_ptr[blk], block_ptr[blk + 1], calls, layer, weights, gate, tiling)
            )


@kernel_jit(KERNEL_OPTIONS, no_cfunc_wrapper=True)
def project_table(calls, table, w_x, projection, column_tile):
    """``projection += table @ w_x`` by the product kernel at ``calls.matmul``.

    An embedding table's input projection (``projection`` holds the bias in
    every row): each row gets exactly the sums :func:`run_block` would give
    that row as a step's input, since the product's order of summation per
    element never depends on the other rows.
    """
    call_compiled(calls.matmul, (table, table.shape[0], w_x, projection, column_tile))


@kernel_jit(KERNEL_OPTIONS, no_cfunc_wrapper=True)
def lstm_layer_serial(block_address, block_ptr, calls, layer, weights, gate, tiling):
    """:func:`lstm_layer` on the calling thread alone, block after block.

    For processes forked after numba's OpenMP threads started (GNU OpenMP
    cannot run in such a child: numba terminates it); same blocks, same bits.
    """
    for blk in range(block_ptr.shape[0] - 1):
        call_compiled(
            block_address, (block_ptr[blk], block_ptr[blk + 1], calls, layer, weights, gate, tiling)
        )


def specialise_for_activation(user_activation, family=PLAIN):
    """A gate math kernel of ``family`` (as :data:`GATE_KERNEL_FAMILIES` holds) applying ``user_activation``.

    ``user_activation`` is a numba-compiled scalar function.  The kernel is
    compiled on first use and not cached on disk; the layer kernels call it
    through its address, so they are shared by every activation.
    """
    if family == PLAIN:

        @kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS, cache=False)
        def user_gates(g, n_rows, c, m, peepholes, gate):
            _gate_math(
                g,
                n_rows,
                c,
                m,
                peepholes,
                gate.use_peepholes,
                gate.forget_bias,
                gate.cell_clip,
                user_activation,
            )

        return user_gates
    gate_act = _hard_sigmoid_gate if family == HARD else _sigmoid_gate

    @kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS, cache=False)
    def user_gates_clipped(g, n_rows, c, m, peepholes, gate):
        _gate_math_clipped(g, n_rows, c, m, peepholes, gate, user_activation, gate_act)

    return user_gates_clipped


if config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: numba runs the kernels as Python (for debugging)

    def call_compiled(address, args):  # "address" is the Python function itself
        """Python stand-in of the intrinsic: call the function."""
        address(*args)

    def copy_into(dst, src):
        """Python stand-in of the intrinsic."""
        dst[: src.shape[0]] = src

    def sync_load(array, index):
        """Python stand-in of the intrinsic."""
        return array[index]

    def sync_store(array, index, value):
        """Python stand-in of the intrinsic."""
        array[index] = value

    def sync_claim(array, index, step):
        """Python stand-in of the intrinsic (the threads of a prange run one after another here)."""
        claimed = array[index] == step
        if claimed:
            array[index] = step + 1
        return claimed

    def spin_pause():
        """Python stand-in of the intrinsic."""

    def yield_core():
        """Python stand-in of the intrinsic."""

    def _int64_bits(x):
        """Python stand-in of the intrinsic."""
        return int(np.float64(x).view(np.int64))

    def _float64_from_bits(bits):
        """Python stand-in of the intrinsic."""
        return float(np.int64(bits).view(np.float64))

    def _python_tile(n_rows, n_vectors):
        def register_tile(a, row, w, g, col, k_start, k_stop):
            width = n_vectors * VECTOR_BYTES // g.itemsize
            for k in range(k_start, k_stop):
                g[row : row + n_rows, col : col + width] += (
                    a[row : row + n_rows, k, None] * w[k, col : col + width]
                )

        return register_tile

    _wide_tile = _python_tile(4, TILE_VECTORS)
    _narrow_tile = _python_tile(4, 1)
    _row_tile = _python_tile(1, ROW_TILE_VECTORS)
    _row_narrow_tile = _python_tile(1, 1)
