"""Precompile fastlstm's kernels into numba's on-disk cache.

Per dtype: the matrix product, the gate math (one kernel per built-in
activation and family: sigmoid gates, sigmoid gates with ``gate_clip``, hard
sigmoid gates), the block kernel, two parallel layer kernels (rows spread over
threads, and units spread over threads for tiny batches), the serial one
that processes forked from a parent running numba's threads use, and the
projection of an embedding table for token ids.  numba compiles
a kernel the first time it runs and caches it on disk, so a process that calls
:func:`warmup` once (e.g. while a container image is built) spares every later
process the compile time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import _validation as check
from ._runner import LayerWeights, run_layer
from .activations import ACTIVATIONS, resolve_activation, resolve_recurrent_activation

__all__ = ["warmup"]


def warmup(dtypes: Iterable[Any] = ("float32", "float64")) -> dict[str, float]:
    """Compile, or load from the cache, every built-in kernel for ``dtypes``.

    Covers all built-in activations and gate activations (``recurrent_activation``),
    ``gate_clip``, peepholes, clipping, projection, time-major and reversed runs
    (these are run-time switches of the same kernels).
    A user-defined numba activation gets a gate kernel of its own, compiled
    in each process and not cached on disk.

    Parameters
    ----------
    dtypes : iterable of dtype-like
        float32 and/or float64.

    Returns
    -------
    dict
        Seconds spent per dtype name (compile on an empty cache, load otherwise).

    Examples
    --------
    >>> import fastlstm
    >>> seconds = fastlstm.warmup(["float32"])
    >>> sorted(seconds)
    ['float32']
    """
    spent = {}
    for dtype in dtypes:
        dtype = check.float_dtype(dtype)
        start = time.perf_counter()
        x = np.zeros((1, 2, 2), dtype)
        state = np.zeros((1, 16), dtype)
        lengths = np.full(1, 2, dtype=np.int64)
        # Each built-in activation has a gate kernel of its own in each of the three families.
        families = [
            {},
            {"gate_clip": 1.0},
            {"recurrent_activation": resolve_recurrent_activation("hard_sigmoid")},
        ]
        for name in ACTIVATIONS:
            for family in families:
                weights = LayerWeights(
                    kernel=np.zeros((2 + 16, 64), dtype),
                    bias=np.zeros(64, dtype),
                    forget_bias=1.0,
                    activation=resolve_activation(name),
                    **family,
                )
                run_layer(weights, x, lengths, state, state, time_major=False, split_units=False)
        # the unit-split kernel, and the serial one of processes forked after numba's threads started
        run_layer(weights, x, lengths, state, state, time_major=False, split_units=True)
        run_layer(weights, x, lengths, state, state, time_major=False, serial=True)
        # token ids: an embedding table's projection (the rows' gather is a run-time switch)
        table, ids = np.zeros((3, 2), dtype), np.zeros((1, 2), np.int64)
        run_layer(weights, table, lengths, state, state, time_major=False, split_units=False, tokens=ids)
        spent[dtype.name] = time.perf_counter() - start
    return spent
