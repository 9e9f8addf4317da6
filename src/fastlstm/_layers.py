"""Run one layer, forwards, backwards or both ways: the one runner every driver uses.

:func:`fastlstm.dynamic_rnn`, :func:`fastlstm.bidirectional_dynamic_rnn`,
:class:`fastlstm.LSTMModel` (and through them ``fastlstm score`` and
:mod:`fastlstm.dask`) and a cell's single step all run their cells here, in
two phases: :func:`prepare` validates one direction of a layer (building an
unbuilt cell, checking its input depth and initial state) before any kernel
runs, so that a model checks every layer first; :func:`run` then runs the
prepared directions, each cell of a stack one kernel call over the whole
sequence (:func:`fastlstm._runner.run_layer`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._runner import LayerWeights, run_layer

if TYPE_CHECKING:
    from .cell import RNNCell


class Direction(enum.Enum):
    """Which way a cell runs over each row."""

    FORWARD = "forward"
    # Each row from its last valid step down to step 0 (TF's reverse_sequence
    # within the row's length); the outputs stay in input time order.
    BACKWARD = "backward"


_BACKWARD = Direction.BACKWARD  # a module global reads faster than an enum member, on every call


class LeafRun(NamedTuple):
    """One single-layer cell's share of a run: its weights in the run's dtype and its initial state."""

    weights: LayerWeights
    c0: np.ndarray  # [batch, units], C-contiguous in the run's dtype
    h0: np.ndarray  # [batch, out_depth]


class PreparedDirection(NamedTuple):
    """One direction of a layer, validated and ready for :func:`run`.

    ``leaves`` are the runs of ``cell``'s single-layer cells, bottom to top
    (one for a single cell, several for a :class:`~fastlstm.MultiRNNCell`);
    ``cell`` packs their final states into its own state structure.
    """

    cell: RNNCell
    direction: Direction
    leaves: list[LeafRun]


def prepare(
    cell: RNNCell,
    direction: Direction,
    depth: int,
    batch: int,
    initial_state: Any,
    dtype: np.dtype,
    context: str = "",
) -> PreparedDirection:
    """Validate ``cell`` running ``direction`` over ``batch`` rows of inputs of ``depth``.

    An unbuilt cell is built for ``depth``; ``initial_state`` (None: zeros) is
    checked and cast to ``dtype``. ``context`` prefixes error messages (e.g.
    ``"layers[2] cell_bw: "``). Nothing runs.
    """
    return PreparedDirection(cell, direction, cell._prepare(depth, batch, initial_state, dtype, context))


def run(
    layer: Sequence[PreparedDirection],
    inputs: Sequence[np.ndarray],
    lengths: np.ndarray,
    time_major: bool,
    precision: str = "float32",
    tokens: np.ndarray | None = None,
) -> list[tuple[np.ndarray, Any]]:
    """Run the directions of a layer; ``(outputs, final_state)`` for each, in order.

    ``inputs`` holds one kernel-ready array per direction (C-contiguous in that
    direction's dtype, ``[batch, max_time, depth]`` or time-major);
    ``lengths`` int64 ``[batch]``; ``precision`` that of the matrix products
    (``"bfloat16"``: float32 runs only). Outputs are in input time order for
    both directions and zero past each row's length. With ``tokens`` (int64
    ``[batch, max_time]`` or time-major, checked against the table) each
    direction's input is an embedding table ``[vocab, depth]`` whose rows its
    bottom cell gathers (:func:`fastlstm._runner.run_layer`).
    """
    results = []
    for (cell, direction, leaves), x in zip(layer, inputs):
        reverse = direction is _BACKWARD
        finals = []
        ids = tokens
        for weights, c0, h0 in leaves:
            x, c, h = run_layer(
                weights, x, lengths, c0, h0, time_major, reverse=reverse, precision=precision, tokens=ids
            )
            ids = None
            finals.append((c, h))
        results.append((x, cell._pack_final(iter(finals))))
    return results
