"""Build an :class:`~fastlstm.LSTMModel` from the variables of a TensorFlow 1 checkpoint.

The cells are recognised by TF 1's variable names under the ``dynamic_rnn`` /
``bidirectional_dynamic_rnn`` scope (``rnn`` and ``bidirectional_rnn`` by default):

=============================================== ===========================================
variables under ``scope/``                      model
=============================================== ===========================================
``basic_lstm_cell/{kernel,bias}``               one :class:`~fastlstm.BasicLSTMCell` layer
``lstm_cell/{kernel,bias,w_f_diag,w_i_diag,``   one :class:`~fastlstm.LSTMCell` layer
``w_o_diag,projection/kernel}``                 (peepholes and projection when present)
``multi_rnn_cell/cell_N/<cell>/...``            one layer per cell, bottom to top
``fw/<cell or multi_rnn_cell>/...`` and ``bw/``  one ``(cell_fw, cell_bw)`` layer (each a
                                                cell or a :class:`~fastlstm.MultiRNNCell`)
=============================================== ===========================================

Optimizer slots and moving averages stored beside a variable (``kernel/Adam``,
``bias/ExponentialMovingAverage``, ...) are ignored; any other variable under the
scope is refused, so nothing of the network is silently dropped.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..activations import ActivationLike
from ..cell import BasicLSTMCell, LSTMCell, MultiRNNCell, RNNCell
from ..io import read_tf_checkpoint
from ..layers import Dense, Embedding
from ..model import LSTMModel
from ._common import default_dtype, float_array, per_cell

__all__ = ["from_tf_checkpoint"]

_CELL_VARIABLES = {
    "basic_lstm_cell": ("kernel", "bias"),
    "lstm_cell": ("kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag", "projection/kernel"),
}
_PEEPHOLES = ("w_f_diag", "w_i_diag", "w_o_diag")
_CELL_N = re.compile(r"cell_(\d+)")
_LSTM_SCOPE = re.compile(
    r"^(.+?)/(?:(?:fw|bw)/)?(?:multi_rnn_cell/cell_\d+/)?(?:basic_lstm_cell|lstm_cell)/kernel$"
)
_SUPPORTED = "basic_lstm_cell/, lstm_cell/, multi_rnn_cell/cell_N/<cell>/, fw/ and bw/"


@dataclass(frozen=True)
class _CellVariables:
    """One TF cell's variables, checked for consistent shapes."""

    path: str
    kind: str
    arrays: dict[str, np.ndarray]
    units: int
    num_proj: int | None
    input_size: int

    @property
    def output_size(self) -> int:
        return self.units if self.num_proj is None else self.num_proj


