"""Build an :class:`~fastlstm.LSTMModel` from an ONNX ``LSTM`` node (opsets 7 onward).

ONNX's LSTM computes, per direction, with gate blocks in the order (i, o, f, c)::

    z = X_t @ W.T + H_{t-1} @ R.T + Wb + Rb
    i = f(clip(z_i + P_i * C_{t-1}))        f = f(clip(z_f + P_f * C_{t-1}))
    C_t = f * C_{t-1} + i * g(clip(z_c))
    o = f(clip(z_o + P_o * C_t))            H_t = o * h(C_t)

That is TF's cell with ``kernel = concat([W.T, R.T])`` and ``bias = Wb + Rb``
reordered to (i, j=c, f, o), ``forget_bias=0.0``, the peepholes ``P`` (order
i, o, f) as ``w_i_diag``, ``w_o_diag``, ``w_f_diag``, ``f`` as
``recurrent_activation``, ``g = h`` as ``activation`` and ``clip`` as
``gate_clip`` (it bounds the activations' inputs; the cell state is not clipped,
unlike TF's ``cell_clip``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import activations as _activations
from ..cell import BasicLSTMCell, LSTMCell, LSTMStateTuple
from ..io.onnx_model import OnnxLSTMNode, read_onnx_lstm
from ..model import Backward, LSTMModel
from ._common import default_dtype

__all__ = ["from_onnx", "onnx_initial_state", "onnx_outputs"]

# ONNX (i, o, f, c) -> TensorFlow (i, j=c, f, o).
_IOFC_TO_IJFO = (0, 3, 2, 1)
# Which activations take activation_alpha / activation_beta values (in list order), and their
# defaults, as the ONNX operators and onnxruntime's LSTM define them.
_TAKES_ALPHA = {"affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"}
_TAKES_BETA = {"affine", "scaledtanh", "hardsigmoid"}
_DEFAULTS = {"leakyrelu": (0.01, None), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None), "affine": (None, 0.0)}
_KNOWN = {
    "relu",
    "tanh",
    "sigmoid",
    "affine",
    "leakyrelu",
    "thresholdedrelu",
    "scaledtanh",
    "hardsigmoid",
    "elu",
    "softsign",
    "softplus",
}
_DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")


@dataclass(frozen=True)
class _Activation:
    """One entry of the node's ``activations``, with the alpha / beta it consumes (None: not used)."""

    name: str
    alpha: float | None
    beta: float | None

    def __str__(self) -> str:
        args = [f"{k}={v!r}" for k, v in (("alpha", self.alpha), ("beta", self.beta)) if v is not None]
        return f"{self.name}({', '.join(args)})" if args else self.name


