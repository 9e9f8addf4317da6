"""The cores this process may use, and numba's OpenMP pool kept from slowing other libraries down.

numba's ``omp`` threading layer (GNU OpenMP on Linux wheels) turns nested
parallelism on when it starts its pool: ``launch_threads`` calls
``omp_set_nested(1)`` on the thread that ran the first parallel function. When
the pool starts before PyTorch is imported, PyTorch never loads its own
``libgomp.so.1`` (the dynamic loader matches it by soname to the system copy
numba loaded) and shares numba's runtime, nesting included. (With PyTorch
imported first, numba's symbols bind to PyTorch's copy and nesting was seen to
stay off: no nested teams.) A library called afterwards from that thread then
nests its parallel regions: PyTorch's packed LSTM (``pack_padded_sequence``)
runs each step's gate math as small element-wise operations, each an OpenMP
region over the threads, and MKL's vector functions inside them (``vmsTanh``,
...) open one more team per thread. On 2 cores that is 4+ threads spin-waiting
at barriers for every tiny operation: ~170x slower. fastlstm's kernels never
nest, so after a call :func:`undo_openmp_nesting` turns nesting back off on the
calling thread (once per thread), unless the user asked for it through
``OMP_NESTED`` or ``OMP_MAX_ACTIVE_LEVELS``.

>>> usable_cores() >= 1
True
"""

from __future__ import annotations

import ctypes
import os
import re
import threading

from numba.np.ufunc import parallel as numba_parallel

__all__ = ["openmp_runtimes", "undo_openmp_nesting", "usable_cores"]

# OpenMP runtimes numba's omp layer may be linked against: GNU, LLVM, Intel.
_OPENMP_LIBRARY = re.compile(r"lib(gomp|omp|iomp5)[-.\w]*\.so[.\d]*$")
_done = threading.local()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def openmp_runtimes() -> list[str]:
    """Paths of the OpenMP runtime libraries mapped into this process (Linux; else empty)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if ".so" in line}
    except OSError:
        return []
    return sorted(p for p in paths if _OPENMP_LIBRARY.search(os.path.basename(p)))


def _nesting_requested() -> bool:
    return "OMP_NESTED" in os.environ or "OMP_MAX_ACTIVE_LEVELS" in os.environ


def undo_openmp_nesting() -> None:
    """Turn off the nested OpenMP parallelism numba's pool turned on, for this thread.

    Runs its body once per thread, and only once numba's ``omp`` layer has
    started; every OpenMP runtime mapped into the process gets
    ``omp_set_nested(0)`` (on a runtime nobody uses that is harmless).  Left
    alone when ``OMP_NESTED`` or ``OMP_MAX_ACTIVE_LEVELS`` is set.
    """
    if getattr(_done, "value", False):
        return
    if not getattr(numba_parallel, "_is_initialized", False):
        return  # nothing started yet: try again after a later call
    _done.value = True
    try:
        layer = numba_parallel.threading_layer()
    except ValueError:
        return
    if layer != "omp" or _nesting_requested():
        return
    flags = getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL
    for path in openmp_runtimes():
        try:
            runtime = ctypes.CDLL(path, mode=flags)
            set_nested = runtime.omp_set_nested
        except (OSError, AttributeError):
            continue
        set_nested.argtypes = [ctypes.c_int]
        set_nested.restype = None
        set_nested(0)
