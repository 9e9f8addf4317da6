"""Build an :class:`~fastlstm.LSTMModel` from a PyTorch ``nn.LSTM`` or ``nn.LSTMCell``, or a state dict.

PyTorch computes ``z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh`` with gate blocks
(i, f, g, o), no forget bias, and with ``proj_size`` ``h = (o * tanh(c)) @ W_hr.T``.
That is TF's cell with ``kernel = concat([W_ih.T, W_hh.T])`` and ``bias = b_ih + b_hh``
reordered to (i, j=g, f, o), ``forget_bias=0.0`` and ``projection_kernel = W_hr.T``.
``nn.LSTMCell`` is one step of the same cell (keys without the ``_l0`` suffix).

torch is never imported here: a module or tensor given to :func:`from_torch`
means torch is already loaded, and it is looked up in ``sys.modules``. A state
dict of numpy arrays, or a ``.safetensors`` file, converts without torch installed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cell import BasicLSTMCell, LSTMCell
from ..io.state_dict import StateDictFileError, read_state_dict
from ..layers import Dense, Embedding
from ..model import LSTMModel
from ._common import default_dtype, float_array, to_tf_gate_order

__all__ = ["from_torch"]

_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?")
_CELL_KEY = re.compile(r"weight_ih|weight_hh|bias_ih|bias_hh")
# The first weight of an nn.LSTM (weight_ih_l0) or nn.LSTMCell (weight_ih) marks where one starts.
_ANCHOR = re.compile(r"(?P<prefix>.*)weight_ih(?:_l0)?")
_DIRECTIONS = ("", "_reverse")
_CELL_SUFFIX = ""


@dataclass(frozen=True)
class _Layout:
    """What the keys of a state dict say about the LSTM it came from."""

    num_layers: int
    bidirectional: bool
    bias: bool
    projection: bool

    @property
    def suffixes(self) -> tuple[str, ...]:
        return _DIRECTIONS if self.bidirectional else _DIRECTIONS[:1]


def from_torch(
    source: Any,
    dtype: Any = None,
    *,
    prefix: str | None = None,
    embedding: str | None = None,
    head: Sequence[str] = (),
    head_activations: Sequence[str | None] | None = None,
    return_sequences: bool = True,
) -> LSTMModel:
    """Build a model from a PyTorch ``nn.LSTM`` or ``nn.LSTMCell``, its state dict, or a weights file.

    Parameters
    ----------
    source : torch.nn.LSTM, torch.nn.LSTMCell, mapping, str or path-like
        The module; or a state dict whose values are tensors or numpy arrays;
        or the path of a ``.safetensors`` file (read without torch) or of a
        ``.pt`` / ``.pth`` file holding a state dict (read with
        ``torch.load(weights_only=True)``; needs torch). ``nn.LSTM`` keys are
        ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``
        (if ``bias``), ``weight_hr_l{k}`` (if ``proj_size``), and the same with
        ``_reverse`` when bidirectional; ``nn.LSTMCell`` keys are ``weight_ih``,
        ``weight_hh``, ``bias_ih``, ``bias_hh``. The number of layers,
        directions, projection and bias are read from the keys and shapes.
    dtype : float32 or float64, optional
        Dtype of the model; float64 if the weights are float64, else float32.
    prefix : str, optional
        Take one LSTM's or LSTMCell's entries out of a whole model's state dict:
        the keys starting with ``prefix`` (e.g. ``"lstm_cell."`` for
        ``lstm_cell.weight_ih``, ...), with the prefix removed; the trailing dot
        may be left out. Without it every key must belong to the LSTM (or to
        ``embedding`` and ``head``).
    embedding : str, optional
        The prefix of an ``nn.Embedding`` in front of the LSTM (its key
        ``{embedding}weight``, ``[num_embeddings, embedding_dim]``): the model
        starts with an :class:`~fastlstm.Embedding` and takes token ids.
        PyTorch does not mask (``padding_idx`` only fixes a row): pad with
        ``sequence_length``, as ``pack_padded_sequence`` does.
    head : list of str, optional
        The prefixes of ``nn.Linear`` layers after the LSTM, in order (keys
        ``{p}weight`` ``[out, in]`` and, unless ``bias=False``, ``{p}bias``):
        :class:`~fastlstm.Dense` layers with kernel ``weight.T``.
    head_activations : list of str or None, optional
        One activation per ``head`` entry (the functions a ``forward`` applies,
        e.g. ``[None, "sigmoid"]``; see :class:`~fastlstm.Dense`); default linear.
    return_sequences : bool, default True
        False when the head runs on the last step's output, ``h_n[-1]`` (for a
        bidirectional LSTM ``cat([h_n[-2], h_n[-1]])``), as classifiers do.

    Returns
    -------
    LSTMModel
        One layer per LSTM layer: a :class:`~fastlstm.BasicLSTMCell` (or an
        :class:`~fastlstm.LSTMCell` with ``num_proj=proj_size``) with
        ``forget_bias=0.0``, or a ``(cell_fw, cell_bw)`` pair when bidirectional.
        Its outputs are PyTorch's; ``states[k]`` is layer ``k``'s ``(c, h)``,
        i.e. ``(c_n[k], h_n[k])``, or ``(c_n[2k], h_n[2k])`` forward and
        ``(c_n[2k+1], h_n[2k+1])`` backward when bidirectional. An
        ``nn.LSTMCell`` gives a one-layer model whose run over a sequence is the
        cell called step by step: ``outputs[:, t]`` is the ``h`` of step ``t``
        and the final state is the last step's ``(c, h)``.

    Raises
    ------
    ValueError
        A GRU or plain RNN (module or state dict), unknown or missing keys, a
        prefix that names no LSTM (the message lists the candidates), shapes
        that do not fit together, or a module whose attributes disagree with
        its weights. A damaged file raises
        :class:`~fastlstm.io.StateDictFileError`, a ``ValueError``.
    TypeError
        If ``source`` is none of the above.
    FileNotFoundError
        If the path does not exist.

    Notes
    -----
    ``batch_first`` does not change the weights and the model does not record
    it: the model takes batch-major inputs ``[batch, time, depth]`` by default,
    so pass ``time_major=True`` for PyTorch's default sequence-first layout.
    ``dropout`` between layers only acts in training and is not applied. Padded
    batches need no ``pack_padded_sequence``: pass ``sequence_length``, and the
    outputs past each length are zero, as ``pad_packed_sequence`` gives them.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> rng = np.random.default_rng(0)
    >>> state_dict = {                      # nn.LSTM(3, 4).state_dict(), as numpy arrays
    ...     "weight_ih_l0": rng.uniform(-0.5, 0.5, (16, 3)).astype(np.float32),
    ...     "weight_hh_l0": rng.uniform(-0.5, 0.5, (16, 4)).astype(np.float32),
    ...     "bias_ih_l0": rng.uniform(-0.5, 0.5, 16).astype(np.float32),
    ...     "bias_hh_l0": rng.uniform(-0.5, 0.5, 16).astype(np.float32),
    ... }
    >>> model = fastlstm.from_torch(state_dict)
    >>> outputs, ((c, h),) = model(np.ones((5, 2, 3), np.float32), time_major=True)
    >>> outputs.shape, h.shape, model.layers[0].forget_bias
    ((5, 2, 4), (2, 4), 0.0)

    An ``nn.LSTMCell`` among other modules (keys ``lstm_cell.weight_ih``, ...):

    >>> whole = {"conv.weight": np.zeros((2, 3, 1), np.float32)}
    >>> whole.update({f"lstm_cell.{key[:-3]}": value for key, value in state_dict.items()})
    >>> cell_model = fastlstm.from_torch(whole, prefix="lstm_cell.")
    >>> np.array_equal(cell_model(np.ones((2, 5, 3), np.float32))[0], model(np.ones((2, 5, 3), np.float32))[0])
    True
    """
    torch = sys.modules.get("torch")
    module = None
    path = None
    layers = _Around.of(embedding, head, head_activations)
    if isinstance(source, Mapping):
        layers = layers.resolved([str(key) for key in source])
        selection = _select(layers.others([str(key) for key in source]), prefix, "the state dict")
        by_name = {str(key): value for key, value in source.items()}
        values = {key: _to_numpy(by_name[key], key) for key in selection.keys + layers.keys}
    elif isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(source))
        selections: list[_Selection] = []
        found: list[_Around] = []

        def select(keys: list[str]) -> list[str]:
            found.append(layers.resolved(keys))
            selections.append(_select(found[0].others(keys), prefix, path))
            return selections[0].keys + found[0].keys

        arrays = read_state_dict(path, select)
        selection, layers = selections[0], found[0]
        values = {key: arrays[key] for key in selection.keys + layers.keys}
    elif torch is not None and isinstance(source, torch.nn.Module):
        if layers.keys or embedding is not None or head:
            raise ValueError(
                "embedding= and head= name entries of a whole model's state dict; a module here is one "
                "nn.LSTM or nn.LSTMCell: pass model.state_dict() with prefix=, embedding= and head="
            )
        module = source
        kind = type(module).__name__
        if isinstance(module, (torch.nn.GRU, torch.nn.GRUCell)):
            raise ValueError(f"{kind}: GRU is not supported; fastlstm converts nn.LSTM")  # noqa: TRY004
        if not isinstance(module, (torch.nn.LSTM, torch.nn.LSTMCell)):
            raise ValueError(  # noqa: TRY004 - an unsupported network is a ValueError in every converter
                f"{kind} is not supported; fastlstm converts nn.LSTM modules, nn.LSTMCell modules "
                "and their state dicts"
            )
        selection = _Selection("", list(module.state_dict()))
        values = {key: _to_numpy(value, key) for key, value in module.state_dict().items()}
    else:
        raise TypeError(
            f"from_torch takes an nn.LSTM or its state_dict(), got {type(source).__name__} (also accepted: "
            "an nn.LSTMCell, or the path of a .safetensors, .pt or .pth file)"
        )
    try:
        state = {
            key[len(selection.prefix) :]: float_array(value, key)
            for key, value in values.items()
            if key in selection.keys
        }
        model = _model(state, dtype)
        if layers.keys or not return_sequences:
            model = layers.around(
                model, {key: float_array(values[key], key) for key in layers.keys}, return_sequences
            )
    except ValueError as error:
        if path is None:
            raise
        raise StateDictFileError(f"{path}: {error}") from error  # weights that do not fit: name the file
    if module is not None:
        _check_module(module, model)
    return model


def _model(state: dict[str, np.ndarray], dtype: Any) -> LSTMModel:
    """The model of an nn.LSTM's or nn.LSTMCell's entries (prefix removed)."""
    if _is_cell(state):
        return LSTMModel([_cell_of_lstm_cell(state, dtype)])
    layout = _layout(state)
    dtype = default_dtype(dtype, list(state.values()))
    layers: list[Any] = []
    for k in range(layout.num_layers):
        cells = [_cell(state, f"_l{k}{suffix}", layout.bias, dtype) for suffix in layout.suffixes]
        layers.append(tuple(cells) if layout.bidirectional else cells[0])
    return LSTMModel(layers)


@dataclass(frozen=True)
class _Around:
    """The nn.Embedding and nn.Linear entries named next to the LSTM's (prefixes resolved by :meth:`resolved`)."""

    embedding: str | None
    head: tuple[str, ...]
    activations: tuple[str | None, ...]
    keys: list[str]

    @classmethod
    def of(cls, embedding: Any, head: Any, activations: Any) -> _Around:
        if embedding is not None and not isinstance(embedding, str):
            raise TypeError(
                f"embedding must be a str prefix such as 'embed.', got {type(embedding).__name__}"
            )
        if isinstance(head, str) or not isinstance(head, (list, tuple)):
            raise TypeError(f"head must be a list of str prefixes such as ['fc.'], got {type(head).__name__}")
        for entry in head:
            if not isinstance(entry, str):
                raise TypeError(
                    f"head entries must be str prefixes such as 'fc.', got {type(entry).__name__}"
                )
        if activations is None:
            activations = [None] * len(head)
        if isinstance(activations, str) or not isinstance(activations, (list, tuple)):
            raise TypeError(
                f"head_activations must be a list with one entry per head layer, got {type(activations).__name__}"
            )
        if len(activations) != len(head):
            raise ValueError(
                f"head_activations has {len(activations)} entries but head names {len(head)} layers"
            )
        return cls(embedding, tuple(head), tuple(activations), [])

    def resolved(self, keys: list[str]) -> _Around:
        """The prefixes completed with their dot if left out, and the keys they take; missing ones refused."""
        names = set(keys)

        def complete(prefix: str, what: str) -> str:
            for candidate in (prefix, prefix + "."):
                if candidate + "weight" in names:
                    return candidate
            raise ValueError(
                f"the state dict has no {prefix}weight (the weight of the {what} named {prefix!r})"
            )

        embedding = None if self.embedding is None else complete(self.embedding, "nn.Embedding")
        head = tuple(complete(p, "nn.Linear") for p in self.head)
        taken = [] if embedding is None else [embedding + "weight"]
        for p in head:
            taken += [p + "weight"] + ([p + "bias"] if p + "bias" in names else [])
        return _Around(embedding, head, self.activations, taken)

    def others(self, keys: list[str]) -> list[str]:
        taken = set(self.keys)
        return [key for key in keys if key not in taken]

    def around(self, model: LSTMModel, arrays: dict[str, np.ndarray], return_sequences: bool) -> LSTMModel:
        """``model``'s layers between the Embedding and the Dense layers, in the model's dtype."""
        layers: list[Any] = []
        if self.embedding is not None:
            weight = arrays[self.embedding + "weight"]
            if weight.ndim != 2:
                raise ValueError(
                    f"{self.embedding}weight has shape {weight.shape}; an nn.Embedding's is "
                    "[num_embeddings, embedding_dim]"
                )
            layers.append(Embedding(weight, dtype=model.dtype))
        layers += model.layers
        for p, activation in zip(self.head, self.activations):
            weight = arrays[p + "weight"]
            if weight.ndim != 2:
                raise ValueError(
                    f"{p}weight has shape {weight.shape}; an nn.Linear's is [out_features, in_features]"
                )
            layers.append(Dense(weight.T, arrays.get(p + "bias"), activation, dtype=model.dtype))
        return LSTMModel(layers, return_sequences=return_sequences)


