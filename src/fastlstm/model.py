"""A small model type: a stack of layers, each a cell or a bidirectional pair of cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _validation as check
from .cell import RNNCell, SeedLike
from .rnn import prepare_inputs

__all__ = ["LSTMModel"]

Layer = RNNCell | tuple[RNNCell, RNNCell]


def _layer_cells(layer: Layer) -> tuple[RNNCell, ...]:
    return layer if isinstance(layer, tuple) else (layer,)


def _output_size(layer: Layer) -> int:
    return sum(cell.output_size for cell in _layer_cells(layer))


def _input_size(layer: Layer) -> int | None:
    sizes = [cell.input_size for cell in _layer_cells(layer) if cell.input_size is not None]
    return sizes[0] if sizes else None


class LSTMModel:
    """Layers run one after the other; a layer is a cell or a ``(cell_fw, cell_bw)`` pair.

    A cell layer is run as :func:`fastlstm.dynamic_rnn` runs it. A pair is a
    bidirectional layer, run as :func:`fastlstm.bidirectional_dynamic_rnn`;
    its output is ``concatenate([output_fw, output_bw], axis=-1)``, as the
    bidirectional layers of PyTorch and Keras give it. Layer ``k + 1`` takes
    the outputs of layer ``k`` as its inputs.

    Parameters
    ----------
    layers : list
        Bottom to top; each a :class:`BasicLSTMCell`, :class:`LSTMCell`,
        :class:`MultiRNNCell` or a ``(cell_fw, cell_bw)`` pair of them. Every
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
        if isinstance(layers, RNNCell) or not isinstance(layers, (list, tuple)):
            raise TypeError(
                f"layers must be a list of cells or (cell_fw, cell_bw) pairs, got {type(layers).__name__}"
            )
        if not layers:
            raise ValueError("LSTMModel needs at least one layer, got an empty list")
        normalised: list[Layer] = []
        for k, layer in enumerate(layers):
            if isinstance(layer, RNNCell):
                normalised.append(layer)
                continue
            if not isinstance(layer, (list, tuple)):
                raise TypeError(
                    f"layers[{k}] must be a fastlstm cell or a (cell_fw, cell_bw) pair, "
                    f"got {type(layer).__name__}"
                )
            if len(layer) != 2:
                raise ValueError(f"layers[{k}] must be a (cell_fw, cell_bw) pair, got {len(layer)} items")
            for direction, cell in zip(("cell_fw", "cell_bw"), layer):
                if not isinstance(cell, RNNCell):
                    raise TypeError(
                        f"layers[{k}] {direction} must be a fastlstm cell (BasicLSTMCell, LSTMCell or "
                        f"MultiRNNCell), got {type(cell).__name__}"
                    )
            fw, bw = layer
            if fw.input_size is not None and bw.input_size is not None and fw.input_size != bw.input_size:
                raise ValueError(
                    f"layers[{k}]: cell_fw was built for inputs of depth {fw.input_size} "
                    f"but cell_bw for depth {bw.input_size}"
                )
            normalised.append((fw, bw))
        self.layers: list[Layer] = normalised
        cells = [cell for layer in self.layers for cell in _layer_cells(layer)]
        check.distinct_cells([leaf for cell in cells for leaf in cell._leaf_cells()])
        labels = [
            f"layers[{k}]" + (f" {d}" if isinstance(layer, tuple) else "")
            for k, layer in enumerate(self.layers)
            for d in (("cell_fw", "cell_bw") if isinstance(layer, tuple) else ("",))
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
    ) -> tuple[np.ndarray, tuple]:
        """Run the model over a batch of sequences.

        Parameters
        ----------
        inputs : array_like, shape ``[batch, max_time, input_size]``
            ``[max_time, batch, input_size]`` when ``time_major``. Never modified.
        sequence_length : array_like of int, shape ``[batch]``, optional
            Valid steps per row, each in ``[0, max_time]``; all steps when None.
        initial_state : sequence, optional
            One entry per layer: None (zeros), the cell's state, or for a
            bidirectional layer a pair ``(state_fw, state_bw)`` (either may be
            None). States are cast to :attr:`dtype`.
        time_major : bool, default False
            Layout of ``inputs`` and ``outputs``.

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
        x, lengths = prepare_inputs(inputs, sequence_length, time_major, dtype, self.output_size)
        batch, depth = lengths.shape[0], x.shape[2]
        prepared = []
        for k, (layer, state) in enumerate(zip(self.layers, self._layer_states(initial_state))):
            if isinstance(layer, tuple):
                states = self._pair_state(state, k)
                prepared.append(
                    tuple(
                        cell._prepare(depth, batch, s, dtype, f"layers[{k}] {d}: ")
                        for cell, s, d in zip(layer, states, ("cell_fw", "cell_bw"))
                    )
                )
            else:
                prepared.append(layer._prepare(depth, batch, state, dtype, f"layers[{k}]: "))
            depth = _output_size(layer)
        final_states = []
        for layer, ready in zip(self.layers, prepared):
            if isinstance(layer, tuple):
                output_fw, state_fw = layer[0]._execute(ready[0], x, lengths, time_major, False)
                output_bw, state_bw = layer[1]._execute(ready[1], x, lengths, time_major, True)
                x = np.concatenate([output_fw, output_bw], axis=-1)
                final_states.append((state_fw, state_bw))
            else:
                x, state = layer._execute(ready, x, lengths, time_major, False)
                final_states.append(state)
        return x, tuple(final_states)

    def _layer_states(self, initial_state: Any) -> tuple:
        n = len(self.layers)
        if initial_state is None:
            return (None,) * n
        if isinstance(initial_state, np.ndarray) or not isinstance(initial_state, (list, tuple)):
            raise ValueError(
                f"initial_state must be a list with one state per layer ({n}), "
                f"got {type(initial_state).__name__}"
            )
        if len(initial_state) != n:
            raise ValueError(f"initial_state must have one entry per layer ({n}), got {len(initial_state)}")
        return tuple(initial_state)

    @staticmethod
    def _pair_state(state: Any, k: int) -> tuple:
        if state is None:
            return (None, None)
        if isinstance(state, np.ndarray) or not isinstance(state, (list, tuple)) or len(state) != 2:
            raise ValueError(
                f"initial_state[{k}] of a bidirectional layer must be a pair (state_fw, state_bw), "
                f"got {type(state).__name__}"
            )
        return tuple(state)

    def __repr__(self) -> str:
        lines = []
        for layer in self.layers:
            text = f"({layer[0]!r}, {layer[1]!r})" if isinstance(layer, tuple) else repr(layer)
            lines.append(f"    {text},")
        return "LSTMModel([\n" + "\n".join(lines) + "\n])"