def from_tf_checkpoint(
    prefix: str | os.PathLike[str] | Mapping[str, Any],
    scope: str = "rnn",
    dtype: Any = None,
    *,
    forget_bias: float | list[float] = 1.0,
    cell_clip: float | None | list[float | None] = None,
    proj_clip: float | None | list[float | None] = None,
    activation: ActivationLike | list[ActivationLike] = None,
    embedding: str | None = None,
    dense: Sequence[str] = (),
    dense_activations: Sequence[str | None] | None = None,
    return_sequences: bool = True,
) -> LSTMModel:
    """Build a model from the LSTM variables a TensorFlow 1 checkpoint holds under ``scope``.

    TensorFlow is not needed: the checkpoint is read by
    :func:`fastlstm.io.read_tf_checkpoint`. The model gives what TF's
    ``dynamic_rnn`` (or ``bidirectional_dynamic_rnn``, outputs concatenated)
    gave over the same cells.

    Parameters
    ----------
    prefix : str, path-like or mapping
        The checkpoint prefix (``"dir/model.ckpt"`` for ``dir/model.ckpt.index``
        and its data files), or the variables themselves as a mapping of TF
        variable name to array (what ``read_tf_checkpoint`` returns).
    scope : str, default "rnn"
        The variable scope of the RNN: ``"rnn"`` for ``dynamic_rnn``,
        ``"bidirectional_rnn"`` for ``bidirectional_dynamic_rnn``, or the
        ``scope=`` that was passed to them (e.g. ``"encoder/rnn"``).
    dtype : float32 or float64, optional
        Dtype of the model; float64 if the checkpoint's weights are float64,
        else float32.
    forget_bias, cell_clip, proj_clip, activation : value or list, optional
        The cell settings a checkpoint does not store; the defaults are TF's
        (``forget_bias=1.0``, no clipping, tanh). Pass the values the cells
        were built with. One value applies to every cell; a list gives one per
        cell, bottom to top (for ``fw``/``bw``: the forward cells, then the
        backward ones). ``cell_clip`` and ``proj_clip`` exist only for
        ``lstm_cell`` cells, ``proj_clip`` only with a projection.
    embedding : str, optional
        The name of an embedding variable ``[vocab, depth]`` looked up by
        ``tf.nn.embedding_lookup`` before the RNN (e.g. ``"embedding"``): the
        model starts with an :class:`~fastlstm.Embedding` and takes token ids.
    dense : list of str, optional
        The scopes of ``tf.layers.dense`` layers after the RNN, in order (each
        ``<scope>/kernel`` ``[in, units]`` and, unless ``use_bias=False``,
        ``<scope>/bias``): :class:`~fastlstm.Dense` layers.
    dense_activations : list of str or None, optional
        One activation per ``dense`` scope (a checkpoint does not store them);
        default linear.
    return_sequences : bool, default True
        False when the dense layers ran on ``state.h`` (the final output)
        rather than on ``outputs``.

    Returns
    -------
    LSTMModel
        A ``multi_rnn_cell`` gives one layer per cell (``states`` is then TF's
        tuple of cell states); ``fw``/``bw`` give one ``(cell_fw, cell_bw)``
        layer whose cells are :class:`~fastlstm.MultiRNNCell` when TF's were.

    Raises
    ------
    ValueError
        Nothing under ``scope`` (the message lists the scopes holding LSTM
        cells), variables that are not an LSTM's (GRU and others), shapes that
        do not fit together, or settings that do not fit the cells.
    fastlstm.io.CheckpointError
        A damaged checkpoint.
    FileNotFoundError
        A missing checkpoint file.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> rng = np.random.default_rng(0)
    >>> variables = {                       # what read_tf_checkpoint(prefix) returns
    ...     "rnn/lstm_cell/kernel": rng.uniform(-0.5, 0.5, (3 + 2, 16)).astype(np.float32),
    ...     "rnn/lstm_cell/bias": np.zeros(16, np.float32),
    ...     "rnn/lstm_cell/projection/kernel": rng.uniform(-0.5, 0.5, (4, 2)).astype(np.float32),
    ... }
    >>> model = fastlstm.from_tf_checkpoint(variables, cell_clip=3.0)
    >>> model.layers[0]
    LSTMCell(num_units=4, use_peepholes=False, cell_clip=3.0, num_proj=2, proj_clip=None, forget_bias=1.0, state_is_tuple=True, activation='tanh', name='rnn/lstm_cell', dtype='float32')
    >>> outputs, (state,) = model(np.ones((2, 5, 3), np.float32), sequence_length=[5, 2])
    >>> outputs.shape, state.c.shape
    ((2, 5, 2), (2, 4))
    """
    if isinstance(prefix, Mapping):
        variables, source = dict(prefix), "the variables given"
    else:
        variables, source = read_tf_checkpoint(prefix), os.fspath(prefix)
    if not isinstance(scope, str) or not scope.strip("/"):
        raise TypeError(f"scope must be a non-empty string such as 'rnn', got {scope!r}")
    scope = scope.strip("/")
    tree = _subtree(variables, scope)
    if not tree:
        scopes = sorted({m[1] for m in map(_LSTM_SCOPE.match, variables) if m})
        found = (
            f"scopes holding LSTM cells: {scopes}"
            if scopes
            else (
                f"it holds no TF 1 LSTM cell (top-level names: {sorted({n.split('/')[0] for n in variables})[:20]})"
            )
        )
        raise ValueError(f"no variables under scope {scope!r} in {source}; {found}")
    tops = _top_names(tree)
    if tops & {"fw", "bw"}:
        if tops != {"fw", "bw"}:
            raise ValueError(
                f"{scope}: a bidirectional scope holds exactly fw/ and bw/, found {sorted(tops)}"
            )
        stacks = [_parse_stack(_subtree(tree, d), f"{scope}/{d}") for d in ("fw", "bw")]
        fw, bw = stacks[0][0], stacks[1][0]
        if fw.input_size != bw.input_size:
            raise ValueError(
                f"{fw.path}/kernel takes inputs of depth {fw.input_size} but {bw.path}/kernel of "
                f"depth {bw.input_size}; fw and bw read the same inputs"
            )
        order = "the forward cells bottom to top, then the backward ones"
    else:
        stacks = [_parse_stack(tree, scope)]
        order = "bottom to top"
    specs = [spec for stack in stacks for spec in stack]
    cells = iter(_build_cells(specs, order, dtype, forget_bias, cell_clip, proj_clip, activation))
    built = [[next(cells) for _ in stack] for stack in stacks]
    layers: list[Any] = built[0] if len(built) == 1 else [tuple(_stack_cell(stack) for stack in built)]
    if embedding is None and not dense and return_sequences:
        return LSTMModel(layers)
    model_dtype = LSTMModel(layers).dtype
    around: list[Any] = []
    if embedding is not None:
        around.append(
            Embedding(_variable(variables, embedding, 2, "embedding variable", source), dtype=model_dtype)
        )
    around += layers
    if isinstance(dense, str) or not isinstance(dense, (list, tuple)):
        raise TypeError(f"dense must be a list of scopes such as ['dense'], got {type(dense).__name__}")
    activations = per_cell(dense_activations, len(dense), "dense_activations", "one per dense scope")
    for name, dense_activation in zip(dense, activations):
        if not isinstance(name, str):
            raise TypeError(f"dense scopes must be strings such as 'dense', got {type(name).__name__}")
        name = name.strip("/")
        kernel = _variable(variables, f"{name}/kernel", 2, "dense kernel", source)
        bias = (
            _variable(variables, f"{name}/bias", 1, "dense bias", source)
            if f"{name}/bias" in variables
            else None
        )
        around.append(Dense(kernel, bias, dense_activation, dtype=model_dtype))
    return LSTMModel(around, return_sequences=return_sequences)


