"""A small model type: a stack of layers, each a cell, a backward-only cell or a bidirectional pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _layers
from . import _validation as check
from ._layers import Direction
from .cell import RNNCell, SeedLike

__all__ = ["Backward", "LSTMModel"]


class Backward:
    """A layer of :class:`LSTMModel` that runs ``cell`` backwards only (ONNX's ``direction="reverse"``).

    Each row runs from its last valid step down to step 0: it is reversed
    *within its own length*, as TF's ``reverse_sequence`` does, and the
    padding stays where it is. The outputs are in input time order (step
    ``t`` belongs to input step ``t``) and zero past each length: exactly the
    ``output_bw`` that :func:`fastlstm.bidirectional_dynamic_rnn` gives for
    ``cell_bw=cell``. The layer's state (initial and final) is ``cell``'s; the
    final state is the state after reaching step 0.

    Parameters
    ----------
    cell : BasicLSTMCell, LSTMCell or MultiRNNCell
        The cell to run backwards; built on first use, as in any layer.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> model = fastlstm.LSTMModel([fastlstm.Backward(fastlstm.BasicLSTMCell(4))])
    >>> x = np.random.default_rng(0).random((2, 5, 3), dtype=np.float32)
    >>> outputs, (state,) = model(x, sequence_length=[5, 2])
    >>> outputs.shape, float(abs(outputs[1, 2:]).max())
    ((2, 5, 4), 0.0)

    The same numbers as the backward half of a bidirectional run:

    >>> (_, output_bw), (_, state_bw) = fastlstm.bidirectional_dynamic_rnn(
    ...     fastlstm.BasicLSTMCell(2), model.layers[0].cell, x, sequence_length=[5, 2])
    >>> bool((output_bw == outputs).all() and (state_bw.h == state.h).all())
    True
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: RNNCell) -> None:
        check.rnn_cell(cell, "the cell of a Backward layer", RNNCell)
        self._cell = cell

    @property
    def cell(self) -> RNNCell:
        """The cell run backwards."""
        return self._cell

    def __repr__(self) -> str:
        return f"Backward({self._cell!r})"


Layer = RNNCell | tuple[RNNCell, RNNCell] | Backward


def _directions(layer: Layer) -> tuple[tuple[RNNCell, Direction, str], ...]:
    """``(cell, direction, label)`` for each direction of ``layer``; labels name a pair's cells."""
    if isinstance(layer, tuple):
        return ((layer[0], Direction.FORWARD, " cell_fw"), (layer[1], Direction.BACKWARD, " cell_bw"))
    if isinstance(layer, Backward):
        return ((layer.cell, Direction.BACKWARD, ""),)
    return ((layer, Direction.FORWARD, ""),)


def _layer_cells(layer: Layer) -> tuple[RNNCell, ...]:
    return tuple(cell for cell, _, _ in _directions(layer))


def _output_size(layer: Layer) -> int:
    return sum(cell.output_size for cell in _layer_cells(layer))


def _input_size(layer: Layer) -> int | None:
    sizes = [cell.input_size for cell in _layer_cells(layer) if cell.input_size is not None]
    return sizes[0] if sizes else None


