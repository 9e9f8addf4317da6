"""LSTM cells with TensorFlow 1's ``tf.nn.rnn_cell`` API.

A cell owns its weights (``kernel`` with gate columns in TF's order i, j, f, o,
``bias`` and, for :class:`LSTMCell`, peepholes and a projection) and knows how
to run itself over a whole batch of sequences; :func:`fastlstm.dynamic_rnn` is
the usual way to do that. :class:`BasicLSTMCell` and :class:`LSTMCell` share
all their logic in one base class; :class:`MultiRNNCell` stacks cells.
"""

from __future__ import annotations

import abc
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import _layers
from . import _validation as check
from ._layers import Direction, LeafRun
from ._runner import LayerWeights
from .activations import (
    ActivationLike,
    RecurrentActivationLike,
    resolve_activation,
    resolve_recurrent_activation,
)

__all__ = ["BasicLSTMCell", "LSTMCell", "LSTMStateTuple", "MultiRNNCell", "RNNCell", "glorot_uniform"]

Initializer = Callable[[tuple, np.dtype, np.random.Generator], Any]
SeedLike = int | np.random.Generator | None


# fastlstm's settings beyond TF's API, with the values that keep TF's behaviour.
_EXTENSION_DEFAULTS: dict[str, Any] = {"recurrent_activation": "sigmoid", "gate_clip": None}

# Held while a cell is built lazily by its first run (runs may come from several threads).
_BUILD_LOCK = threading.RLock()


class LSTMStateTuple(namedtuple("LSTMStateTuple", ("c", "h"))):
    """The state of an LSTM cell: ``c`` (cell state) and ``h`` (output), in that order.

    Same as ``tf.nn.rnn_cell.LSTMStateTuple``. For an :class:`LSTMCell` with
    ``num_proj``, ``h`` is TF's ``m`` (the projected output).
    """

    __slots__ = ()

    @property
    def dtype(self) -> np.dtype:
        """The dtype shared by ``c`` and ``h``."""
        return check.state_dtype(*self)


