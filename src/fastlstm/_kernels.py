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

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, overload

from ._config import CALLED_BY_ADDRESS, GATE_OPTIONS, kernel_jit

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


@kernel_jit()
def _tanh_ratio_f32(x):
    """Numerator and denominator of the float32 tanh approximation (q > 0).

    Compiled on its own with ``contract``: its Horner steps fuse into FMAs the
    same way wherever it is inlined, while the gate math around it is not
    contracted (see ``_config``).
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


@kernel_jit(inline="always")
def _axpy8(g, a, w0, w1, w2, w3, w4, w5, w6, w7):
    """g += a[0] * w0 + ... + a[7] * w7, summed left to right (FMA chain)."""
    a0 = a[0]
    a1 = a[1]
    a2 = a[2]
    a3 = a[3]
    a4 = a[4]
    a5 = a[5]
    a6 = a[6]
    a7 = a[7]
    for n in range(g.shape[0]):
        g[n] = (
            g[n]
            + a0 * w0[n]
            + a1 * w1[n]
            + a2 * w2[n]
            + a3 * w3[n]
            + a4 * w4[n]
            + a5 * w5[n]
            + a6 * w6[n]
            + a7 * w7[n]
        )


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


def _register_tile(n_rows, n_vectors):
    """An intrinsic ``g[row:row + n_rows, col:col + width] += a[rows, k0:k1] @ w[k0:k1, col:col + width]``.

    ``width`` is ``n_vectors`` SIMD registers of ``g``'s dtype.  The
    ``n_rows * n_vectors`` accumulators stay in registers for the whole panel
    ``k0 <= k < k1``: per ``k``, ``n_vectors`` loads of ``w``, one broadcast of
    ``a`` per row and one multiply-add (``llvm.fmuladd``: fused exactly where
    numba's ``contract`` would fuse) per accumulator.  Each element therefore
    gets the same chain of multiply-adds, in increasing ``k``, as in the loop
    form of :func:`_axpy8`.  Arrays are C-contiguous; bounds are the caller's.
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
_wide_tile = _register_tile(4, TILE_VECTORS)
_narrow_tile = _register_tile(4, 1)


@kernel_jit(**CALLED_BY_ADDRESS)
def matmul_accumulate(a, n_rows, w, g, column_tile):
    """``g[:n_rows] += a[:n_rows] @ w`` with a fixed summation order per element.

    Whatever path computes it, element ``g[r, n]`` receives ``a[r, 0] *
    w[0, n]``, ``a[r, 1] * w[1, n]``, ... one multiply-add at a time in
    increasing ``k``, so a row's result never depends on the other rows.
    Rows in groups of four go through register tiles (4 rows x
    ``TILE_VECTORS`` SIMD registers of columns, then 4 x 1 for the columns
    left, then a scalar loop for the last few), one panel of ``K_PANEL``
    weight rows at a time.  The last ``n_rows % 4`` rows apply eight weight
    rows per pass along the row, columns tiled by ``column_tile`` (the form
    that suits a single row: a matrix-vector product).
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
            gr = g[r, n0:n1]
            k = 0
            while k + 8 <= depth:
                _axpy8(
                    gr,
                    a[r, k : k + 8],
                    w[k, n0:n1],
                    w[k + 1, n0:n1],
                    w[k + 2, n0:n1],
                    w[k + 3, n0:n1],
                    w[k + 4, n0:n1],
                    w[k + 5, n0:n1],
                    w[k + 6, n0:n1],
                    w[k + 7, n0:n1],
                )
                k += 8
            while k < depth:
                ak = a[r, k]
                wk = w[k, n0:n1]
                for c in range(gr.shape[0]):
                    gr[c] = gr[c] + ak * wk[c]
                k += 1


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_tanh(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    """Gate math for the tanh activation: the default cell's kernel.

    The arguments of every gate kernel (``act_code`` is not used here): ``g``
    holds the pre-activations of ``n_rows`` rows, ``c`` the previous cell
    state (the new one on exit), ``m`` receives ``tanh(c_new) * sigmoid(o)``.
    Vectorised along the units (float32: rational tanh, two divisions per unit).
    """
    tanh_gates(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip)


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
def lstm_gates_relu(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _relu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_sigmoid(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _sigmoid_f64)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_linear(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _linear)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_softsign(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _softsign)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_elu(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _elu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_hard_sigmoid(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _hard_sigmoid)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_relu6(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _relu6)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_selu(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _selu)


@kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS)
def lstm_gates_swish(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
    _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, _swish)


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


@kernel_jit(inline="always")
def gather_chunk(rows, active, t0, t1, x, batch_stride, time_stride, lengths, reverse, x_rows, chunk_start):
    """Copy the inputs of steps ``t0 <= t < t1`` of the running rows into ``x_rows``.

    ``rows`` are sorted by decreasing length, so the rows running at step ``t``
    are a prefix of them; step ``t``'s rows land in
    ``x_rows[chunk_start[t - t0]:chunk_start[t - t0 + 1]]``.  Returns the new
    number of running rows.
    """
    q = 0
    for t in range(t0, t1):
        while active > 0 and lengths[rows[active - 1]] <= t:
            active -= 1
        chunk_start[t - t0] = q
        for r in range(active):
            b = rows[r]
            tt = lengths[b] - 1 - t if reverse else t
            copy_into(x_rows[q], x[b * batch_stride + tt * time_stride])
            q += 1
    chunk_start[t1 - t0] = q
    return active


@kernel_jit(inline="always")
def finish_rows(rows, c, h, lengths, max_time, out, batch_stride, time_stride, c_final, h_final):
    """Store each row's final state and zero its outputs past its length."""
    for r in range(rows.shape[0]):
        b = rows[r]
        copy_into(c_final[b], c[r])
        copy_into(h_final[b], h[r])
        for t in range(lengths[b], max_time):
            out[b * batch_stride + t * time_stride] = 0


@kernel_jit(**CALLED_BY_ADDRESS)
def run_block(
    order,
    block_start,
    block_stop,
    matmul_address,
    gates_address,
    x,
    batch_stride,
    time_stride,
    max_time,
    lengths,
    w_x,
    w_h,
    bias,
    scalars,
    peepholes,
    use_peepholes,
    projection,
    use_projection,
    act_code,
    reverse,
    tiling,
    c0,
    h0,
    out,
    c_final,
    h_final,
):
    """Run the rows ``order[block_start:block_stop]`` through every step.

    ``order`` lists the rows of the batch by decreasing length.
    ``x`` and ``out`` are 2-D views ``[batch * max_time, depth]``; step ``t`` of
    row ``b`` is line ``b * batch_stride + t * time_stride`` of both (this
    covers both batch-major and time-major layouts without a copy).  Rows retire as their
    lengths run out; the padding of ``out`` past each length is set to zero.

    Time is processed in chunks: for a chunk, the input part ``bias + x @ W_x``
    of every (step, running row) pair is one matrix product with many rows
    (each weight row is reused across all of them); then each step adds
    ``h @ W_h`` for the running rows and applies the gate math.
    ``tiling = [column_tile, chunk_rows]`` bounds the cache footprint.  The
    products and the gate math are :func:`matmul_accumulate` (or the bfloat16
    product of ``_kernels_bf16``, with ``w_x``, ``w_h`` and ``projection`` in
    its packed form) and the cell's gate kernel (one of :data:`GATE_KERNELS`,
    or a user activation's), called at ``matmul_address``/``gates_address``.
    """
    rows = order[block_start:block_stop]
    n = rows.shape[0]
    depth = x.shape[1]
    units = c0.shape[1]
    out_depth = h0.shape[1]
    column_tile = tiling[0]
    chunk_steps = max(1, tiling[1] // max(n, 1))
    forget_bias = scalars[0]
    cell_clip = scalars[1]
    proj_clip = scalars[2]
    dtype = bias.dtype
    x_rows = np.empty((chunk_steps * n, depth), dtype=dtype)
    gates = np.empty((chunk_steps * n, 4 * units), dtype=dtype)
    chunk_start = np.empty(chunk_steps + 1, dtype=np.int64)
    h = np.empty((n, out_depth), dtype=dtype)
    c = np.empty((n, units), dtype=dtype)
    m = np.empty((n, units), dtype=dtype)
    p = np.empty((n, out_depth), dtype=dtype)
    for r in range(n):
        copy_into(c[r], c0[rows[r]])
        copy_into(h[r], h0[rows[r]])
    steps = lengths[rows[0]] if n > 0 else 0
    active = n
    for t0 in range(0, steps, chunk_steps):
        t1 = min(t0 + chunk_steps, steps)
        active = gather_chunk(
            rows, active, t0, t1, x, batch_stride, time_stride, lengths, reverse, x_rows, chunk_start
        )
        total = chunk_start[t1 - t0]
        for q in range(total):
            copy_into(gates[q], bias)
        call_compiled(matmul_address, (x_rows, total, w_x, gates, column_tile))
        for t in range(t0, t1):
            lo = chunk_start[t - t0]
            running = chunk_start[t - t0 + 1] - lo
            g = gates[lo : lo + running]
            call_compiled(matmul_address, (h, running, w_h, g, column_tile))
            call_compiled(
                gates_address, (g, running, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code)
            )
            new_h = m
            if use_projection:
                p[:running] = 0
                call_compiled(matmul_address, (m, running, projection, p, column_tile))
                for r in range(running):
                    pr = p[r]
                    for k in range(out_depth):
                        pr[k] = clip(pr[k], proj_clip)
                new_h = p
            for r in range(running):
                b = rows[r]
                tt = lengths[b] - 1 - t if reverse else t
                copy_into(h[r], new_h[r])
                copy_into(out[b * batch_stride + tt * time_stride], new_h[r])
    finish_rows(rows, c, h, lengths, max_time, out, batch_stride, time_stride, c_final, h_final)


@kernel_jit(**CALLED_BY_ADDRESS)
def step_unit_part(
    part,
    t,
    chunk_rows,
    lo,
    running,
    matmul_address,
    gates_address,
    x_rows,
    w_x_parts,
    w_h_parts,
    bias_parts,
    scalars,
    peephole_parts,
    use_peepholes,
    act_code,
    column_tile,
    gates,
    h,
    h_next,
    c,
    m,
    rows,
    lengths,
    reverse,
    out,
    batch_stride,
    time_stride,
):
    """Step ``t`` of the units of part ``part`` (one task of :func:`lstm_layer_split_units`).

    At a chunk's first step (``chunk_rows > 0``) it first computes the part's
    input projections ``bias + x @ W_x`` for the chunk's ``chunk_rows``
    (step, row) pairs.  The step's rows are ``gates[part, lo:lo + running]``;
    the new outputs of the part's units go to ``h_next`` and ``out``.
    """
    units = h.shape[1]
    part_units = peephole_parts.shape[2]
    part_gates = gates[part]
    if chunk_rows > 0:
        for q in range(chunk_rows):
            copy_into(part_gates[q], bias_parts[part])
        call_compiled(matmul_address, (x_rows, chunk_rows, w_x_parts[part], part_gates, column_tile))
    g = part_gates[lo : lo + running]
    call_compiled(matmul_address, (h, running, w_h_parts[part], g, column_tile))
    call_compiled(
        gates_address,
        (g, running, c[part], m[part], peephole_parts[part], use_peepholes, scalars[0], scalars[1], act_code),
    )
    u0 = part * part_units
    u1 = min(u0 + part_units, units)
    for r in range(running):
        copy_into(h_next[r, u0:u1], m[part, r, : u1 - u0])
        b = rows[r]
        tt = lengths[b] - 1 - t if reverse else t
        copy_into(out[b * batch_stride + tt * time_stride, u0:u1], m[part, r, : u1 - u0])


@kernel_jit(parallel=True, no_cfunc_wrapper=True)
def lstm_layer_split_units(
    step_address,
    step_args,
    x,
    batch_stride,
    time_stride,
    max_time,
    lengths,
    reverse,
    rows,
    chunk_steps,
    x_rows,
    chunk_start,
    h,
    h_next,
    c,
    c0,
    h0,
    out,
    c_final,
    h_final,
):
    """Run a small batch as one block, the threads splitting the units each step.

    For batches too small to give every thread its own rows.  Units are cut
    into ``n_parts = c.shape[0]`` equal parts (the last one padded with
    zero-weight units); each step is one prange over the parts, each task one
    call of :func:`step_unit_part` (compiled at ``step_address``) with
    ``(part, t, chunk_rows, lo, running) + step_args``; ``step_args`` holds
    the weights by part and the work arrays ``x_rows``, ``h``, ``h_next``,
    ``c``, ... that this function also uses.  Each element gets exactly the
    operations it gets in :func:`run_block`, so results are bitwise the same.
    No projection (``LSTMCell(num_proj=...)`` always runs through
    :func:`lstm_layer`).
    """
    n = rows.shape[0]
    n_parts = c.shape[0]
    units = c0.shape[1]
    part_units = c.shape[2]
    for r in range(n):
        copy_into(h[r], h0[rows[r]])
        for p in range(n_parts):
            for u in range(min(part_units, units - p * part_units)):
                c[p, r, u] = c0[rows[r], p * part_units + u]
    steps = lengths[rows[0]] if n > 0 else 0
    active = n
    for t0 in range(0, steps, chunk_steps):
        t1 = min(t0 + chunk_steps, steps)
        active = gather_chunk(
            rows, active, t0, t1, x, batch_stride, time_stride, lengths, reverse, x_rows, chunk_start
        )
        for t in range(t0, t1):
            lo = chunk_start[t - t0]
            running = chunk_start[t - t0 + 1] - lo
            chunk_rows = chunk_start[t1 - t0] if t == t0 else 0
            for part in prange(n_parts):
                call_compiled(step_address, (part, t, chunk_rows, lo, running) + step_args)
            for r in range(running):
                copy_into(h[r], h_next[r])
    c_rows = np.empty((n, units), dtype=c.dtype)
    for p in range(n_parts):
        u0 = p * part_units
        u1 = min(u0 + part_units, units)
        for r in range(n):
            copy_into(c_rows[r, u0:u1], c[p, r, : u1 - u0])
    finish_rows(rows, c_rows, h, lengths, max_time, out, batch_stride, time_stride, c_final, h_final)


@kernel_jit(parallel=True, no_cfunc_wrapper=True)
def lstm_layer(block_address, order, block_ptr, worker_ptr, worker_blocks, block_args):
    """Run one LSTM layer over a batch; each prange task is one worker's blocks.

    ``order`` lists the rows by decreasing length; block ``k`` is
    ``order[block_ptr[k]:block_ptr[k + 1]]``; worker ``w`` runs the blocks
    ``worker_blocks[worker_ptr[w]:worker_ptr[w + 1]]``.  Each block is one call
    of the :func:`run_block` compiled at ``block_address`` with
    ``(order, start, stop) + block_args``.
    """
    for worker in prange(worker_ptr.shape[0] - 1):
        for i in range(worker_ptr[worker], worker_ptr[worker + 1]):
            blk = worker_blocks[i]
            call_compiled(block_address, (order, block_ptr[blk], block_ptr[blk + 1]) + block_args)


@kernel_jit(no_cfunc_wrapper=True)
def lstm_layer_serial(block_address, order, block_ptr, block_args):
    """:func:`lstm_layer` on the calling thread alone, block after block.

    For processes forked after numba's OpenMP threads started (GNU OpenMP
    cannot run in such a child: numba terminates it); same blocks, same bits.
    """
    for blk in range(block_ptr.shape[0] - 1):
        call_compiled(block_address, (order, block_ptr[blk], block_ptr[blk + 1]) + block_args)


def specialise_for_activation(user_activation):
    """A gate math kernel (as :data:`GATE_KERNELS` holds) that applies ``user_activation``.

    ``user_activation`` is a numba-compiled scalar function.  The kernel is
    compiled on first use and not cached on disk; the layer kernels call it
    through its address, so they are shared by every activation.
    """

    @kernel_jit(GATE_OPTIONS, **CALLED_BY_ADDRESS, cache=False)
    def user_gates(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, act_code):
        _gate_math(g, n_rows, c, m, peepholes, use_peepholes, forget_bias, cell_clip, user_activation)

    return user_gates


if config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: numba runs the kernels as Python (for debugging)

    def call_compiled(address, args):  # "address" is the Python function itself
        """Python stand-in of the intrinsic: call the function."""
        address(*args)

    def copy_into(dst, src):
        """Python stand-in of the intrinsic."""
        dst[: src.shape[0]] = src

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