class LSTMModel:
    """Layers run one after the other; a layer is a cell, a :class:`Backward` cell or a ``(cell_fw, cell_bw)`` pair.

    A cell layer is run as :func:`fastlstm.dynamic_rnn` runs it. A pair is a
    bidirectional layer, run as :func:`fastlstm.bidirectional_dynamic_rnn`;
    its output is ``concatenate([output_fw, output_bw], axis=-1)``, as the
    bidirectional layers of PyTorch and Keras give it. ``Backward(cell)``
    runs ``cell`` backwards only, as the backward half of a pair. Layer
    ``k + 1`` takes the outputs of layer ``k`` as its inputs.

    Parameters
    ----------
    layers : list
        Bottom to top; each a :class:`BasicLSTMCell`, :class:`LSTMCell`,
        :class:`MultiRNNCell`, a :class:`Backward` layer of one of them, or
        a ``(cell_fw, cell_bw)`` pair of them. Every
        cell object appears once and all share one dtype. Unbuilt cells are
        built on first use for the depth they receive; built ones must fit:
        a layer's input size equals the previous layer's output size (the sum
        of both directions' for a pair).

    Attributes
    ----------
    layers : list
        The layers as given (pairs as tuples), bottom to top. Every call checks
        that they still fit together.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> model = fastlstm.LSTMModel([
    ...     (fastlstm.BasicLSTMCell(8), fastlstm.BasicLSTMCell(8)),
    ...     fastlstm.LSTMCell(4, use_peepholes=True),
    ... ])
    >>> outputs, states = model(np.ones((2, 5, 3), np.float32), sequence_length=[5, 3])
    >>> outputs.shape, model.input_size, model.output_size, float(abs(outputs[1, 3:]).max())
    ((2, 5, 4), 3, 4, 0.0)
    >>> (state_fw, state_bw), state_top = states
    >>> state_fw.h.shape, state_top.h.shape
    ((2, 8), (2, 4))
    """

    def __init__(self, layers: Sequence[Any]) -> None:
        check.layer_list(layers, RNNCell)
        self.layers: list[Layer] = [
            check.layer(layer, k, RNNCell, Backward) for k, layer in enumerate(layers)
        ]
        cells = [cell for layer in self.layers for cell in _layer_cells(layer)]
        check.distinct_cells([leaf for cell in cells for leaf in cell._leaf_cells()])
        labels = [
            f"layers[{k}]{label}" for k, layer in enumerate(self.layers) for _, _, label in _directions(layer)
        ]
        self._dtype = check.same_dtype(cells, labels)
        check.layer_chain(
            [(f"layers[{k}]", _input_size(layer), _output_size(layer)) for k, layer in enumerate(self.layers)]
        )

    @property
    def dtype(self) -> np.dtype:
        """The dtype of every cell, in which the model computes."""
        return self._dtype

    @property
    def input_size(self) -> int | None:
        """Depth of the inputs (None while the first layer is not built)."""
        return _input_size(self.layers[0])

    @property
    def output_size(self) -> int:
        """Depth of the outputs (both directions' for a bidirectional top layer)."""
        return _output_size(self.layers[-1])

    @property
    def built(self) -> bool:
        """Whether every cell has its weights."""
        return all(cell.built for layer in self.layers for cell in _layer_cells(layer))

    def build(self, input_size: int, seed: SeedLike = None) -> None:
        """Build every cell, bottom to top (forward before backward), for inputs of depth ``input_size``.

        Parameters
        ----------
        input_size : int
            Depth of the model's inputs.
        seed : int or numpy.random.Generator, optional
            Seed (or generator) of the random initialisation, shared by the cells in order.
        """
        rng = np.random.default_rng(seed)
        depth = input_size
        for layer in self.layers:
            for cell in _layer_cells(layer):
                cell.build(depth, rng)
            depth = _output_size(layer)

    def __call__(
        self,
        inputs: Any,
        sequence_length: Any = None,
        initial_state: Sequence[Any] | None = None,
        time_major: bool = False,
        precision: str = "float32",
    ) -> tuple[np.ndarray, tuple]:
        """Run the model over a batch of sequences.

        Parameters
        ----------
        inputs : array_like, shape ``[batch, max_time, input_size]``
            ``[max_time, batch, input_size]`` when ``time_major``. Never modified.
        sequence_length : array_like of int, shape ``[batch]``, optional
            Valid steps per row, each in ``[0, max_time]``; all steps when None.
        initial_state : sequence, optional
            One entry per layer: None (zeros), the cell's state (also for a
            :class:`Backward` layer), or for a bidirectional layer a pair
            ``(state_fw, state_bw)`` (either may be None). States are cast to
            :attr:`dtype`.
        time_major : bool, default False
            Layout of ``inputs`` and ``outputs``.
        precision : {"float32", "bfloat16"}, default "float32"
            Precision of every layer's matrix products, as in
            :func:`fastlstm.dynamic_rnn`; ``"bfloat16"`` needs a float32 model.

        Returns
        -------
        outputs : ndarray
            The top layer's outputs, ``[batch, max_time, output_size]``
            (time-major if ``time_major``), zero past each length.
        states : tuple
            Each layer's final state; a ``(state_fw, state_bw)`` pair for a
            bidirectional layer.

        Raises
        ------
        ValueError
            Bad shapes or lengths, inputs or states that do not fit the layers.
        TypeError
            Non-numeric inputs, lengths or states.
        """
        dtype = self._dtype
        precision = check.precision(precision, dtype, "the model is float64: build it in float32")
        x, lengths = check.run_inputs(inputs, sequence_length, time_major, dtype, self.output_size)
        batch, depth = lengths.shape[0], x.shape[2]
        prepared = []
        for k, (layer, state) in enumerate(
            zip(self.layers, check.model_states(initial_state, len(self.layers)))
        ):
            directions = _directions(layer)
            states = check.pair_state(state, k) if isinstance(layer, tuple) else (state,)
            prepared.append(
                [
                    _layers.prepare(cell, direction, depth, batch, s, dtype, f"layers[{k}]{label}: ")
                    for (cell, direction, label), s in zip(directions, states)
                ]
            )
            depth = _output_size(layer)
        final_states = []
        for layer in prepared:
            results = _layers.run(layer, (x,) * len(layer), lengths, time_major, precision)
            if len(results) == 1:
                ((x, state),) = results
                final_states.append(state)
            else:
                (output_fw, state_fw), (output_bw, state_bw) = results
                x = np.concatenate([output_fw, output_bw], axis=-1)
                final_states.append((state_fw, state_bw))
        return x, tuple(final_states)

    def __repr__(self) -> str:
        lines = []
        for layer in self.layers:
            text = f"({layer[0]!r}, {layer[1]!r})" if isinstance(layer, tuple) else repr(layer)
            lines.append(f"    {text},")
        return "LSTMModel([\n" + "\n".join(lines) + "\n])"