def glorot_uniform(shape: tuple, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """TF's default initializer: uniform in ``[-limit, limit]``, ``limit = sqrt(6 / (fan_in + fan_out))``.

    As TF's ``glorot_uniform_initializer``: ``(fan_in, fan_out) = shape`` for a
    matrix, both ``shape[0]`` for a vector (the peephole weights).

    Parameters
    ----------
    shape : tuple of int
        1-D or 2-D shape of the variable.
    dtype : numpy dtype
        Dtype of the result.
    rng : numpy.random.Generator
        Source of the random numbers.

    Returns
    -------
    ndarray
    """
    fan_in, fan_out = (shape[0], shape[0]) if len(shape) == 1 else shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


class RNNCell(abc.ABC):
    """Base of every fastlstm cell; :func:`fastlstm.dynamic_rnn` runs any of them.

    A subclass validates a run before any compiled code starts (``_prepare``,
    which gives the runs of its single-layer cells); :mod:`fastlstm._layers`
    runs those and the cell packs their final states (``_pack_final``), so a
    stack of cells or a model can check every layer first and run afterwards.
    """

    dtype: np.dtype

    @property
    @abc.abstractmethod
    def output_size(self) -> int:
        """Depth of the outputs."""

    @property
    @abc.abstractmethod
    def input_size(self) -> int | None:
        """Depth of the inputs the weights were made for; None before building."""

    @property
    @abc.abstractmethod
    def built(self) -> bool:
        """Whether the weights exist."""

    @abc.abstractmethod
    def _leaf_cells(self) -> tuple[_LSTMBase, ...]:
        """The single-layer cells this cell consists of, bottom to top."""

    @abc.abstractmethod
    def _state_dtype(self, state: Any) -> np.dtype | None:
        """The widest float dtype in a user's state, if it has one."""

    @abc.abstractmethod
    def _prepare(
        self, depth: int, batch: int, initial_state: Any, dtype: np.dtype, context: str
    ) -> list[LeafRun]:
        """Validate a run on inputs of ``depth`` (building lazily): the runs of the leaf cells, bottom to top."""

    @abc.abstractmethod
    def _pack_final(self, finals: Iterator[tuple[np.ndarray, np.ndarray]]) -> Any:
        """The final state in this cell's structure, taking the leaf cells' ``(c, h)`` from ``finals``."""

    def __call__(self, inputs: Any, state: Any) -> tuple[np.ndarray, Any]:
        """One time step, as TF's ``cell(inputs, state)``.

        Parameters
        ----------
        inputs : array_like, shape ``[batch, input_size]``
        state : state
            As :meth:`zero_state` returns. Its dtype is the computation dtype
            (as in TF, where both must agree).

        Returns
        -------
        output : ndarray, shape ``[batch, output_size]``
        new_state : state
        """
        x = check.step_inputs(inputs, state)
        dtype = self._state_dtype(state) or self.dtype
        check.check_size(x.shape, "inputs", dtype.itemsize)
        check.check_size((x.shape[0], self.output_size), "outputs", dtype.itemsize)
        x3 = check.as_kernel_array(x[:, None, :], dtype)
        batch = x.shape[0]
        prepared = _layers.prepare(self, Direction.FORWARD, x.shape[1], batch, state, dtype)
        ((outputs, new_state),) = _layers.run((prepared,), (x3,), np.ones(batch, dtype=np.int64), False)
        return outputs[:, 0, :], new_state


class _LSTMBase(RNNCell):
    """Everything :class:`BasicLSTMCell` and :class:`LSTMCell` share.

    A subclass names its variables (``_variable_shapes``), the depth of its
    output (``_out_depth``) and the extras it hands the kernel (``_kernel_extras``).
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float,
        state_is_tuple: bool,
        activation: ActivationLike,
        name: str | None,
        dtype: Any,
        recurrent_activation: RecurrentActivationLike,
    ) -> None:
        self.num_units = check.positive_int(num_units, "num_units")
        self.forget_bias = check.finite_float(forget_bias, "forget_bias")
        self.state_is_tuple = bool(state_is_tuple)
        self.activation = activation
        self._activation = resolve_activation(activation)
        self._recurrent_activation = resolve_recurrent_activation(recurrent_activation)
        self.recurrent_activation = recurrent_activation
        self.name = check.optional_str(name, "name")
        self.dtype = np.dtype(np.float32) if dtype is None else check.float_dtype(dtype)
        self._initializer: Initializer | None = None
        self._variables: dict[str, np.ndarray] = {}
        self._per_dtype: dict[np.dtype, LayerWeights] = {}

    # -- what subclasses say about themselves -------------------------------------------
    @property
    def _out_depth(self) -> int:
        """Size of ``h`` (and of the outputs)."""
        return self.num_units

    def _variable_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        """Name and shape of every variable, in TF's order."""
        return {
            "kernel": (input_size + self._out_depth, 4 * self.num_units),
            "bias": (4 * self.num_units,),
        }

    def _kernel_extras(self, variables: dict[str, np.ndarray]) -> dict[str, Any]:
        """Peepholes, clips and projection for :class:`LayerWeights` (none here)."""
        return {}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments: ``type(cell)(**cell.get_config())`` is an unbuilt copy.

        ``activation`` and ``recurrent_activation`` are as they were passed (a
        name, None, a function or a :class:`~fastlstm.HardSigmoid`) and
        ``dtype`` is a name such as ``"float32"``.
        """
        return {
            "num_units": self.num_units,
            "forget_bias": self.forget_bias,
            "state_is_tuple": self.state_is_tuple,
            "activation": self.activation,
            "name": self.name,
            "dtype": self.dtype.name,
            "recurrent_activation": self.recurrent_activation,
        }

    # -- weights -------------------------------------------------------------------------
    @property
    def weight_names(self) -> tuple[str, ...]:
        """Names of the arrays of :meth:`get_weights`, in TF's variable order."""
        return tuple(self._variable_shapes(0))

    @property
    def built(self) -> bool:
        """Whether the weights exist (after :meth:`build`, :meth:`set_weights` or a first run)."""
        return bool(self._variables)

    @property
    def input_size(self) -> int | None:
        """Depth of the inputs the weights were made for; None before building."""
        kernel = self._variables.get("kernel")
        return None if kernel is None else kernel.shape[0] - self._out_depth

    @property
    def kernel(self) -> np.ndarray | None:
        """``[input_size + output_size, 4 * num_units]``, gate columns (i, j, f, o)."""
        return self._variables.get("kernel")

    @property
    def bias(self) -> np.ndarray | None:
        """``[4 * num_units]``, gate blocks (i, j, f, o); ``forget_bias`` is not in it."""
        return self._variables.get("bias")

    def build(self, input_size: int, seed: SeedLike = None) -> None:
        """Create the weights for inputs of depth ``input_size``.

        As TF: every variable but ``bias`` comes from the initializer
        (:func:`glorot_uniform` unless the cell was given one), ``bias`` is zeros.

        Parameters
        ----------
        input_size : int
            Depth of the inputs.
        seed : int or numpy.random.Generator, optional
            Seed (or generator) of the random initialisation.
        """
        depth = check.non_negative_int(input_size, "input_size")
        rng = np.random.default_rng(seed)
        initializer = self._initializer or glorot_uniform
        values = []
        shapes = self._variable_shapes(depth)
        for name, shape in shapes.items():
            check.check_size(shape, name, self.dtype.itemsize)
        for name, shape in shapes.items():
            if name == "bias":
                values.append(np.zeros(shape, self.dtype))
            else:
                drawn = initializer(shape, self.dtype, rng)
                values.append(check.weight(drawn, shape, f"initializer result for {name}", self.dtype))
        self._assign(values)

    def get_weights(self) -> list[np.ndarray]:
        """The weights (copies) in the order of :attr:`weight_names`; ``[]`` before building."""
        return [value.copy() for value in self._variables.values()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights, in the order of :attr:`weight_names` (TF's variable order).

        The input size is taken from the kernel's rows. The arrays are copied
        into the cell's dtype.

        Raises
        ------
        ValueError
            If the list has the wrong length or an array the wrong shape.
        TypeError
            If ``weights`` is not a list or a weight is not real-valued.
        """
        self._assign(self._checked_weights(weights))

    def _checked_weights(self, weights: Sequence[Any], context: str = "") -> list[np.ndarray]:
        """Validated copies of ``weights`` in the cell's dtype (nothing is assigned)."""
        names = self.weight_names
        weights = check.weight_list(weights, names, type(self).__name__)
        kernel = check.real_array(weights[0], f"{context}kernel")
        out_depth = self._out_depth
        check.kernel_shape(kernel, 4 * self.num_units, out_depth, f"{context}kernel")
        shapes = self._variable_shapes(kernel.shape[0] - out_depth)
        return [
            check.weight(value, shapes[name], f"{context}{name}", self.dtype)
            for name, value in zip(names, weights)
        ]

    def _assign(self, values: list[np.ndarray]) -> None:
        self._variables = dict(zip(self.weight_names, values))
        self._per_dtype.clear()

    def _weights(self, dtype: np.dtype) -> LayerWeights:
        if dtype not in self._per_dtype:
            variables = {
                name: np.ascontiguousarray(value, dtype=dtype) for name, value in self._variables.items()
            }
            self._per_dtype[dtype] = LayerWeights(
                kernel=variables["kernel"],
                bias=variables["bias"],
                forget_bias=self.forget_bias,
                activation=self._activation,
                recurrent_activation=self._recurrent_activation,
                **self._kernel_extras(variables),
            )
        return self._per_dtype[dtype]

    def _leaf_cells(self) -> tuple[_LSTMBase, ...]:
        return (self,)

    # -- state ---------------------------------------------------------------------------
    @property
    def state_size(self) -> LSTMStateTuple | int:
        """``LSTMStateTuple(num_units, output_size)``, or their sum when not a tuple."""
        if self.state_is_tuple:
            return LSTMStateTuple(self.num_units, self._out_depth)
        return self.num_units + self._out_depth

    @property
    def output_size(self) -> int:
        """Depth of the outputs (and of ``h``)."""
        return self._out_depth

    def zero_state(self, batch_size: int, dtype: Any = None) -> LSTMStateTuple | np.ndarray:
        """An all-zero state for ``batch_size`` rows, in ``dtype`` (the cell's by default)."""
        batch = check.non_negative_int(batch_size, "batch_size")
        dtype = self.dtype if dtype is None else check.float_dtype(dtype)
        check.check_size((batch, self.num_units + self._out_depth), "zero state", dtype.itemsize)
        c = np.zeros((batch, self.num_units), dtype)
        return self._pack_state(c, np.zeros((batch, self._out_depth), dtype))

    def _pack_state(self, c: np.ndarray, h: np.ndarray) -> LSTMStateTuple | np.ndarray:
        if self.state_is_tuple:
            return LSTMStateTuple(c, h)
        return np.concatenate([c, h], axis=1)

    def _state_dtype(self, state: Any) -> np.dtype | None:
        parts = state if isinstance(state, (tuple, list)) else (state,)
        dtypes = {np.asarray(p).dtype for p in parts}
        floats = [d for d in dtypes if d in check.SUPPORTED_DTYPES]
        return max(floats, key=lambda d: d.itemsize) if floats else None

    # -- running -------------------------------------------------------------------------
    def _prepare(
        self, depth: int, batch: int, initial_state: Any, dtype: np.dtype, context: str
    ) -> list[LeafRun]:
        weights = self._per_dtype.get(dtype)
        if weights is None:  # a first run (in this dtype): concurrent ones must all see one set of weights
            with _BUILD_LOCK:
                if not self.built:
                    self.build(depth)
                weights = self._weights(dtype)
        units, out_depth = self.num_units, self._out_depth
        check.input_depth(depth, weights.kernel.shape[0] - out_depth, context)  # the built input size
        if initial_state is None:
            c0 = np.zeros((batch, units), dtype)
            h0 = np.zeros((batch, out_depth), dtype)
        else:
            c_in, h_in = check.lstm_state(
                initial_state, batch, units, out_depth, self.state_is_tuple, context
            )
            c0 = check.as_kernel_array(c_in, dtype)
            h0 = check.as_kernel_array(h_in, dtype)
        return [LeafRun(weights, c0, h0)]

    def _pack_final(self, finals: Iterator[tuple[np.ndarray, np.ndarray]]) -> LSTMStateTuple | np.ndarray:
        c, h = next(finals)
        return self._pack_state(c, h)

    def __repr__(self) -> str:
        config = {**self.get_config(), "activation": self._activation.name}
        for key, default in _EXTENSION_DEFAULTS.items():  # shown only when used, so TF's cells look as in TF
            if key in config and config[key] == default:
                del config[key]
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


class BasicLSTMCell(_LSTMBase):
    """TensorFlow 1's ``BasicLSTMCell``: an LSTM without peepholes or projection.

    ``z = [inputs, h] @ kernel + bias`` split into gates (i, j, f, o);
    ``new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)``;
    ``new_h = activation(new_c) * sigmoid(o)`` (``sigmoid`` here stands for
    ``recurrent_activation``).

    Parameters
    ----------
    num_units : int
        Units in the cell (size of ``c`` and ``h``).
    forget_bias : float, default 1.0
        Added to the forget gate at run time (it is not stored in ``bias``).
    state_is_tuple : bool, default True
        State as :class:`LSTMStateTuple` ``(c, h)``; if False, one array
        ``concat([c, h], axis=1)``.
    activation : str, callable or None
        Activation of the candidate ``j`` and of ``new_c``; default tanh.
        See :mod:`fastlstm.activations`.
    name : str, optional
        A label (used in checkpoints and messages).
    dtype : float32 or float64, optional
        Dtype of the weights; float32 when None.
    recurrent_activation : str or HardSigmoid, default "sigmoid"
        Activation of the gates i, f and o (an extension of TF's API):
        ``"sigmoid"``, ``"hard_sigmoid"`` (Keras 2: clip(0.2 x + 0.5, 0, 1)),
        ``"keras3_hard_sigmoid"`` (relu6(x + 3) / 6) or
        :class:`~fastlstm.HardSigmoid` ``(alpha, beta)`` (ONNX). See
        :mod:`fastlstm.activations`.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> cell = fastlstm.BasicLSTMCell(8)
    >>> x = np.ones((2, 5, 3), np.float32)
    >>> outputs, state = fastlstm.dynamic_rnn(cell, x, sequence_length=[5, 2])
    >>> outputs.shape, state.h.shape, float(abs(outputs[1, 2:]).max())
    ((2, 5, 8), (2, 8), 0.0)
    """

    def __init__(
        self,
        num_units: int,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: ActivationLike = None,
        name: str | None = None,
        dtype: Any = None,
        *,
        recurrent_activation: RecurrentActivationLike = "sigmoid",
    ) -> None:
        super().__init__(
            num_units, forget_bias, state_is_tuple, activation, name, dtype, recurrent_activation
        )


class LSTMCell(_LSTMBase):
    """TensorFlow 1's ``LSTMCell``: optional peepholes, cell clipping and projection.

    With ``z = [inputs, m] @ kernel + bias`` split into gates (i, j, f, o)::

        c = sigmoid(f + forget_bias + w_f_diag * c_prev) * c_prev
            + sigmoid(i + w_i_diag * c_prev) * activation(j)     # peephole terms if use_peepholes
        c = clip(c, -cell_clip, cell_clip)                         # if cell_clip
        m = sigmoid(o + w_o_diag * c) * activation(c)              # the new, clipped c
        m = clip(m @ projection_kernel, -proj_clip, proj_clip)     # if num_proj (clip if proj_clip)

    ``sigmoid`` stands for ``recurrent_activation``. With ``gate_clip`` (ONNX's
    ``clip``), each input of an activation but the cell state's is clamped to
    ``[-gate_clip, gate_clip]`` first, where onnxruntime's CPU LSTM clamps it:
    the whole pre-activation of i, f and o (bias, ``forget_bias`` and peephole
    terms included) and of j; ``activation(c)`` takes the unclamped ``c``.

    The state is ``(c, m)``: ``c`` has ``num_units`` columns, ``m`` (the output)
    ``num_proj`` when projecting, else ``num_units``.

    Parameters
    ----------
    num_units : int
        Units in the cell (size of ``c``).
    use_peepholes : bool, default False
        Add the diagonal peephole weights ``w_f_diag``, ``w_i_diag``, ``w_o_diag``.
    cell_clip : float, optional
        Clip ``c`` to ``[-cell_clip, cell_clip]`` after each step; must be > 0.
    initializer : callable, optional
        ``initializer(shape, dtype, rng) -> array`` draws the initial value of
        every variable but the bias (kernel, peepholes, projection kernel) when
        the cell is built: ``shape`` is a tuple, ``dtype`` the cell's numpy
        dtype and ``rng`` a :class:`numpy.random.Generator` (seeded by
        ``build(..., seed=)``). The result must have exactly ``shape``.
        Default :func:`glorot_uniform`, as TF. The bias starts at zero.
    num_proj : int, optional
        Project ``m`` to ``num_proj`` columns with ``projection_kernel``
        ``[num_units, num_proj]``.
    proj_clip : float, optional
        Clip the projected ``m`` to ``[-proj_clip, proj_clip]``; must be > 0
        and needs ``num_proj`` (TF ignores it silently without; fastlstm refuses).
    forget_bias : float, default 1.0
        Added to the forget gate at run time (it is not stored in ``bias``).
    state_is_tuple : bool, default True
        State as :class:`LSTMStateTuple` ``(c, m)``; if False, one array
        ``concat([c, m], axis=1)``.
    activation : str, callable or None
        Activation of ``j`` and of ``c``; default tanh. See :mod:`fastlstm.activations`.
    name : str, optional
        A label (used in checkpoints and messages).
    dtype : float32 or float64, optional
        Dtype of the weights; float32 when None.
    recurrent_activation : str or HardSigmoid, default "sigmoid"
        Activation of the gates i, f and o (an extension of TF's API); as
        :class:`BasicLSTMCell`'s.
    gate_clip : float, optional
        ONNX's ``clip``: bound every activation's input to
        ``[-gate_clip, gate_clip]`` (see above; not TF's ``cell_clip``, which
        bounds the cell state); must be > 0. An extension of TF's API.

    Notes
    -----
    TF's deprecated ``num_unit_shards``, ``num_proj_shards`` and ``reuse`` are
    not supported; the arguments after ``proj_clip`` are keyword-only so a TF
    call passing the shards positionally fails loudly instead of misbinding.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> cell = fastlstm.LSTMCell(8, use_peepholes=True, cell_clip=3.0, num_proj=4)
    >>> outputs, state = fastlstm.dynamic_rnn(cell, np.ones((2, 5, 3), np.float32))
    >>> outputs.shape, state.c.shape, state.h.shape, cell.weight_names
    ((2, 5, 4), (2, 8), (2, 4), ('kernel', 'bias', 'w_f_diag', 'w_i_diag', 'w_o_diag', 'projection_kernel'))
    """

    def __init__(
        self,
        num_units: int,
        use_peepholes: bool = False,
        cell_clip: float | None = None,
        initializer: Initializer | None = None,
        num_proj: int | None = None,
        proj_clip: float | None = None,
        *,
        forget_bias: float = 1.0,
        state_is_tuple: bool = True,
        activation: ActivationLike = None,
        name: str | None = None,
        dtype: Any = None,
        recurrent_activation: RecurrentActivationLike = "sigmoid",
        gate_clip: float | None = None,
    ) -> None:
        super().__init__(
            num_units, forget_bias, state_is_tuple, activation, name, dtype, recurrent_activation
        )
        self.use_peepholes = bool(use_peepholes)
        self.cell_clip = check.optional_positive_float(cell_clip, "cell_clip")
        self.gate_clip = check.optional_positive_float(gate_clip, "gate_clip")
        self.num_proj = None if num_proj is None else check.positive_int(num_proj, "num_proj")
        self.proj_clip = check.projection_clip(proj_clip, self.num_proj)
        self._initializer = check.optional_callable(
            initializer, "initializer", "(shape, dtype, rng) -> array"
        )

    @property
    def initializer(self) -> Initializer | None:
        """The initializer given to the constructor (None: :func:`glorot_uniform`)."""
        return self._initializer

    @property
    def _out_depth(self) -> int:
        return self.num_units if self.num_proj is None else self.num_proj

    def _variable_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        shapes = super()._variable_shapes(input_size)
        if self.use_peepholes:
            shapes.update(w_f_diag=(self.num_units,), w_i_diag=(self.num_units,), w_o_diag=(self.num_units,))
        if self.num_proj is not None:
            shapes["projection_kernel"] = (self.num_units, self.num_proj)
        return shapes

    def _kernel_extras(self, variables: dict[str, np.ndarray]) -> dict[str, Any]:
        peepholes = None
        if self.use_peepholes:
            # The kernel reads the peepholes as rows (w_i_diag, w_f_diag, w_o_diag).
            peepholes = np.stack([variables["w_i_diag"], variables["w_f_diag"], variables["w_o_diag"]])
        return {
            "peepholes": peepholes,
            "cell_clip": self.cell_clip,
            "projection": variables.get("projection_kernel"),
            "proj_clip": self.proj_clip,
            "gate_clip": self.gate_clip,
        }

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments except ``initializer`` (it only matters to :meth:`build`).

        ``type(cell)(**cell.get_config())`` is an unbuilt copy; ``activation`` is
        as it was passed and ``dtype`` is a name such as ``"float32"``.
        """
        base = super().get_config()
        return {
            "num_units": base.pop("num_units"),
            "use_peepholes": self.use_peepholes,
            "cell_clip": self.cell_clip,
            "num_proj": self.num_proj,
            "proj_clip": self.proj_clip,
            **base,
            "gate_clip": self.gate_clip,
        }

    @property
    def w_f_diag(self) -> np.ndarray | None:
        """``[num_units]`` forget-gate peephole weights; None without peepholes or before building."""
        return self._variables.get("w_f_diag")

    @property
    def w_i_diag(self) -> np.ndarray | None:
        """``[num_units]`` input-gate peephole weights; None without peepholes or before building."""
        return self._variables.get("w_i_diag")

    @property
    def w_o_diag(self) -> np.ndarray | None:
        """``[num_units]`` output-gate peephole weights; None without peepholes or before building."""
        return self._variables.get("w_o_diag")

    @property
    def projection_kernel(self) -> np.ndarray | None:
        """``[num_units, num_proj]``; None without ``num_proj`` or before building."""
        return self._variables.get("projection_kernel")


class MultiRNNCell(RNNCell):
    """TensorFlow 1's ``MultiRNNCell``: cells stacked, each feeding the next.

    :func:`fastlstm.dynamic_rnn` runs a stack layer by layer: each layer is one
    kernel call over the whole sequence (as fast per layer as a single cell),
    and its outputs are the next layer's inputs. The result is the same as
    TF's step-by-step stack.

    Parameters
    ----------
    cells : list of cells
        Bottom to top; each a distinct :class:`BasicLSTMCell`, :class:`LSTMCell`
        or :class:`MultiRNNCell`, all of one dtype. Layer ``k + 1`` takes
        inputs of depth ``cells[k].output_size`` (it is built for that depth
        on first use if it has no weights yet).
    state_is_tuple : bool, default True
        Only True is supported (False is deprecated in TF): the state is a
        tuple with one state per cell.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> stack = fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(8), fastlstm.LSTMCell(4, num_proj=2)])
    >>> outputs, (state0, state1) = fastlstm.dynamic_rnn(stack, np.ones((3, 5, 6), np.float32))
    >>> outputs.shape, state0.h.shape, state1.h.shape, stack.state_size
    ((3, 5, 2), (3, 8), (3, 2), (LSTMStateTuple(c=8, h=8), LSTMStateTuple(c=4, h=2)))
    """

    def __init__(self, cells: Sequence[RNNCell], state_is_tuple: bool = True) -> None:
        check.stack_state_is_tuple(state_is_tuple)
        check.cell_list(cells, RNNCell)
        labels = [f"cells[{k}]" for k in range(len(cells))]
        self.cells: tuple[RNNCell, ...] = tuple(cells)
        self.state_is_tuple = True
        check.distinct_cells(list(self._leaf_cells()))
        check.same_dtype(list(self.cells), labels)
        check.layer_chain([(label, c.input_size, c.output_size) for label, c in zip(labels, self.cells)])

    @property
    def dtype(self) -> np.dtype:
        """The dtype shared by all the cells."""
        return self.cells[0].dtype

    @property
    def state_size(self) -> tuple:
        """A tuple of the cells' ``state_size``."""
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_size(self) -> int:
        """The top cell's ``output_size``."""
        return self.cells[-1].output_size

    @property
    def input_size(self) -> int | None:
        """The bottom cell's ``input_size`` (None before building)."""
        return self.cells[0].input_size

    @property
    def built(self) -> bool:
        """Whether every cell has its weights."""
        return all(cell.built for cell in self.cells)

    def zero_state(self, batch_size: int, dtype: Any = None) -> tuple:
        """A tuple of the cells' zero states."""
        return tuple(cell.zero_state(batch_size, dtype) for cell in self.cells)

    def build(self, input_size: int, seed: SeedLike = None) -> None:
        """Build every cell, bottom to top, for inputs of depth ``input_size``.

        Parameters
        ----------
        input_size : int
            Depth of the inputs of the bottom cell.
        seed : int or numpy.random.Generator, optional
            Seed (or generator) of the random initialisation, shared by the cells in order.
        """
        rng = np.random.default_rng(seed)
        depth = input_size
        for cell in self.cells:
            cell.build(depth, rng)
            depth = cell.output_size

    def get_weights(self) -> list[np.ndarray]:
        """Every cell's weights, bottom to top, in one flat list (copies)."""
        return [w for cell in self._leaf_cells() for w in cell.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every cell's weights from one flat list, bottom to top (as :meth:`get_weights`).

        Nothing is assigned unless every array is valid and each layer's input
        depth matches the output size of the layer below.

        Raises
        ------
        ValueError
            Wrong number of arrays, wrong shapes, or layers that do not fit together.
        TypeError
            If ``weights`` is not a list or a weight is not real-valued.
        """
        leaves = self._leaf_cells()
        names = tuple(f"layer{k}.{name}" for k, leaf in enumerate(leaves) for name in leaf.weight_names)
        weights = check.weight_list(weights, names, type(self).__name__)
        checked, start, chain = [], 0, []
        for k, leaf in enumerate(leaves):
            stop = start + len(leaf.weight_names)
            values = leaf._checked_weights(weights[start:stop], f"layer{k}.")
            checked.append(values)
            chain.append((f"layer{k}", values[0].shape[0] - leaf.output_size, leaf.output_size))
            start = stop
        check.layer_chain(chain)
        for leaf, values in zip(leaves, checked):
            leaf._assign(values)

    def _leaf_cells(self) -> tuple[_LSTMBase, ...]:
        return tuple(leaf for cell in self.cells for leaf in cell._leaf_cells())

    def _state_dtype(self, state: Any) -> np.dtype | None:
        if not isinstance(state, (tuple, list)) or len(state) != len(self.cells):
            return None
        floats = [d for d in (c._state_dtype(s) for c, s in zip(self.cells, state)) if d is not None]
        return max(floats, key=lambda d: d.itemsize) if floats else None

    def _prepare(
        self, depth: int, batch: int, initial_state: Any, dtype: np.dtype, context: str
    ) -> list[LeafRun]:
        leaves: list[LeafRun] = []
        states = check.stack_states(initial_state, len(self.cells), context)
        for k, (cell, state) in enumerate(zip(self.cells, states)):
            leaves += cell._prepare(depth, batch, state, dtype, f"{context}cells[{k}]: ")
            depth = cell.output_size
        return leaves

    def _pack_final(self, finals: Iterator[tuple[np.ndarray, np.ndarray]]) -> tuple:
        return tuple(cell._pack_final(finals) for cell in self.cells)

    def __repr__(self) -> str:
        return f"MultiRNNCell([{', '.join(repr(cell) for cell in self.cells)}])"
