"""The matrix product under every layer: register tiles, their remainders and the one-row
form all give each element the same chain of multiply-adds, so a row's result is bitwise
the same whatever rows share its call, and on AVX2 and AVX-512 alike."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from cell_helpers import outputs_compiled_for
from fastlstm import _kernels
from fastlstm._native_calls import native_address


@njit
def _call_matmul(address, a, n_rows, w, g, column_tile):
    _kernels.call_compiled(address, (a, n_rows, w, g, column_tile))


def matmul(a, w, g, n_rows=None, column_tile=1024):
    """``g[:n_rows] += a[:n_rows] @ w`` through the compiled kernel; returns ``g``."""
    n_rows = a.shape[0] if n_rows is None else n_rows
    address = native_address(_kernels.matmul_accumulate, (a, 0, w, g, 0))
    _call_matmul(address, a, n_rows, w, g, column_tile)
    return g


# widths 4 * units: several wide tiles, a wide tile + narrow tiles, + scalar columns, scalar only
WIDTHS = [4 * 130, 4 * 20, 4 * 17, 4 * 3]
# depths: below one 8-row pass, odd, across the 128-row panels
DEPTHS = [1, 7, 29, 300]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_each_row_is_bitwise_the_same_alone_or_in_any_group(rng, dtype, width, depth):
    a = rng.uniform(-1, 1, (11, depth)).astype(dtype)
    w = rng.uniform(-1, 1, (depth, width)).astype(dtype)
    g0 = rng.uniform(-1, 1, (11, width)).astype(dtype)
    together = matmul(a, w, g0.copy())
    exact = g0.astype(np.float64) + a.astype(np.float64) @ w.astype(np.float64)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(together, exact, atol=tolerance * depth**0.5, rtol=0)
    for n_rows in (1, 2, 3, 4, 5, 8, 9):
        for first in (0, 11 - n_rows):
            part = matmul(
                a[first : first + n_rows].copy(), w, g0[first : first + n_rows].copy(), column_tile=48
            )
            np.testing.assert_array_equal(part, together[first : first + n_rows])


def test_only_the_first_n_rows_change(rng):
    a = rng.uniform(-1, 1, (6, 40)).astype(np.float32)
    w = rng.uniform(-1, 1, (40, 72)).astype(np.float32)
    g0 = rng.uniform(-1, 1, (6, 72)).astype(np.float32)
    g = matmul(a, w, g0.copy(), n_rows=5)
    np.testing.assert_array_equal(g[5], g0[5])
    np.testing.assert_array_equal(g[:5], matmul(a[:5].copy(), w, g0[:5].copy()))


_AVX2_SCRIPT = """
import sys
import numpy as np
import fastlstm
from fastlstm import _kernels
assert _kernels.VECTOR_BYTES == 32, _kernels.VECTOR_BYTES
cell = fastlstm.BasicLSTMCell(40)
cell.build(24, seed=5)
x = np.random.default_rng(5).uniform(-1, 1, (9, 6, 24)).astype(np.float32)
outputs, state = fastlstm.dynamic_rnn(cell, x, [6, 5, 6, 1, 0, 6, 3, 6, 2])
np.save(sys.argv[1], outputs)
"""

_HASWELL = (
    "+64bit,+avx,+avx2,+fma,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+f16c,+cx16,+fxsr,+xsave,+cmov"
)


def test_avx2_code_gives_the_same_bits(tmp_path):
    """Compiled for an AVX2 CPU (8-lane tiles, 4 x 2 registers), the same outputs, bit for bit."""
    compiled = outputs_compiled_for("haswell", _HASWELL, _AVX2_SCRIPT, tmp_path)
    import fastlstm

    cell = fastlstm.BasicLSTMCell(40)
    cell.build(24, seed=5)
    x = np.random.default_rng(5).uniform(-1, 1, (9, 6, 24)).astype(np.float32)
    outputs, _ = fastlstm.dynamic_rnn(cell, x, [6, 5, 6, 1, 0, 6, 3, 6, 2])
    np.testing.assert_array_equal(compiled, outputs)
