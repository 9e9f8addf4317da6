"""Build an :class:`~fastlstm.LSTMModel` from a PyTorch ``nn.LSTM`` or its state dict.

PyTorch computes ``z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh`` with gate blocks
(i, f, g, o), no forget bias, and with ``proj_size`` ``h = (o * tanh(c)) @ W_hr.T``.
That is TF's cell with ``kernel = concat([W_ih.T, W_hh.T])`` and ``bias = b_ih + b_hh``
reordered to (i, j=g, f, o), ``forget_bias=0.0`` and ``projection_kernel = W_hr.T``.

torch is never imported here: a module or tensor given to :func:`from_torch`
means torch is already loaded, and it is looked up in ``sys.modules``. A state
dict of numpy arrays converts without torch installed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cell import BasicLSTMCell, LSTMCell
from ..model import LSTMModel
from ._common import default_dtype, float_array, to_tf_gate_order

__all__ = ["from_torch"]

_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?")
_DIRECTIONS = ("", "_reverse")


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


def from_torch(module_or_state_dict: Any, dtype: Any = None) -> LSTMModel:
    """Build a model from a PyTorch ``nn.LSTM`` or its ``state_dict()``.

    Parameters
    ----------
    module_or_state_dict : torch.nn.LSTM or mapping
        The module, or a state dict whose values are tensors or numpy arrays,
        with the keys of ``nn.LSTM``: ``weight_ih_l{k}``, ``weight_hh_l{k}``,
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` (if ``bias``), ``weight_hr_l{k}`` (if
        ``proj_size``), and the same with ``_reverse`` when bidirectional. The
        number of layers, directions, projection and bias are read from the keys
        and shapes. Only the LSTM's entries: strip a parent module's prefix first.
    dtype : float32 or float64, optional
        Dtype of the model; float64 if the weights are float64, else float32.

    Returns
    -------
    LSTMModel
        One layer per LSTM layer: a :class:`~fastlstm.BasicLSTMCell` (or an
        :class:`~fastlstm.LSTMCell` with ``num_proj=proj_size``) with
        ``forget_bias=0.0``, or a ``(cell_fw, cell_bw)`` pair when bidirectional.
        Its outputs are PyTorch's; ``states[k]`` is layer ``k``'s ``(c, h)``,
        i.e. ``(c_n[k], h_n[k])``, or ``(c_n[2k], h_n[2k])`` forward and
        ``(c_n[2k+1], h_n[2k+1])`` backward when bidirectional.

    Raises
    ------
    ValueError
        A GRU or plain RNN (module or state dict), unknown or missing keys,
        shapes that do not fit together, or a module whose attributes disagree
        with its weights.
    TypeError
        If the argument is neither a state dict nor an ``nn.LSTM``.

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
    """
    torch = sys.modules.get("torch")
    module = None
    if isinstance(module_or_state_dict, Mapping):
        state = {str(key): _to_numpy(value, str(key)) for key, value in module_or_state_dict.items()}
    elif torch is not None and isinstance(module_or_state_dict, torch.nn.Module):
        module = module_or_state_dict
        kind = type(module).__name__
        if isinstance(module, (torch.nn.GRU, torch.nn.GRUCell)):
            raise ValueError(f"{kind}: GRU is not supported; fastlstm converts nn.LSTM")  # noqa: TRY004
        if not isinstance(module, torch.nn.LSTM):
            raise ValueError(  # noqa: TRY004 - an unsupported network is a ValueError in every converter
                f"{kind} is not supported; fastlstm converts nn.LSTM modules (or their state dicts)"
            )
        state = {key: _to_numpy(value, key) for key, value in module.state_dict().items()}
    else:
        raise TypeError(
            f"from_torch takes an nn.LSTM or its state_dict(), got {type(module_or_state_dict).__name__}"
        )
    layout = _layout(state)
    dtype = default_dtype(dtype, list(state.values()))
    layers: list[Any] = []
    for k in range(layout.num_layers):
        cells = [_cell(state, f"_l{k}{suffix}", layout.bias, dtype) for suffix in layout.suffixes]
        layers.append(tuple(cells) if layout.bidirectional else cells[0])
    model = LSTMModel(layers)
    if module is not None:
        _check_module(module, model, layout)
    return model


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """A tensor (any device; half precision widened) or array-like as a float numpy array."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
        value = value.numpy()
    return float_array(value, key)


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
        raise ValueError("the state dict is empty; expected the keys of an nn.LSTM (weight_ih_l0, ...)")
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
    _refuse_gru_or_rnn(state["weight_hh_l0"], state.get("weight_hr_l0"))
    return layout


def _refuse_gru_or_rnn(weight_hh: np.ndarray, weight_hr: np.ndarray | None) -> None:
    """A GRU's or plain RNN's state dict has an LSTM's keys, with 3 or 1 gate blocks instead of 4."""
    if weight_hh.ndim != 2 or (weight_hr is not None and weight_hr.ndim != 2):
        return  # not any RNN's shape: _cell says what is wrong
    hidden = weight_hh.shape[1] if weight_hr is None else weight_hr.shape[1]
    if hidden and weight_hh.shape[0] == 3 * hidden:
        raise ValueError(
            f"weight_hh_l0 has shape {weight_hh.shape}: 3 gate blocks, a GRU's; GRU is not supported, "
            "fastlstm converts nn.LSTM (4 gate blocks)"
        )
    if hidden and weight_hh.shape[0] == hidden:
        raise ValueError(
            f"weight_hh_l0 has shape {weight_hh.shape}: 1 gate block, a plain nn.RNN's, which is not "
            "supported; fastlstm converts nn.LSTM (4 gate blocks)"
        )


def _cell(state: dict[str, np.ndarray], suffix: str, bias: bool, dtype: Any) -> BasicLSTMCell | LSTMCell:
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
    name = suffix[1:]
    if projection is None:
        cell: BasicLSTMCell | LSTMCell = BasicLSTMCell(hidden, forget_bias=0.0, name=name, dtype=dtype)
        cell.set_weights([to_tf_gate_order(kernel), to_tf_gate_order(total)])
    else:
        cell = LSTMCell(hidden, num_proj=projection.shape[0], forget_bias=0.0, name=name, dtype=dtype)
        cell.set_weights([to_tf_gate_order(kernel), to_tf_gate_order(total), projection.T])
    return cell


def _check_module(module: Any, model: LSTMModel, layout: _Layout) -> None:
    """The module's attributes agree with what its weights say."""
    first = model.layers[0][0] if layout.bidirectional else model.layers[0]
    inferred = {
        "num_layers": layout.num_layers,
        "bidirectional": layout.bidirectional,
        "bias": layout.bias,
        "proj_size": getattr(first, "num_proj", None) or 0,
        "hidden_size": first.num_units,
        "input_size": first.input_size,
    }
    for name, value in inferred.items():
        attribute = getattr(module, name)
        if attribute != value:
            raise ValueError(f"nn.LSTM has {name}={attribute!r} but its weights say {name}={value!r}")
