"""Addresses of compiled kernels, for kernels that call each other through them.

numba normally links a called function's code into its caller, and optimises
and generates machine code for it again there; with the parallel kernels that
happened at three levels (function, gufunc, parallel wrapper), which made a
first run on an empty cache take ~15 s.  Calling through an address instead
compiles each heavy function once, on its own, and numba caches each one on
disk separately.

:func:`native_address` compiles, or loads from the cache, a function for the
exact types of some arguments and returns its entry point;
``_kernels.call_compiled`` (inside a kernel) calls such an address with
arguments of those types.  The caller must pass arguments whose numba types
are exactly the ones the address was compiled for: the runner builds every
array it passes C-contiguous in the weights' dtype.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numba
import numpy as np
from numba import types
from numba.core.typing import signature

# Per dispatcher, the address of each specialisation (by type_key of its arguments). Weak
# keys: a user activation's gate kernel, and its entry here, go when its cells are gone.
_addresses: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# The array flags numba's array types depend on: C/F contiguity, alignment, writeability.
_TYPED_FLAGS = 0x1 | 0x2 | 0x100 | 0x400


def type_key(value: object) -> object:
    """What numba's type of ``value`` depends on, cheaply (well under a microsecond per array)."""
    if isinstance(value, np.ndarray):
        return (type(value), value.dtype, value.ndim, value.flags.num & _TYPED_FLAGS)
    if isinstance(value, tuple):  # a plain or a named tuple (a record: its class is part of its type)
        return (type(value), *map(type_key, value))
    return type(value)


def native_address(dispatcher: Callable, args: tuple) -> int | Callable:
    """Entry point of ``dispatcher`` compiled for the numba types of ``args``.

    Compiles the specialisation, or loads it from numba's on-disk cache, on
    first use; later calls with arguments of the same types are a dictionary
    lookup.  The function must return nothing.  With numba's JIT disabled
    (``NUMBA_DISABLE_JIT=1``), the "address" is the Python function itself,
    which the Python stand-in of ``call_compiled`` calls.
    """
    if not hasattr(dispatcher, "get_compile_result"):  # NUMBA_DISABLE_JIT: a plain Python function
        return dispatcher
    by_types = _addresses.get(dispatcher)
    if by_types is None:
        by_types = _addresses.setdefault(dispatcher, {})
    key = type_key(args)
    address = by_types.get(key)
    if address is None:
        arg_types = tuple(numba.typeof(value) for value in args)
        result = dispatcher.get_compile_result(signature(types.none, *arg_types))
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        by_types[key] = address
    return address