@dataclass(frozen=True)
class _Selection:
    """The keys of one LSTM or LSTMCell in a state dict, and the prefix to strip from them."""

    prefix: str
    keys: list[str]


def _is_lstm_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None or _CELL_KEY.fullmatch(key) is not None


def _select(keys: list[str], prefix: str | None, where: str) -> _Selection:
    """The keys of the LSTM under ``prefix`` (all keys when None), with clear errors."""
    candidates = sorted({m["prefix"] for key in keys if (m := _ANCHOR.fullmatch(key)) is not None})
    listed = ", ".join(repr(c) for c in candidates) if candidates else "none"
    if prefix is None:
        for key in keys:
            if not _is_lstm_key(key):
                raise ValueError(
                    f"state dict key {key!r} is not an nn.LSTM weight (weight_ih_l0, weight_hh_l0, "
                    "bias_ih_l0, bias_hh_l0, weight_hr_l0, ..._reverse) or nn.LSTMCell weight (weight_ih, "
                    "weight_hh, bias_ih, bias_hh); pass only the LSTM's entries, without a prefix, or name "
                    f"one LSTM or LSTMCell of {where} with prefix= (candidates: {listed})"
                )
        return _Selection("", list(keys))
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str such as 'lstm_cell.', got {type(prefix).__name__}")
    if prefix not in candidates and prefix + "." in candidates:
        prefix += "."
    if prefix not in candidates:
        raise ValueError(
            f"{where} has no nn.LSTM or nn.LSTMCell under prefix {prefix!r} (no key {prefix}weight_ih_l0 "
            f"or {prefix}weight_ih); candidates: {listed}"
        )
    chosen = [key for key in keys if key.startswith(prefix)]
    for key in chosen:
        if not _is_lstm_key(key[len(prefix) :]):
            nested = [c for c in candidates if c != prefix and c.startswith(prefix)]
            if nested:
                raise ValueError(
                    f"prefix {prefix!r} is ambiguous: {where} holds several LSTMs under it "
                    f"(candidates: {listed}); pass the prefix of one of them"
                )
            raise ValueError(
                f"{where}: key {key!r} under prefix {prefix!r} is not an nn.LSTM or nn.LSTMCell weight "
                f"(candidates: {listed})"
            )
    return _Selection(prefix, chosen)


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """A tensor (any device; half precision widened) or array-like as a float numpy array."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
        value = value.numpy()
    return float_array(value, key)


def _is_cell(state: dict[str, np.ndarray]) -> bool:
    """Whether the keys are an nn.LSTMCell's (no ``_l{k}``); keys of both kinds are refused."""
    cell_keys = sorted(key for key in state if _CELL_KEY.fullmatch(key))
    if cell_keys and len(cell_keys) != len(state):
        other = next(key for key in state if key not in cell_keys)
        raise ValueError(
            f"state dict mixes nn.LSTMCell keys ({cell_keys[0]}) and nn.LSTM keys ({other}); pass one "
            "module's entries (prefix= picks one out of a whole model's state dict)"
        )
    return bool(cell_keys)


