"""The one place that sets numba compilation options for fastlstm's kernels.

* ``error_model="numpy"``: no zero-division check on float division, which
  would otherwise stop the vectoriser.
* fastmath flags are chosen one by one. Never ``nnan``/``ninf`` (NaN and Inf
  must propagate) and never ``reassoc`` (the order of every sum is fixed).
  ``contract`` (fuse a multiply and an add into one FMA) is allowed only where
  the fusion is unambiguous: in the matrix products every addition has exactly
  one product operand, so each sum becomes the same FMA chain in every
  kernel, vector lane and loop remainder.  The gate math adds two products
  (``c * sigmoid(f) + sigmoid(i) * act(j)``), which LLVM could fuse either way
  depending on the surrounding code, so it is compiled without ``contract``:
  that is what keeps a row's result bitwise the same in every kernel.
* ``cache=True``: compiled kernels are written to numba's on-disk cache so a
  new process does not pay the compile time again (see :func:`kernel_jit`).
* ``nogil=True``: the kernels release the GIL, so Python threads overlap.
* :data:`CALLED_BY_ADDRESS`: functions that only other kernels call, through
  their native address (see ``_native_calls``), skip the Python and C
  wrappers numba would otherwise generate and compile for each of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from numba import njit

KERNEL_OPTIONS: dict[str, Any] = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"contract", "nsz"},
    "nogil": True,
    "boundscheck": False,
}

GATE_OPTIONS: dict[str, Any] = {**KERNEL_OPTIONS, "fastmath": {"nsz"}}

CALLED_BY_ADDRESS: dict[str, Any] = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


def kernel_jit(options: dict[str, Any] = KERNEL_OPTIONS, **overrides: Any) -> Callable:
    """``numba.njit`` with ``options``; without the disk cache if it has nowhere to live.

    numba caches beside the package (``__pycache__``), else in a user cache
    directory, or in ``NUMBA_CACHE_DIR``. When none of these is writable (a
    read-only install with no home directory), the kernels still work: they are
    compiled in every process, with a warning saying so.
    """
    merged = {**options, **overrides}

    def decorate(func: Callable) -> Callable:
        try:
            return njit(**merged)(func)
        except RuntimeError as exc:
            if not merged.get("cache") or "no locator available" not in str(exc):
                raise
            warnings.warn(
                f"fastlstm: no writable cache directory for numba ({exc}); kernels will be "
                "compiled in every process. Set NUMBA_CACHE_DIR to a writable directory.",
                RuntimeWarning,
                stacklevel=2,
            )
            return njit(**{**merged, "cache": False})(func)

    return decorate
