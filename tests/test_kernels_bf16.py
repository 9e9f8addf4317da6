"""The bfloat16 matrix product: rounding to bfloat16, the weight layout, VDPBF16PS's arithmetic
(the emulation against hand-worked cases and, on AVX512-BF16 CPUs, against the instruction bit
for bit), row independence, and the error against a float64 product of the rounded operands."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastlstm import _kernels, _kernels_bf16
from fastlstm._native_calls import native_address
from naive import bf16

KERNELS = [_kernels_bf16.matmul_bf16_emulated]
if _kernels_bf16.HAS_AVX512_BF16:
    KERNELS.append(_kernels_bf16.matmul_bf16_native)

TINY = float(np.finfo(np.float32).tiny)


@njit
def _call_matmul(address, a, n_rows, w, g, column_tile):
    _kernels.call_compiled(address, (a, n_rows, w, g, column_tile))


def matmul(kernel, a, w, g, n_rows=None):
    """``g[:n_rows] += bf16(a[:n_rows]) @ w`` (``w`` packed) through ``kernel``; returns ``g``."""
    n_rows = a.shape[0] if n_rows is None else n_rows
    address = native_address(kernel, (a, 0, w, g, 0))
    _call_matmul(address, a, n_rows, w, g, 1024)
    return g


def as_bf16(x):
    return _kernels_bf16.bf16_to_float32(_kernels_bf16.round_to_bf16(x))


def test_rounding_matches_float64_round_half_even(rng):
    sign = rng.choice([-1.0, 1.0], 200_000)
    x = (sign * rng.uniform(1, 2, 200_000) * np.exp2(rng.integers(-135, 128, 200_000))).astype(np.float32)
    halfway = (rng.integers(0, 0x7F00, 1000).astype(np.uint32) << 16 | 0x8000).view(np.float32)  # exact ties
    x = np.concatenate([x, halfway, -halfway])
    with np.errstate(over="ignore"):  # rounding up past the largest float32: inf on both sides
        np.testing.assert_array_equal(as_bf16(x), bf16(x).astype(np.float32))


def test_rounding_special_values():
    x = np.array(
        [0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-39, -1e-39, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8]
    )
    expected = np.array([0.0, -0.0, np.inf, -np.inf, np.inf, -np.inf, 0.0, -0.0, 1.0, 1.0 + 2.0**-6])
    got = as_bf16(x.astype(np.float32))
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    nan_bits = _kernels_bf16.round_to_bf16(np.array([np.nan, -np.nan], np.float32))
    assert np.isnan(_kernels_bf16.bf16_to_float32(nan_bits)).all()
    signalling = np.array([0x7F800001, 0xFF800001], np.uint32).view(
        np.float32
    )  # payload in the low half only
    quieted = _kernels_bf16.round_to_bf16(signalling)
    assert list(quieted) == [0x7FC0, 0xFFC0]


def test_pack_weights_layout(rng):
    w = rng.standard_normal((7, 70)).astype(np.float32)
    packed = _kernels_bf16.pack_weights(w)
    assert packed.shape == (2 * 4, 64) and packed.dtype == np.float32 and packed.flags.c_contiguous
    packed = packed.view(np.uint32).reshape(2, 4, 64)  # [block, pair, column]: the words' bits
    bits = _kernels_bf16.round_to_bf16(w).astype(np.uint32)
    for b in range(2):
        for p in range(4):
            for c in range(64):
                n = 64 * b + c
                lo = bits[2 * p, n] if n < 70 else 0
                hi = bits[2 * p + 1, n] if n < 70 and 2 * p + 1 < 7 else 0
                assert packed[b, p, c] == lo | hi << 16, (b, p, c)


def one_pair(kernel, acc, a_lo, a_hi, w_lo, w_hi):
    """One element after one pair: ``acc`` then ``a_hi * w_hi`` then ``a_lo * w_lo``."""
    a = np.array([[a_lo, a_hi]], np.float32)
    w = _kernels_bf16.pack_weights(np.array([[w_lo], [w_hi]], np.float32))
    g = np.array([[acc]], np.float32)
    return matmul(kernel, a, w, g)[0, 0]


# (acc, a_lo, a_hi, w_lo, w_hi) -> the result by VDPBF16PS's rules, worked by hand.
SEMANTICS = [
    # hi first: 1 + 2**-24 ties to 1, then 1 + 2**-23 is exact; lo first would give 1 + 2**-22
    ((1.0, 2.0**-12, 2.0**-12, 2.0**-11, 2.0**-12), 1.0 + 2.0**-23),
    # each step rounds: 3/8 of an ulp of 1 is lost twice (one rounding of the sum would give 1 + 2**-23)
    ((1.0, 3 * 2.0**-13, 3 * 2.0**-13, 2.0**-13, 2.0**-13), 1.0),
    # DAZ: a denormal accumulator counts as zero
    ((TINY / 4, 0.0, 1.0, 0.0, TINY), TINY),
    # FTZ: a denormal result is flushed to a zero of its sign (then -0 + (-0) stays -0)
    ((-0.0, -1.0, -(2.0**-70), 0.0, 2.0**-60), -0.0),
    # FTZ after rounding to 24 bits with an unbounded exponent: 2**-126 - 2**-150 is denormal
    ((TINY, 0.0, 2.0**-75, 0.0, -(2.0**-75)), 0.0),
    # ... but 2**-126 - 2**-152 rounds to 2**-126, a normal number
    ((TINY, 0.0, 2.0**-76, 0.0, -(2.0**-76)), TINY),
    # overflow to infinity
    ((3e38, 0.0, 3e38, 0.0, 3e38), np.inf),
]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
@pytest.mark.parametrize(("operands", "expected"), SEMANTICS)
def test_vdpbf16ps_rules(kernel, operands, expected):
    got = one_pair(kernel, *operands)
    assert got == np.float32(expected)
    assert np.signbit(got) == np.signbit(expected)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
def test_nan_propagates(kernel):
    assert np.isnan(one_pair(kernel, 1.0, np.nan, 1.0, 1.0, 1.0))
    assert np.isnan(one_pair(kernel, np.nan, 1.0, 1.0, 1.0, 1.0))
    assert np.isnan(one_pair(kernel, 1.0, np.inf, 0.0, 0.0, 0.0))


# widths: several 64-column blocks (odd and even count) + 16-column vectors + a few columns,
# vectors only, fewer than 16; depths: one element, odd, across the 256-pair panels
WIDTHS = [4 * 130, 4 * 20, 4 * 3, 256]
DEPTHS = [1, 29, 300, 601]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_native_and_emulation_agree_bitwise_and_rows_are_independent(rng, width, depth):
    a = rng.uniform(-1, 1, (11, depth)).astype(np.float32)
    w = rng.uniform(-1, 1, (depth, width)).astype(np.float32)
    g0 = rng.uniform(-1, 1, (11, width)).astype(np.float32)
    packed = _kernels_bf16.pack_weights(w)
    exact = g0.astype(np.float64) + as_bf16(a).astype(np.float64) @ as_bf16(w).astype(np.float64)
    results = []
    for kernel in KERNELS:
        together = matmul(kernel, a, packed, g0.copy())
        bound = 2.0**-23 * (np.abs(g0) + np.abs(as_bf16(a)) @ np.abs(as_bf16(w))) * (depth + 1)
        assert (np.abs(together - exact) <= bound).all()
        for n_rows in (1, 2, 3, 4, 5, 9):
            for first in (0, 11 - n_rows):
                rows = slice(first, first + n_rows)
                part = matmul(kernel, a[rows].copy(), packed, g0[rows].copy())
                np.testing.assert_array_equal(part, together[rows])
        results.append(together)
    for other in results[1:]:
        np.testing.assert_array_equal(other.view(np.uint32), results[0].view(np.uint32))


@pytest.mark.skipif(not _kernels_bf16.HAS_AVX512_BF16, reason="needs a CPU with AVX512-BF16")
def test_native_matches_emulation_on_extreme_values(rng):
    """Wide exponents: underflowing products, denormal sums, overflow, cancellation, signed zeros."""
    row_exponents = np.array([-75, -70, -66, -63, -20, 0, 30, 62, 64])[:, None]
    column_exponents = rng.choice([-66, -63, -60, 0, 40, 64], 100)
    a = (rng.standard_normal((9, 40)) * np.exp2(row_exponents + rng.integers(-3, 4, (9, 40)))).astype(
        np.float32
    )
    a[rng.random(a.shape) < 0.05] = -0.0
    a[4, 7] = np.inf  # inf * 0 is NaN
    w = rng.standard_normal((40, 100)) * np.exp2(column_exponents + rng.integers(-3, 4, (40, 100)))
    w = w.astype(np.float32)
    w[7, :5] = 0.0
    g_exponents = np.clip(row_exponents + column_exponents, -149, 120)
    g0 = (rng.standard_normal((9, 100)) * np.exp2(g_exponents.astype(float))).astype(np.float32)
    packed = _kernels_bf16.pack_weights(w)
    with np.errstate(all="ignore"):
        native = matmul(_kernels_bf16.matmul_bf16_native, a, packed, g0.copy())
        emulated = matmul(_kernels_bf16.matmul_bf16_emulated, a, packed, g0.copy())
    both_nan = np.isnan(native) & np.isnan(emulated)
    assert np.isinf(native).any() and (native == 0).any() and np.isnan(native).any()
    np.testing.assert_array_equal(native.view(np.uint32)[~both_nan], emulated.view(np.uint32)[~both_nan])
    assert (np.isnan(native) == np.isnan(emulated)).all()


def test_only_the_first_n_rows_change(rng):
    a = rng.uniform(-1, 1, (6, 40)).astype(np.float32)
    packed = _kernels_bf16.pack_weights(rng.uniform(-1, 1, (40, 72)).astype(np.float32))
    g0 = rng.uniform(-1, 1, (6, 72)).astype(np.float32)
    for kernel in KERNELS:
        g = matmul(kernel, a, packed, g0.copy(), n_rows=5)
        np.testing.assert_array_equal(g[5], g0[5])


@njit
def _round_rows(halves, values):
    for r in range(values.shape[0]):
        _kernels_bf16._round_into(halves[r], values[r])


def test_rounding_inside_kernels_is_round_to_bf16(rng):
    """The block kernel's rounding (16 lanes at a time, then one by one) is round_to_bf16."""
    exponents = rng.integers(-140, 128, (40, 37))
    values = (rng.standard_normal((40, 37)) * np.exp2(exponents)).astype(np.float32)
    values[0, :8] = [np.nan, -np.nan, np.inf, -np.inf, 1e-40, -1e-40, 0.0, -0.0]
    values[1] = (rng.integers(0, 0x7F00, 37).astype(np.uint32) << 16 | 0x8000).view(np.float32)  # ties
    values[2, :2] = np.array([0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)  # signalling, -NaN
    halves = np.zeros(values.shape, np.uint16)
    with np.errstate(over="ignore", invalid="ignore"):
        _round_rows(halves, values)
    np.testing.assert_array_equal(halves, _kernels_bf16.round_to_bf16(values))


@njit
def _native_from_bias(ab, n_rows, w, g, bias):
    _kernels_bf16._product_native(ab, n_rows, w, g, _kernels_bf16._bias_rows(bias, n_rows))


@njit
def _emulated_from_bias(ab, n_rows, w, g, bias):
    _kernels_bf16._product_emulated(ab, n_rows, w, g, _kernels_bf16._bias_rows(bias, n_rows))


PRODUCTS_FROM_BIAS = [_emulated_from_bias] + ([_native_from_bias] if _kernels_bf16.HAS_AVX512_BF16 else [])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_products_from_the_bias_are_products_added_to_it(rng, width, depth):
    """Accumulators started from the bias (a row-stride-0 view) give ``g = bias; g += a @ w``."""
    a = rng.uniform(-1, 1, (11, depth)).astype(np.float32)
    packed = _kernels_bf16.pack_weights(rng.uniform(-1, 1, (depth, width)).astype(np.float32))
    bias = rng.uniform(-1, 1, width).astype(np.float32)
    pairs = _kernels_bf16.round_to_bf16(np.pad(a, ((0, 0), (0, depth % 2)))).view(np.uint32)
    pairs = np.ascontiguousarray(pairs)
    expected = matmul(KERNELS[-1], a, packed, np.tile(bias, (11, 1)))
    for product in PRODUCTS_FROM_BIAS:
        for n_rows in (11, 5, 1):
            g = np.full((11, width), np.nan, np.float32)
            product(pairs, n_rows, packed, g, bias)
            np.testing.assert_array_equal(g[:n_rows].view(np.uint32), expected[:n_rows].view(np.uint32))
            assert np.isnan(g[n_rows:]).all()