def _cell_of_lstm_cell(state: dict[str, np.ndarray], dtype: Any) -> BasicLSTMCell:
    """The cell of an nn.LSTMCell's state dict (``weight_ih``, ``weight_hh``, optional biases)."""
    names = set(state)
    bias = bool(names & {"bias_ih", "bias_hh"})
    expected = {"weight_ih", "weight_hh"} | ({"bias_ih", "bias_hh"} if bias else set())
    if names != expected:
        raise ValueError(
            f"state dict: {min(expected - names)} is missing (an nn.LSTMCell has {sorted(expected)})"
        )
    _refuse_gru_or_rnn(state["weight_hh"], None, "weight_hh", "LSTMCell")
    dtype = default_dtype(dtype, list(state.values()))
    cell = _cell(state, _CELL_SUFFIX, bias, dtype, name="lstm_cell")
    assert isinstance(cell, BasicLSTMCell)
    return cell


def _layout(state: dict[str, np.ndarray]) -> _Layout:
    """Layers, directions, bias and projection from the keys of a state dict (GRUs refused)."""
    found: dict[tuple[int, str], set[str]] = {}
    for key in state:
        match = _KEY.fullmatch(key)
        if match is None:
            raise ValueError(
                f"state dict key {key!r} is not an nn.LSTM weight (weight_ih_l0, weight_hh_l0, bias_ih_l0, "
                "bias_hh_l0, weight_hr_l0, ..._reverse); pass only the LSTM's entries, without a prefix"
            )
        found.setdefault((int(match[2]), match[3] or ""), set()).add(match[1])
    if not found:
        raise ValueError(
            "the state dict is empty; expected the keys of an nn.LSTM (weight_ih_l0, ...) "
            "or nn.LSTMCell (weight_ih, ...)"
        )
    first = found.get((0, ""), set())
    layout = _Layout(
        num_layers=max(layer for layer, _ in found) + 1,
        bidirectional=any(direction for _, direction in found),
        bias="bias_ih" in first,
        projection="weight_hr" in first,
    )
    expected = {"weight_ih", "weight_hh"}
    expected |= {"bias_ih", "bias_hh"} if layout.bias else set()
    expected |= {"weight_hr"} if layout.projection else set()
    for layer in range(layout.num_layers):
        for suffix in layout.suffixes:
            names = found.get((layer, suffix), set())
            if names != expected:
                missing = expected - names
                wrong, how = (min(missing), "missing") if missing else (min(names - expected), "unexpected")
                raise ValueError(
                    f"state dict: {wrong}_l{layer}{suffix} is {how} (every layer and direction of an "
                    f"nn.LSTM has the same weights: {sorted(expected)})"
                )
    _refuse_gru_or_rnn(state["weight_hh_l0"], state.get("weight_hr_l0"), "weight_hh_l0", "LSTM")
    return layout


