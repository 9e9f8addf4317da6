"""A small model type: an optional Embedding, a stack of recurrent layers (each a cell, a backward-only
cell or a bidirectional pair), then any Dense layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _layers
from . import _validation as check
from ._layers import Direction
from .cell import MultiRNNCell, RNNCell, SeedLike
from .layers import Dense, Embedding

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


def _final_output(cell: RNNCell, state: Any) -> np.ndarray:
    """The output of ``cell``'s last step in ``state`` (TF's ``state.h``; a stack's top cell's)."""
    while isinstance(cell, MultiRNNCell):
        cell, state = cell.cells[-1], state[-1]
    return state.h if cell.state_is_tuple else state[:, cell.state_size - cell.output_size :]


def _unmasked_outputs(
    compact: np.ndarray, valid: np.ndarray, carry: bool, h0: np.ndarray | None
) -> np.ndarray:
    """Outputs at the input's steps from ``compact`` (each row's unmasked steps first, zero past them).

    At an unmasked step, its own output; at a masked step, with ``carry`` the
    output of the row's last unmasked step before it (``h0`` before the first),
    as Keras' LSTM gives; without, zeros, as Keras' Bidirectional gives.
    """
    batch, max_time, depth = compact.shape
    count = np.cumsum(valid, axis=1)  # unmasked steps up to and including each step
    source = np.arange(batch)[:, None] * max_time + np.maximum(count - 1, 0)
    full = compact.reshape(batch * max_time, depth)[source]
    if carry:
        before = count == 0
        full[before] = np.broadcast_to(h0[:, None, :], full.shape)[before]
    else:
        full[~valid] = 0
    return full


class LSTMModel:
    """An optional :class:`Embedding`, recurrent layers, then optional :class:`Dense` layers, run in order.

    A recurrent layer is a cell, a :class:`Backward` cell or a ``(cell_fw, cell_bw)``
    pair. A cell layer is run as :func:`fastlstm.dynamic_rnn` runs it. A pair is a
    bidirectional layer, run as :func:`fastlstm.bidirectional_dynamic_rnn`;
    its output is ``concatenate([output_fw, output_bw], axis=-1)``, as the
    bidirectional layers of PyTorch and Keras give it. ``Backward(cell)``
    runs ``cell`` backwards only, as the backward half of a pair. Layer
    ``k + 1`` takes the outputs of layer ``k`` as its inputs.

    With an :class:`Embedding` first the model takes integer token ids
    ``[batch, max_time]`` instead of vectors. With ``return_sequences=False``
    (Keras' default for its last LSTM) the top recurrent layer gives only its
    final output, ``[batch, depth]``: the output of each row's last step
    (TF's ``state.h``; for a pair, both directions' final outputs concatenated,
    the backward one after reaching step 0), and the Dense layers run on that.

    Masking (an ``Embedding(..., mask_zero=True)``) follows Keras exactly: every
    recurrent layer skips the masked steps, carrying its state through them
    (the final states are those after each row's last unmasked step), and the
    top recurrent layer's outputs at a masked step are, as Keras' gives them:
    for a cell layer (Keras' ``LSTM``) the output of the last unmasked step
    before it (the initial state's ``h``, zeros by default, before the first);
    for a pair (Keras' ``Bidirectional``) and a :class:`Backward` layer, zeros.
    Dense layers run on every step, masked or not (as Keras' ``Dense``).
    Without masking, outputs past each length are zero (TF's ``dynamic_rnn``)
    and Dense layers run on them too (as ``tf.layers.dense`` after ``dynamic_rnn``).

    Parameters
    ----------
    layers : list
        Bottom to top: optionally an :class:`Embedding`; then at least one
        recurrent layer, each a :class:`BasicLSTMCell`, :class:`LSTMCell`,
        :class:`MultiRNNCell`, a :class:`Backward` layer of one of them, or
        a ``(cell_fw, cell_bw)`` pair of them; then any :class:`Dense` layers.
        Every cell object appears once and all layers share one dtype.
        Unbuilt cells are built on first use for the depth they receive;
        built ones must fit: a layer's input size equals the previous layer's
        output size (the sum of both directions' for a pair).
    return_sequences : bool, default True
        Whether the top recurrent layer gives its outputs at every step
        (``[batch, max_time, depth]``) or only its final output (``[batch, depth]``).

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

    A Keras text classifier, ``Embedding(mask_zero=True) -> LSTM -> Dense(1, "sigmoid")``:

    >>> rng = np.random.default_rng(0)
    >>> classifier = fastlstm.LSTMModel([
    ...     fastlstm.Embedding(rng.normal(size=(100, 8)).astype(np.float32), mask_zero=True),
    ...     fastlstm.BasicLSTMCell(16),
    ...     fastlstm.Dense(rng.normal(size=(16, 1)).astype(np.float32), [0.0], "sigmoid"),
    ... ], return_sequences=False)
    >>> probabilities, _ = classifier(np.array([[0, 0, 5, 7, 9], [5, 7, 9, 0, 0]]))
    >>> probabilities.shape, bool(probabilities[0, 0] == probabilities[1, 0])
    ((2, 1), True)
    """

    def __init__(self, layers: Sequence[Any], return_sequences: bool = True) -> None:
        check.layer_list(layers, RNNCell)
        roles = [
            "embedding"
            if isinstance(layer, Embedding)
            else "dense"
            if isinstance(layer, Dense)
            else "recurrent"
            for layer in layers
        ]
        check.layer_roles(roles)
        self.layers: list[Any] = [
            check.layer(layer, k, RNNCell, Backward) if role == "recurrent" else layer
            for k, (layer, role) in enumerate(zip(layers, roles))
        ]
        self._return_sequences = check.flag(return_sequences, "return_sequences")
        self._embedding: Embedding | None = self.layers[0] if roles[0] == "embedding" else None
        self._recurrent: list[Layer] = [
            layer for layer, role in zip(self.layers, roles) if role == "recurrent"
        ]
        self._dense: list[Dense] = [layer for layer, role in zip(self.layers, roles) if role == "dense"]
        first = 1 if self._embedding is not None else 0
        recurrent_labels = [f"layers[{first + k}]" for k in range(len(self._recurrent))]
        cells = [cell for layer in self._recurrent for cell in _layer_cells(layer)]
        check.distinct_cells([leaf for cell in cells for leaf in cell._leaf_cells()])
        labels = [
            f"{base}{label}"
            for base, layer in zip(recurrent_labels, self._recurrent)
            for _, _, label in _directions(layer)
        ]
        others = [
            (f"layers[{k}]", layer)
            for k, (layer, role) in enumerate(zip(self.layers, roles))
            if role != "recurrent"
        ]
        self._dtype = check.same_dtype(
            [*cells, *(layer for _, layer in others)], [*labels, *(label for label, _ in others)]
        )
        chain: list[tuple[str, int | None, int]] = []
        if self._embedding is not None:
            chain.append(("layers[0] (Embedding)", None, self._embedding.output_dim))
        chain += [
            (base, _input_size(layer), _output_size(layer))
            for base, layer in zip(recurrent_labels, self._recurrent)
        ]
        first_dense = first + len(self._recurrent)
        if not self._return_sequences and self._dense:
            chain[-1] = (chain[-1][0] + " (final output)", chain[-1][1], chain[-1][2])
        chain += [
            (f"layers[{first_dense + k}] (Dense)", layer.input_size, layer.units)
            for k, layer in enumerate(self._dense)
        ]
        check.layer_chain(chain)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of every layer, in which the model computes."""
        return self._dtype

    @property
    def embedding(self) -> Embedding | None:
        """The :class:`Embedding` in front (the model then takes token ids), or None."""
        return self._embedding

    @property
    def recurrent_layers(self) -> list[Layer]:
        """The recurrent layers, bottom to top: one final state each in a call's ``states``."""
        return list(self._recurrent)

    @property
    def dense_layers(self) -> list[Dense]:
        """The :class:`Dense` layers after the recurrent ones, in order."""
        return list(self._dense)

    @property
    def return_sequences(self) -> bool:
        """Whether the top recurrent layer gives every step's output (else only the final one)."""
        return self._return_sequences

    @property
    def input_size(self) -> int | None:
        """Depth of the input vectors (an Embedding's ``output_dim`` when it makes them from ids;
        None while the first recurrent layer is not built and there is no Embedding)."""
        if self._embedding is not None:
            return self._embedding.output_dim
        return _input_size(self._recurrent[0])

    @property
    def output_size(self) -> int:
        """Depth of the outputs: the last Dense layer's units, else the top recurrent layer's
        (both directions' for a bidirectional top layer)."""
        if self._dense:
            return self._dense[-1].units
        return _output_size(self._recurrent[-1])

    @property
    def built(self) -> bool:
        """Whether every cell has its weights."""
        return all(cell.built for layer in self._recurrent for cell in _layer_cells(layer))

    def build(self, input_size: int | None = None, seed: SeedLike = None) -> None:
        """Build every cell, bottom to top (forward before backward), for inputs of depth ``input_size``.

        Parameters
        ----------
        input_size : int, optional
            Depth of the input vectors; with an :class:`Embedding` it may be left
            out (it is the Embedding's ``output_dim``).
        seed : int or numpy.random.Generator, optional
            Seed (or generator) of the random initialisation, shared by the cells in order.
        """
        embedding_dim = None if self._embedding is None else self._embedding.output_dim
        depth = check.model_input_size(input_size, embedding_dim)
        rng = np.random.default_rng(seed)
        for layer in self._recurrent:
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
        inputs : array_like
            Vectors ``[batch, max_time, input_size]``, or with an
            :class:`Embedding` integer token ids ``[batch, max_time]``
            (``[max_time, batch, ...]`` when ``time_major``). Never modified.
        sequence_length : array_like of int, shape ``[batch]``, optional
            Valid steps per row, each in ``[0, max_time]``; all steps when None
            (with ``mask_zero``: the unmasked steps).
        initial_state : sequence, optional
            One entry per recurrent layer: None (zeros), the cell's state (also for a
            :class:`Backward` layer), or for a bidirectional layer a pair
            ``(state_fw, state_bw)`` (either may be None). States are cast to
            :attr:`dtype`.
        time_major : bool, default False
            Layout of ``inputs`` and of per-step ``outputs``.
        precision : {"float32", "bfloat16"}, default "float32"
            Precision of every recurrent layer's matrix products, as in
            :func:`fastlstm.dynamic_rnn`; ``"bfloat16"`` needs a float32 model
            (Dense layers compute in float32).

        Returns
        -------
        outputs : ndarray
            The last layer's outputs: ``[batch, max_time, output_size]``
            (time-major if ``time_major``), or ``[batch, output_size]`` with
            ``return_sequences=False``. Without a mask and Dense layers, zero past
            each length; with a mask, as described in the class docstring.
        states : tuple
            Each recurrent layer's final state; a ``(state_fw, state_bw)`` pair for a
            bidirectional layer.

        Raises
        ------
        ValueError
            Bad shapes or lengths, token ids outside the vocabulary, inputs or
            states that do not fit the layers.
        TypeError
            Non-numeric inputs (non-integer ids for an Embedding), lengths or states.
        """
        dtype = self._dtype
        precision = check.precision(precision, dtype, "the model is float64: build it in float32")
        recurrent = self._recurrent
        embedding = self._embedding
        valid = None
        top_depth = _output_size(recurrent[-1])
        if embedding is None:
            x, lengths = check.run_inputs(inputs, sequence_length, time_major, dtype, top_depth)
            run_time_major = time_major
        else:
            ids = check.token_ids(inputs, time_major, embedding.input_dim)
            batch, max_time = ids.shape
            check.check_size((batch, max_time, embedding.output_dim), "embedded inputs", dtype.itemsize)
            check.check_size((batch, max_time, top_depth), "outputs", dtype.itemsize)
            lengths = check.sequence_lengths(sequence_length, batch, max_time)
            if embedding.mask_zero:
                valid = ids != 0
                if sequence_length is not None:
                    valid &= np.arange(max_time) < lengths[:, None]
                lengths = valid.sum(axis=1, dtype=np.int64)
                if (valid == (np.arange(max_time) < lengths[:, None])).all():
                    if (lengths == max_time).all():
                        valid = None  # nothing masked
                else:  # each row's unmasked steps first, in order: the layers skip the others
                    ids = np.take_along_axis(ids, np.argsort(~valid, axis=1, kind="stable"), axis=1)
            x = (
                embedding._table
            )  # its rows are gathered by the bottom layer's kernel: no [batch, time, depth] copy
            run_time_major = False
        batch, depth = lengths.shape[0], x.shape[-1]
        tokens = None if embedding is None else ids
        prepared = []
        for k, (layer, state) in enumerate(zip(recurrent, check.model_states(initial_state, len(recurrent)))):
            directions = _directions(layer)
            states = check.pair_state(state, k) if isinstance(layer, tuple) else (state,)
            base = f"layers[{k + (embedding is not None)}]"
            prepared.append(
                [
                    _layers.prepare(cell, direction, depth, batch, s, dtype, f"{base}{label}: ")
                    for (cell, direction, label), s in zip(directions, states)
                ]
            )
            depth = _output_size(layer)
        final_states = []
        for layer in prepared:
            results = _layers.run(layer, (x,) * len(layer), lengths, run_time_major, precision, tokens)
            tokens = None
            if len(results) == 1:
                ((x, state),) = results
                final_states.append(state)
            else:
                (output_fw, state_fw), (output_bw, state_bw) = results
                x = np.concatenate([output_fw, output_bw], axis=-1)
                final_states.append((state_fw, state_bw))
        top = prepared[-1]
        if not self._return_sequences:
            finals = final_states[-1] if len(top) == 2 else (final_states[-1],)
            parts = [_final_output(direction.cell, state) for direction, state in zip(top, finals)]
            x = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        elif valid is not None:
            carry = len(top) == 1 and top[0].direction is Direction.FORWARD
            x = _unmasked_outputs(x, valid, carry, top[0].leaves[-1].h0 if carry else None)
        for dense in self._dense:
            x = dense._apply(x)
        if embedding is not None and time_major and self._return_sequences:
            x = np.ascontiguousarray(x.swapaxes(0, 1))
        return x, tuple(final_states)

    def __repr__(self) -> str:
        lines = []
        for layer in self.layers:
            text = f"({layer[0]!r}, {layer[1]!r})" if isinstance(layer, tuple) else repr(layer)
            lines.append(f"    {text},")
        tail = "" if self._return_sequences else ", return_sequences=False"
        return "LSTMModel([\n" + "\n".join(lines) + f"\n]{tail})"