def _variable(variables: Mapping[str, Any], name: Any, ndim: int, what: str, source: str) -> np.ndarray:
    """The variable ``name`` of ``variables``, a float array of rank ``ndim``."""
    if not isinstance(name, str):
        raise TypeError(f"the {what} must be named by a string, got {type(name).__name__}")
    if name not in variables:
        near = sorted(n for n in variables if n.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1])[:10]
        raise ValueError(
            f"no variable {name!r} (the {what}) in {source}"
            + (f"; variables of that name: {near}" if near else "")
        )
    array = float_array(variables[name], name)
    if array.ndim != ndim:
        raise ValueError(f"variable {name!r} (the {what}) has shape {array.shape}; expected {ndim}-D")
    return array


def _stack_cell(cells: list[RNNCell]) -> RNNCell:
    return cells[0] if len(cells) == 1 else MultiRNNCell(cells)


def _subtree(variables: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The variables below ``path``, named relative to it."""
    start = path + "/"
    return {name[len(start) :]: value for name, value in variables.items() if name.startswith(start)}


def _top_names(tree: Mapping[str, Any]) -> set[str]:
    return {name.split("/", 1)[0] for name in tree}


def _parse_stack(tree: dict[str, Any], path: str) -> list[_CellVariables]:
    """One cell, or the cells of a ``multi_rnn_cell`` bottom to top, with their inputs chained."""
    tops = _top_names(tree)
    if "multi_rnn_cell" not in tops:
        return [_parse_cell(tree, path)]
    if tops != {"multi_rnn_cell"}:
        other = min(tops - {"multi_rnn_cell"})
        raise ValueError(f"{path}: unsupported variables under {path}/{other}/ beside multi_rnn_cell/")
    multi = _subtree(tree, "multi_rnn_cell")
    numbers = []
    for name in sorted(_top_names(multi)):
        match = _CELL_N.fullmatch(name)
        if match is None:
            raise ValueError(
                f"{path}/multi_rnn_cell/{name}: expected cell_0, cell_1, ... under multi_rnn_cell/"
            )
        numbers.append(int(match[1]))
    missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
    if missing:
        raise ValueError(
            f"{path}/multi_rnn_cell: cell_{missing[0]} is missing (found cells {sorted(numbers)})"
        )
    cells = [
        _parse_cell(_subtree(multi, f"cell_{k}"), f"{path}/multi_rnn_cell/cell_{k}")
        for k in range(len(numbers))
    ]
    for below, cell in itertools.pairwise(cells):
        if cell.input_size != below.output_size:
            raise ValueError(
                f"{cell.path}/kernel takes inputs of depth {cell.input_size} but the cell below, "
                f"{below.path}, outputs {below.output_size}"
            )
    return cells


def _parse_cell(tree: dict[str, Any], path: str) -> _CellVariables:
    """The variables of the single cell under ``path``, their names and shapes checked."""
    for top in sorted(_top_names(tree)):
        if top not in _CELL_VARIABLES:
            example = next(name for name in sorted(tree) if name.split("/", 1)[0] == top)
            what = "GRU is not supported" if "gru" in top.lower() else "unsupported variables"
            raise ValueError(
                f"{path}/{example}: {what}; fastlstm converts TF 1 LSTM cells stored as {_SUPPORTED}"
            )
    tops = sorted(_top_names(tree))
    if len(tops) != 1:
        raise ValueError(
            f"{path}: holds several cells {tops}; expected one (stacks are under multi_rnn_cell/)"
        )
    kind = tops[0]
    cell_path = f"{path}/{kind}"
    allowed = _CELL_VARIABLES[kind]
    arrays = {}
    for name, value in _subtree(tree, kind).items():
        if name in allowed:
            arrays[name] = float_array(value, f"{cell_path}/{name}")
        elif not any(name.startswith(known + "/") for known in allowed):  # optimizer slots pass
            raise ValueError(f"{cell_path}/{name}: unsupported variable (a {kind} has {', '.join(allowed)})")
    for name in ("kernel", "bias"):
        if name not in arrays:
            raise ValueError(f"{cell_path}/{name} is missing")
    present = [name for name in _PEEPHOLES if name in arrays]
    if present and len(present) != 3:
        raise ValueError(f"{cell_path}: has {present} but not all three peepholes {list(_PEEPHOLES)}")
    return _checked_shapes(cell_path, kind, arrays)


def _checked_shapes(path: str, kind: str, arrays: dict[str, np.ndarray]) -> _CellVariables:
    kernel, bias = arrays["kernel"], arrays["bias"]
    if bias.ndim != 1 or bias.shape[0] == 0 or bias.shape[0] % 4:
        raise ValueError(f"{path}/bias has shape {bias.shape}; expected [4 * num_units]")
    units = bias.shape[0] // 4
    projection = arrays.get("projection/kernel")
    if projection is not None and (
        projection.ndim != 2 or projection.shape[0] != units or projection.shape[1] == 0
    ):
        raise ValueError(
            f"{path}/projection/kernel has shape {projection.shape}; with {units} units (bias "
            f"{bias.shape}) it must be [{units}, num_proj]"
        )
    num_proj = None if projection is None else projection.shape[1]
    out = units if num_proj is None else num_proj
    if kernel.ndim != 2 or kernel.shape[1] != 4 * units or kernel.shape[0] <= out:
        raise ValueError(
            f"{path}/kernel has shape {kernel.shape}; with bias {bias.shape} it must be "
            f"[input_size + {out}, {4 * units}] with input_size >= 1"
        )
    for name in _PEEPHOLES:
        if name in arrays and arrays[name].shape != (units,):
            raise ValueError(f"{path}/{name} has shape {arrays[name].shape}; expected ({units},)")
    return _CellVariables(path, kind, arrays, units, num_proj, kernel.shape[0] - out)


def _build_cells(
    specs: list[_CellVariables],
    order: str,
    dtype: Any,
    forget_bias: Any,
    cell_clip: Any,
    proj_clip: Any,
    activation: Any,
) -> list[RNNCell]:
    n = len(specs)
    dtype = default_dtype(dtype, [a for spec in specs for a in spec.arrays.values()])
    settings = zip(
        specs,
        per_cell(forget_bias, n, "forget_bias", order),
        per_cell(cell_clip, n, "cell_clip", order),
        per_cell(proj_clip, n, "proj_clip", order),
        per_cell(activation, n, "activation", order),
    )
    cells: list[RNNCell] = []
    for spec, bias, clip, projection_clip, act in settings:
        if spec.kind == "basic_lstm_cell":
            if clip is not None or projection_clip is not None:
                raise ValueError(
                    f"cell_clip/proj_clip given for {spec.path}, a BasicLSTMCell, which has no clipping; "
                    f"pass a list with None for it (one entry per cell, {order})"
                )
            cell: RNNCell = BasicLSTMCell(
                spec.units, forget_bias=bias, activation=act, name=spec.path, dtype=dtype
            )
        else:
            if projection_clip is not None and spec.num_proj is None:
                raise ValueError(
                    f"proj_clip={projection_clip!r} given for {spec.path}, which has no projection "
                    f"({spec.path}/projection/kernel is not in the checkpoint)"
                )
            cell = LSTMCell(
                spec.units,
                use_peepholes="w_f_diag" in spec.arrays,
                cell_clip=clip,
                num_proj=spec.num_proj,
                proj_clip=projection_clip,
                forget_bias=bias,
                activation=act,
                name=spec.path,
                dtype=dtype,
            )
        cell.set_weights([spec.arrays[name] for name in _CELL_VARIABLES[spec.kind] if name in spec.arrays])
        cells.append(cell)
    return cells
