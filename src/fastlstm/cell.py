"""LSTM cells with TensorFlow 1's ``tf.nn.rnn_cell`` API.

A cell owns its weights (``kernel`` with gate columns in TF's order i, j, f, o,
and ``bias``) and knows how to run itself over a whole batch of sequences;
:func:`fastlstm.dynamic_rnn` is the usual way to do that.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Sequence

import numpy as np

from . import _validation as check
from ._runner import LayerWeights, run_layer
from .activations import ActivationLike, resolve_activation

__all__ = ["LSTMStateTuple", "BasicLSTMCell"]


class LSTMStateTuple(namedtuple("LSTMStateTuple", ("c", "h"))):
    """The state of an LSTM cell: ``c`` (cell state) and ``h`` (output), in that order.

    Same as ``tf.nn.rnn_cell.LSTMStateTuple``.
    """

    __slots__ = ()

    @property
    def dtype(self) -> np.dtype:
        """The dtype shared by ``c`` and ``h``."""
        c, h = self
        if np.asarray(c).dtype != np.asarray(h).dtype:
            raise TypeError(f"inconsistent internal state: {np.asarray(c).dtype} vs {np.asarray(h).dtype}")
        return np.asarray(c).dtype


class BasicLSTMCell:
    """TensorFlow 1's ``BasicLSTMCell``: an LSTM without peepholes or projection.

    ``z = [inputs, h] @ kernel + bias`` split into gates (i, j, f, o);
    ``new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * activation(j)``;
    ``new_h = activation(new_c) * sigmoid(o)``.

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
    ) -> None:
        self.num_units = check.positive_int(num_units, "num_units")
        self.forget_bias = _finite_float(forget_bias, "forget_bias")
        self.state_is_tuple = bool(state_is_tuple)
        self.activation = activation
        self._activation = resolve_activation(activation)
        self.name = name
        self.dtype = np.dtype(np.float32) if dtype is None else check.float_dtype(dtype)
        self._kernel: np.ndarray | None = None
        self._bias: np.ndarray | None = None
        self._per_dtype: dict[np.dtype, LayerWeights] = {}

    # -- weights -------------------------------------------------------------------
    @property
    def built(self) -> bool:
        """Whether the weights exist (after :meth:`build`, :meth:`set_weights` or a first run)."""
        return self._kernel is not None

    @property
    def input_size(self) -> int | None:
        """Depth of the inputs the weights were made for; None before building."""
        return None if self._kernel is None else self._kernel.shape[0] - self.num_units

    @property
    def kernel(self) -> np.ndarray | None:
        """``[input_size + num_units, 4 * num_units]``, gate columns (i, j, f, o)."""
        return self._kernel

    @property
    def bias(self) -> np.ndarray | None:
        """``[4 * num_units]``, gate blocks (i, j, f, o); ``forget_bias`` is not in it."""
        return self._bias

    def build(self, input_size: int, seed: int | None = None) -> None:
        """Create the weights for inputs of depth ``input_size``.

        ``kernel`` is drawn glorot-uniform (TF's default), ``bias`` is zeros.

        Parameters
        ----------
        input_size : int
            Depth of the inputs.
        seed : int, optional
            Seed of the random initialisation.
        """
        depth = check.non_negative_int(input_size, "input_size")
        rows, cols = depth + self.num_units, 4 * self.num_units
        limit = np.sqrt(6.0 / (rows + cols))
        rng = np.random.default_rng(seed)
        self._set(
            rng.uniform(-limit, limit, size=(rows, cols)).astype(self.dtype),
            np.zeros(cols, self.dtype),
        )

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` (copies); ``[]`` before the cell is built."""
        if self._kernel is None:
            return []
        return [self._kernel.copy(), self._bias.copy()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set ``[kernel, bias]``; the input size is taken from the kernel's rows.

        Raises
        ------
        ValueError
            If the list or the shapes are wrong.
        TypeError
            If a weight is not real-valued.
        """
        if len(weights) != 2:
            raise ValueError(f"BasicLSTMCell.set_weights expects [kernel, bias], got {len(weights)} arrays")
        kernel = check.real_array(weights[0], "kernel")
        width = 4 * self.num_units
        if kernel.ndim != 2 or kernel.shape[1] != width or kernel.shape[0] < self.num_units:
            raise ValueError(
                f"kernel must have shape [input_size + {self.num_units}, {width}], got {kernel.shape}"
            )
        self._set(
            check.weight(kernel, kernel.shape, "kernel", self.dtype),
            check.weight(weights[1], (width,), "bias", self.dtype),
        )

    def _set(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        self._kernel, self._bias = kernel, bias
        self._per_dtype.clear()

    def _ensure_built(self, input_size: int) -> None:
        if self._kernel is None:
            self.build(input_size)
        elif self.input_size != input_size:
            raise ValueError(
                f"inputs have depth {input_size} but the cell was built for depth {self.input_size}"
            )

    def _weights(self, dtype: np.dtype) -> LayerWeights:
        if dtype not in self._per_dtype:
            self._per_dtype[dtype] = LayerWeights(
                kernel=np.ascontiguousarray(self._kernel, dtype=dtype),
                bias=np.ascontiguousarray(self._bias, dtype=dtype),
                forget_bias=self.forget_bias,
                activation=self._activation,
            )
        return self._per_dtype[dtype]

    # -- state -----------------------------------------------------------------------
    @property
    def state_size(self) -> LSTMStateTuple | int:
        """``LSTMStateTuple(num_units, num_units)``, or ``2 * num_units`` when not a tuple."""
        if self.state_is_tuple:
            return LSTMStateTuple(self.num_units, self.num_units)
        return 2 * self.num_units

    @property
    def output_size(self) -> int:
        """Depth of the outputs: ``num_units``."""
        return self.num_units

    def zero_state(self, batch_size: int, dtype: Any = None) -> LSTMStateTuple | np.ndarray:
        """An all-zero state for ``batch_size`` rows, in ``dtype`` (the cell's by default)."""
        batch = check.non_negative_int(batch_size, "batch_size")
        dtype = self.dtype if dtype is None else check.float_dtype(dtype)
        zeros = np.zeros((batch, self.num_units), dtype)
        return self._pack_state(zeros, zeros.copy())

    def _pack_state(self, c: np.ndarray, h: np.ndarray) -> LSTMStateTuple | np.ndarray:
        if self.state_is_tuple:
            return LSTMStateTuple(c, h)
        return np.concatenate([c, h], axis=1)

    def _state_arrays(self, state: Any, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``(c, h)`` real arrays from a user's state (dtype not yet changed)."""
        units = self.num_units
        if self.state_is_tuple:
            if isinstance(state, np.ndarray) or not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(
                    f"state must be an LSTMStateTuple (c, h) of two [{batch}, {units}] arrays "
                    f"(state_is_tuple=True), got {type(state).__name__}"
                )
            return (
                check.state_part(state[0], batch, units, "initial state c"),
                check.state_part(state[1], batch, units, "initial state h"),
            )
        joined = check.state_part(state, batch, 2 * units, "state (concat of c and h)")
        return joined[:, :units], joined[:, units:]

    @staticmethod
    def _state_dtype(state: Any) -> np.dtype | None:
        """The float dtype of a user's state, if it has one."""
        parts = state if isinstance(state, (tuple, list)) else (state,)
        dtypes = {np.asarray(p).dtype for p in parts}
        floats = [d for d in dtypes if d in check.SUPPORTED_DTYPES]
        return max(floats, key=lambda d: d.itemsize) if floats else None

    # -- running ---------------------------------------------------------------------
    def _run_sequence(
        self,
        x: np.ndarray,
        lengths: np.ndarray,
        initial_state: Any,
        time_major: bool,
        dtype: np.dtype,
        reverse: bool = False,
    ) -> tuple[np.ndarray, LSTMStateTuple | np.ndarray]:
        """Run the cell over validated, kernel-ready ``x``; used by the rnn drivers."""
        batch = x.shape[1] if time_major else x.shape[0]
        self._ensure_built(x.shape[2])
        if initial_state is None:
            c0 = np.zeros((batch, self.num_units), dtype)
            h0 = np.zeros((batch, self.num_units), dtype)
        else:
            c_in, h_in = self._state_arrays(initial_state, batch)
            c0 = check.as_kernel_array(c_in, dtype)
            h0 = check.as_kernel_array(h_in, dtype)
        outputs, c, h = run_layer(self._weights(dtype), x, lengths, c0, h0, time_major, reverse)
        return outputs, self._pack_state(c, h)

    def __call__(self, inputs: Any, state: Any) -> tuple[np.ndarray, LSTMStateTuple | np.ndarray]:
        """One time step: ``(output, new_state)`` for ``inputs`` ``[batch, input_size]``.

        The computation dtype is the state's (as in TF, where both must agree).
        """
        x = check.real_array(inputs, "inputs")
        if x.ndim != 2:
            raise ValueError(f"inputs to a cell step must be 2-D [batch, input_size], got shape {x.shape}")
        batch = x.shape[0]
        self._state_arrays(state, batch)
        dtype = self._state_dtype(state) or self.dtype
        x3 = check.as_kernel_array(x[:, None, :], dtype)
        lengths = np.ones(batch, dtype=np.int64)
        outputs, new_state = self._run_sequence(x3, lengths, state, False, dtype)
        return outputs[:, 0, :], new_state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_units={self.num_units}, forget_bias={self.forget_bias}, "
            f"state_is_tuple={self.state_is_tuple}, activation={self._activation.name!r}, "
            f"name={self.name!r}, dtype={self.dtype.name!r})"
        )


def _finite_float(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a real number, got {value!r}") from exc
    if not np.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number