def from_onnx(path_or_model: Any, node: str | None = None, dtype: Any = None) -> LSTMModel:
    """Build a one-layer model from an ONNX ``LSTM`` node.

    Parameters
    ----------
    path_or_model : str, path-like or onnx.ModelProto
        An ``.onnx`` file or a loaded model (needs the ``onnx`` package:
        ``pip install fastlstm[onnx]``; no ONNX runtime).
    node : str, optional
        The LSTM node's name (or one of its outputs' names). Needed only when
        the main graph holds several LSTM nodes; with one, it is taken.
    dtype : float32 or float64, optional
        Dtype of the model; float64 if the weights are float64, else float32.

    Returns
    -------
    LSTMModel
        One layer: a cell for ``direction="forward"``,
        ``fastlstm.Backward(cell)`` for ``"reverse"``, a ``(cell_fw, cell_bw)``
        pair for ``"bidirectional"``. Each cell is a
        :class:`~fastlstm.BasicLSTMCell`, or an :class:`~fastlstm.LSTMCell` when
        the node has peepholes ``P`` or ``clip``, with ``forget_bias=0.0``.

    Raises
    ------
    ValueError
        A node the model cannot represent, naming the attribute:
        ``input_forget=1``, ``g`` and ``h`` activations that differ, an ``f``
        other than Sigmoid / HardSigmoid, a ``g`` / ``h`` with no exact
        fastlstm equivalent, a non-positive ``clip``. A damaged file or a node
        that cannot be read raises :class:`~fastlstm.io.OnnxFileError`, a
        ``ValueError``.

    Notes
    -----
    How the node's inputs and outputs map to a call of the model
    (``outputs, states = model(x, sequence_length, initial_state, time_major)``):

    * ``X``: ``x``; with ``layout=0`` ONNX's ``[seq_length, batch, input]`` is
      time-major, so pass ``time_major=True``; ``layout=1`` is batch-major,
      fastlstm's default.
    * ``sequence_lens``: ``sequence_length``.
    * ``initial_h``, ``initial_c``: ``initial_state``, built by
      :func:`onnx_initial_state` (either may be absent: zeros).
    * ``Y``: ``outputs`` hold the directions concatenated on the last axis
      (forward first), ``[seq_length, batch, num_directions * hidden]`` when
      time-major. ONNX's ``Y`` is ``[seq_length, num_directions, batch, hidden]``
      (layout 0) or ``[batch, seq_length, num_directions, hidden]`` (layout 1):
      ``outputs.reshape(T, B, D, H).transpose(0, 2, 1, 3)`` resp.
      ``outputs.reshape(B, T, D, H)``. :func:`onnx_outputs` does this, and
      gives ``Y_h`` / ``Y_c`` (``[num_directions, batch, hidden]``, or
      ``[batch, num_directions, hidden]`` with layout 1) from ``states``.
    * Past each row's length, ``Y`` is zero in both (onnxruntime writes zeros
      there too). A reverse direction runs each row backwards within its own
      length, as onnxruntime does, and its ``Y_h`` is the state after step 0.
    * A row of length 0: fastlstm's final state is the initial state (as in
      TF's ``dynamic_rnn``), where onnxruntime 1.32 gives zeros for ``Y_h`` and ``Y_c``.

    Constant ``sequence_lens`` / ``initial_h`` / ``initial_c`` in the graph are
    not part of the model; read them with :func:`fastlstm.io.read_onnx_lstm`.

    Examples
    --------
    >>> import numpy as np, onnx, fastlstm
    >>> from onnx import helper, numpy_helper
    >>> rng = np.random.default_rng(0)
    >>> W = rng.uniform(-0.5, 0.5, (1, 16, 3)).astype(np.float32)   # [directions, 4 * hidden, input]
    >>> R = rng.uniform(-0.5, 0.5, (1, 16, 4)).astype(np.float32)   # [directions, 4 * hidden, hidden]
    >>> graph = helper.make_graph(
    ...     [helper.make_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=4)], "g",
    ...     [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [5, 2, 3])],
    ...     [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
    ...     [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")])
    >>> model = fastlstm.from_onnx(helper.make_model(graph))
    >>> outputs, states = model(np.ones((5, 2, 3), np.float32), time_major=True)
    >>> Y, Y_h, Y_c = fastlstm.convert.onnx_outputs(outputs, states)
    >>> Y.shape, Y_h.shape, model.layers[0].forget_bias
    ((5, 1, 2, 4), (1, 2, 4), 0.0)
    """
    lstm = read_onnx_lstm(path_or_model, node)
    where = f"{lstm.source}: LSTM node {lstm.name!r}" if lstm.name else f"{lstm.source}: the LSTM node"
    if lstm.input_forget:
        raise ValueError(
            f"{where}: input_forget={lstm.input_forget} (input and forget gates coupled) is not supported"
        )
    if lstm.clip is not None and not lstm.clip > 0:
        raise ValueError(f"{where}: clip={lstm.clip!r} must be > 0")
    dtype = default_dtype(dtype, [array for array in (lstm.W, lstm.R, lstm.B, lstm.P) if array is not None])
    per_direction = _activations_of(lstm, where)
    cells = []
    for d, label in enumerate(("forward", "backward")[: lstm.num_directions]):
        recurrent, activation = _cell_activations(per_direction[d], where, d)
        try:
            cells.append(_cell(lstm, d, recurrent, activation, dtype, label))
        except ValueError as error:  # a value the cell refuses (such as an infinite clip)
            raise ValueError(f"{where}: {error}") from error
    if lstm.direction == "forward":
        layer: Any = cells[0]
    elif lstm.direction == "reverse":
        layer = Backward(cells[0])
    else:
        layer = (cells[0], cells[1])
    return LSTMModel([layer])