def _refuse_gru_or_rnn(weight_hh: np.ndarray, weight_hr: np.ndarray | None, key: str, kind: str) -> None:
    """A GRU's or plain RNN's state dict has an LSTM's keys, with 3 or 1 gate blocks instead of 4."""
    if weight_hh.ndim != 2 or (weight_hr is not None and weight_hr.ndim != 2):
        return  # not any RNN's shape: _cell says what is wrong
    hidden = weight_hh.shape[1] if weight_hr is None else weight_hr.shape[1]
    if hidden and weight_hh.shape[0] == 3 * hidden:
        raise ValueError(
            f"{key} has shape {weight_hh.shape}: 3 gate blocks, a GRU's; GRU is not supported, "
            f"fastlstm converts nn.{kind} (4 gate blocks)"
        )
    if hidden and weight_hh.shape[0] == hidden:
        raise ValueError(
            f"{key} has shape {weight_hh.shape}: 1 gate block, a plain nn.RNN's, which is not "
            f"supported; fastlstm converts nn.{kind} (4 gate blocks)"
        )


def _cell(
    state: dict[str, np.ndarray], suffix: str, bias: bool, dtype: Any, name: str | None = None
) -> BasicLSTMCell | LSTMCell:
    """The cell of one layer and direction (``suffix`` like ``_l1_reverse``), shapes checked."""
    weight_ih, weight_hh = state[f"weight_ih{suffix}"], state[f"weight_hh{suffix}"]
    if weight_ih.ndim != 2 or weight_ih.shape[0] == 0 or weight_ih.shape[0] % 4:
        raise ValueError(
            f"weight_ih{suffix} has shape {weight_ih.shape}; expected [4 * hidden_size, input_size]"
        )
    hidden = weight_ih.shape[0] // 4
    projection = state.get(f"weight_hr{suffix}")
    if projection is not None and (
        projection.ndim != 2 or projection.shape[1] != hidden or projection.shape[0] == 0
    ):
        raise ValueError(f"weight_hr{suffix} has shape {projection.shape}; expected [proj_size, {hidden}]")
    out = hidden if projection is None else projection.shape[0]
    if weight_hh.shape != (4 * hidden, out):
        raise ValueError(
            f"weight_hh{suffix} has shape {weight_hh.shape}; with weight_ih{suffix} {weight_ih.shape} "
            f"it must be ({4 * hidden}, {out})"
        )
    if bias:
        for key in (f"bias_ih{suffix}", f"bias_hh{suffix}"):
            if state[key].shape != (4 * hidden,):
                raise ValueError(f"{key} has shape {state[key].shape}; expected ({4 * hidden},)")
        total = state[f"bias_ih{suffix}"].astype(np.float64) + state[f"bias_hh{suffix}"].astype(np.float64)
    else:
        total = np.zeros(4 * hidden)
    kernel = np.concatenate([weight_ih.T, weight_hh.T])
    name = suffix[1:] if name is None else name
    if projection is None:
        cell: BasicLSTMCell | LSTMCell = BasicLSTMCell(hidden, forget_bias=0.0, name=name, dtype=dtype)
        cell.set_weights([to_tf_gate_order(kernel), to_tf_gate_order(total)])
    else:
        cell = LSTMCell(hidden, num_proj=projection.shape[0], forget_bias=0.0, name=name, dtype=dtype)
        cell.set_weights([to_tf_gate_order(kernel), to_tf_gate_order(total), projection.T])
    return cell


def _check_module(module: Any, model: LSTMModel) -> None:
    """The module's attributes agree with what its weights say."""
    first = model.layers[0][0] if isinstance(model.layers[0], tuple) else model.layers[0]
    kind = type(module).__name__
    inferred: dict[str, Any] = {
        "bias": "bias_ih" in module.state_dict() or "bias_ih_l0" in module.state_dict(),
        "hidden_size": first.num_units,
        "input_size": first.input_size,
    }
    if hasattr(module, "num_layers"):  # nn.LSTM, not nn.LSTMCell
        inferred.update(
            num_layers=len(model.layers),
            bidirectional=isinstance(model.layers[0], tuple),
            proj_size=getattr(first, "num_proj", None) or 0,
        )
    for name, value in inferred.items():
        attribute = getattr(module, name)
        if attribute != value:
            raise ValueError(f"nn.{kind} has {name}={attribute!r} but its weights say {name}={value!r}")
