"""Precompile fastlstm's kernels into numba's on-disk cache.

Per dtype: the matrix product, the gate math (one kernel per built-in
activation and family: sigmoid gates, sigmoid gates with ``gate_clip``, hard
sigmoid gates), the block kernel, two parallel layer kernels (rows spread over
threads, and units spread over threads for tiny batches), the serial one
that processes forked from a parent running numba's threads use, and the
projection of an embedding table for token ids.  On request, the bfloat16
matrix product of ``precision="bfloat16"`` (float32 runs; every other kernel
of that mode is a float32 one).  numba compiles a kernel the first time it
runs and caches it on disk, so a process that calls :func:`warmup` once (e.g.
while a container image is built) spares every later process the compile time.
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


def warmup(
    dtypes: Iterable[Any] = ("float32", "float64"), precisions: Iterable[str] = ("float32",)
) -> dict[str, float]:
    """Compile, or load from the cache, every built-in kernel for ``dtypes`` and ``precisions``.

    Covers all built-in activations and gate activations (``recurrent_activation``),
    ``gate_clip``, peepholes, clipping, projection, time-major and reversed runs
    (these are run-time switches of the same kernels).
    A user-defined numba activation gets a gate kernel of its own, compiled
    in each process and not cached on disk.

    Parameters
    ----------
    dtypes : iterable of dtype-like, default ("float32", "float64")
        float32 and/or float64 (a single one is taken as a list of one).
    precisions : iterable of {"float32", "bfloat16"}, default ("float32",)
        The ``precision`` arguments of :func:`fastlstm.dynamic_rnn` to prepare:
        ``"float32"``, the default products, in every dtype of ``dtypes``;
        ``"bfloat16"``, the bfloat16 products, which run in float32 only, so
        ``dtypes`` must include float32.  The bfloat16 product kernel is
        compiled only when asked for here or by a bfloat16 call.

    Returns
    -------
    dict
        Seconds spent (compile on an empty cache, load otherwise): one entry per
        dtype name for the ``"float32"`` precision, and ``"bfloat16"`` for the
        bfloat16 products (prepared after the float32 ones, so it counts only
        what they add).

    Raises
    ------
    ValueError
        For a precision other than ``"float32"`` and ``"bfloat16"``, no
        precision at all, ``"bfloat16"`` without float32 in ``dtypes``, or a
        dtype that no precision in ``precisions`` runs in (float64 with only
        ``"bfloat16"``).
    TypeError
        For a dtype other than float32 and float64.

    Examples
    --------
    >>> import fastlstm
    >>> seconds = fastlstm.warmup(["float32"])
    >>> sorted(seconds)
    ['float32']
    >>> sorted(fastlstm.warmup(["float32"], precisions=["float32", "bfloat16"]))
    ['bfloat16', 'float32']
    """
    spent = {}
    for dtype, precision in check.warmup_runs(dtypes, precisions):
        start = time.perf_counter()
        _run_every_kernel(dtype, precision)
        spent[dtype.name if precision == "float32" else precision] = time.perf_counter() - start
    return spent


def _run_every_kernel(dtype: np.dtype, precision: str) -> None:
    """Run each kernel a call in ``dtype`` with ``precision`` products can use, on a tiny problem."""
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
            run_layer(weights, x, lengths, state, state, False, split_units=False, precision=precision)
    # the unit-split kernel, and the serial one of processes forked after numba's threads started
    run_layer(weights, x, lengths, state, state, False, split_units=True, precision=precision)
    run_layer(weights, x, lengths, state, state, False, serial=True, precision=precision)
    # token ids: an embedding table's projection (the rows' gather is a run-time switch)
    table, ids = np.zeros((3, 2), dtype), np.zeros((1, 2), np.int64)
    run_layer(
        weights, table, lengths, state, state, False, split_units=False, tokens=ids, precision=precision
    )