def _activations_of(lstm: OnnxLSTMNode, where: str) -> list[tuple[_Activation, ...]]:
    """(f, g, h) per direction, each with the alpha / beta it consumes.

    onnxruntime's rule: the alpha (beta) values go, in order, to the activations that take an
    alpha (beta); one that finds the list used up takes its operator's default; values left
    over are ignored.
    """
    names = lstm.activations or _DEFAULT_ACTIVATIONS * lstm.num_directions
    if len(names) != 3 * lstm.num_directions:
        raise ValueError(
            f"{where}: activations has {len(names)} entries {list(names)}; a {lstm.direction} LSTM takes "
            f"{3 * lstm.num_directions} (f, g, h per direction)"
        )
    alphas, betas = list(lstm.activation_alpha), list(lstm.activation_beta)
    resolved = []
    for k, raw in enumerate(names):
        name = raw.lower()
        if name not in _KNOWN:
            raise ValueError(f"{where}: activations[{k}] = {raw!r} is not an ONNX RNN activation")
        default_alpha, default_beta = _DEFAULTS.get(name, (None, None))
        alpha = (alphas.pop(0) if alphas else default_alpha) if name in _TAKES_ALPHA else None
        beta = (betas.pop(0) if betas else default_beta) if name in _TAKES_BETA else None
        resolved.append(_Activation(raw, alpha, beta))
    return [tuple(resolved[3 * d : 3 * d + 3]) for d in range(lstm.num_directions)]


def _cell_activations(fgh: tuple[_Activation, ...], where: str, direction: int) -> tuple[Any, str]:
    """fastlstm's ``recurrent_activation`` for ``f`` and ``activation`` for ``g = h``."""
    f, g, h = fgh
    base = 3 * direction
    if (g.name.lower(), g.alpha, g.beta) != (h.name.lower(), h.alpha, h.beta):
        raise ValueError(
            f"{where}: activations g = {g} and h = {h} (activations[{base + 1}] and [{base + 2}]) differ; "
            "fastlstm applies one activation to the candidate and to the cell state"
        )
    name = f.name.lower()
    if name == "sigmoid":
        recurrent: Any = "sigmoid"
    elif name == "hardsigmoid":
        assert f.alpha is not None and f.beta is not None
        recurrent = _activations.HardSigmoid(f.alpha, f.beta)
    else:
        raise ValueError(
            f"{where}: activations[{base}] (f, the gates' activation) = {f} is not supported; "
            "fastlstm's gates take Sigmoid or HardSigmoid"
        )
    activation = _exact_activation(g)
    if activation is None:
        raise ValueError(
            f"{where}: activations[{base + 1}] (g and h) = {g} has no exact fastlstm equivalent "
            "(supported: Tanh, Relu, Sigmoid, Softsign, Elu(alpha=1), HardSigmoid(alpha=0.2, beta=0.5), "
            "Affine(alpha=1, beta=0), LeakyRelu(alpha=0), ScaledTanh(alpha=1, beta=1))"
        )
    return recurrent, activation


def _exact_activation(act: _Activation) -> str | None:
    """The fastlstm activation computing exactly what the ONNX one does (float32 attribute values)."""
    exact = {
        ("tanh", None, None): "tanh",
        ("relu", None, None): "relu",
        ("sigmoid", None, None): "sigmoid",
        ("softsign", None, None): "softsign",
        ("elu", 1.0, None): "elu",
        ("hardsigmoid", float(np.float32(0.2)), 0.5): "hard_sigmoid",
        ("affine", 1.0, 0.0): "linear",
        ("leakyrelu", 0.0, None): "relu",
        ("scaledtanh", 1.0, 1.0): "tanh",
    }
    key = (
        act.name.lower(),
        None if act.alpha is None else float(np.float32(act.alpha)),
        None if act.beta is None else float(np.float32(act.beta)),
    )
    return exact.get(key)


def _cell(
    lstm: OnnxLSTMNode, d: int, recurrent: Any, activation: str, dtype: Any, name: str
) -> BasicLSTMCell | LSTMCell:
    """The cell of direction ``d``, weights in TF's layout and gate order."""
    hidden = lstm.hidden_size
    kernel = np.concatenate([lstm.W[d].T, lstm.R[d].T]).astype(np.float64)
    bias = np.zeros(4 * hidden)
    if lstm.B is not None:
        bias = lstm.B[d, : 4 * hidden].astype(np.float64) + lstm.B[d, 4 * hidden :].astype(np.float64)
    weights = [_to_tf_order(kernel), _to_tf_order(bias)]
    options: dict[str, Any] = {"forget_bias": 0.0, "activation": activation, "name": name, "dtype": dtype}
    if recurrent != "sigmoid":
        options["recurrent_activation"] = recurrent
    if lstm.P is None and lstm.clip is None:
        cell: BasicLSTMCell | LSTMCell = BasicLSTMCell(hidden, **options)
    else:
        if lstm.clip is not None:
            options["gate_clip"] = lstm.clip
        cell = LSTMCell(hidden, use_peepholes=lstm.P is not None, **options)
        if lstm.P is not None:
            p_i, p_o, p_f = np.split(lstm.P[d], 3)
            weights += [p_f, p_i, p_o]  # LSTMCell's order: w_f_diag, w_i_diag, w_o_diag
    cell.set_weights(weights)
    return cell


