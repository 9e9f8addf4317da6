"""The one place that sets numba compilation options for fastlstm's kernels.

* ``error_model="numpy"``: no zero-division check on float division, which
  would otherwise stop the vectoriser.
* fastmath flags are chosen one by one: ``contract`` (fuse multiply-adds),
  ``arcp`` (division by reciprocal) and ``nsz`` (ignore the sign of zero).
  Deliberately *not* ``reassoc``: the order of every sum is fixed so a row's
  result does not depend on the batch around it, and *not* ``nnan``/``ninf``:
  NaN and Inf must propagate.
* ``cache=True``: compiled kernels are written to numba's on-disk cache so a
  new process does not pay the compile time again.
* ``nogil=True``: the kernels release the GIL, so Python threads overlap.
"""

FASTMATH_FLAGS = frozenset({"contract", "arcp", "nsz"})

KERNEL_OPTIONS = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": set(FASTMATH_FLAGS),
    "nogil": True,
    "boundscheck": False,
}