def _to_tf_order(array: np.ndarray) -> np.ndarray:
    blocks = np.split(array, 4, axis=-1)
    return np.concatenate([blocks[k] for k in _IOFC_TO_IJFO], axis=-1)


def onnx_initial_state(initial_h: Any = None, initial_c: Any = None, layout: int = 0) -> list[Any] | None:
    """ONNX's ``initial_h`` / ``initial_c`` as the ``initial_state`` of a model from :func:`from_onnx`.

    Parameters
    ----------
    initial_h, initial_c : array_like, optional
        ``[num_directions, batch, hidden]`` (``[batch, num_directions, hidden]``
        with ``layout=1``); a missing one is zeros, as in ONNX.
    layout : {0, 1}
        The node's ``layout``.

    Returns
    -------
    list or None
        ``[(c, h)]``, or ``[((c_fw, h_fw), (c_bw, h_bw))]`` for two directions;
        None when both are None.
    """
    if layout not in (0, 1):
        raise ValueError(f"layout must be 0 or 1, got {layout!r}")
    if initial_h is None and initial_c is None:
        return None
    given = [np.asarray(a) for a in (initial_h, initial_c) if a is not None]
    for array in given:
        if array.ndim != 3:
            raise ValueError(f"initial_h / initial_c must have 3 dimensions, got shape {array.shape}")
    if len(given) == 2 and given[0].shape != given[1].shape:
        raise ValueError(f"initial_h has shape {given[0].shape} but initial_c {given[1].shape}")

    def by_direction(array: Any) -> np.ndarray:
        array = np.zeros_like(given[0]) if array is None else np.asarray(array)
        return array if layout == 0 else array.transpose(1, 0, 2)

    h, c = by_direction(initial_h), by_direction(initial_c)
    if h.shape[0] not in (1, 2):
        raise ValueError(f"initial_h / initial_c have {h.shape[0]} directions; ONNX's LSTM has 1 or 2")
    states = [LSTMStateTuple(c[d], h[d]) for d in range(h.shape[0])]
    return [states[0] if len(states) == 1 else tuple(states)]


def onnx_outputs(outputs: np.ndarray, states: Sequence[Any], layout: int = 0) -> tuple[np.ndarray, ...]:
    """A model's ``outputs, states`` in the layout of ONNX's ``Y``, ``Y_h``, ``Y_c``.

    Parameters
    ----------
    outputs : ndarray
        The model's outputs: time-major ``[seq_length, batch, num_directions *
        hidden]`` for ``layout=0`` (run with ``time_major=True``), batch-major
        for ``layout=1``.
    states : sequence
        The model's states (one layer).
    layout : {0, 1}
        The node's ``layout``.

    Returns
    -------
    Y, Y_h, Y_c : ndarray
        ``Y`` ``[seq_length, num_directions, batch, hidden]`` (layout 0) or
        ``[batch, seq_length, num_directions, hidden]`` (layout 1); ``Y_h`` and
        ``Y_c`` ``[num_directions, batch, hidden]`` (layout 0) or ``[batch,
        num_directions, hidden]`` (layout 1).
    """
    if layout not in (0, 1):
        raise ValueError(f"layout must be 0 or 1, got {layout!r}")
    if len(states) != 1:
        raise ValueError(f"expected the states of a one-layer model, got {len(states)} layers")
    state = states[0]
    per_direction = [state] if isinstance(state, LSTMStateTuple) else list(state)
    c = np.stack([s.c for s in per_direction])
    h = np.stack([s.h for s in per_direction])
    a, b, width = outputs.shape
    y = outputs.reshape(a, b, len(per_direction), width // len(per_direction))
    if layout == 0:
        return y.transpose(0, 2, 1, 3), h, c
    return y, h.transpose(1, 0, 2), c.transpose(1, 0, 2)
