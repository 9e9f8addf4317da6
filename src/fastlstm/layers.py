"""The layers around the recurrent ones in an :class:`~fastlstm.LSTMModel`: an Embedding in front, Dense layers behind.

``LSTMModel([Embedding(E, mask_zero=True), cell, Dense(W, b, "sigmoid")],
return_sequences=False)`` is Keras' ``Embedding -> LSTM -> Dense`` text
classifier; ``tf.nn.embedding_lookup`` before ``dynamic_rnn`` and
``tf.layers.dense`` after it (on ``outputs`` or on ``state.h``) are the same
layers in TF 1. Both hold their weights as read-only copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _validation as check

__all__ = ["DENSE_ACTIVATIONS", "Dense", "Embedding"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) -> inf for very negative x: the sigmoid is 0 there
        return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


# Every activation a cell has by name (the same formulas, see fastlstm.activations), and softmax
# over the last axis; computed by numpy in the layer's dtype.
DENSE_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": _sigmoid,
    "linear": lambda x: x,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "elu": _elu,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0, 1),
    "relu6": lambda x: np.clip(x, 0, 6),
    "selu": lambda x: (
        1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0)))
    ),
    "swish": lambda x: x * _sigmoid(x),
    "softmax": _softmax,
}


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


class Embedding:
    """Token ids ``[batch, time]`` to vectors: row ``id`` of ``embeddings`` (Keras' ``Embedding``).

    Only as ``layers[0]`` of an :class:`~fastlstm.LSTMModel`, which then takes
    integer ids (``[max_time, batch]`` when ``time_major``) instead of vectors.
    An id outside ``[0, vocab)`` raises a ValueError naming its row and step.

    With ``mask_zero=True`` every step whose id is 0 is *masked*, as in Keras,
    wherever it is (post-padding, Keras' default pre-padding, or a 0 inside a
    sequence: the rule is the same, id 0 is never a token): every recurrent
    layer skips it, its state carried through unchanged, and the model's
    outputs at a masked step are Keras' (see :class:`~fastlstm.LSTMModel`).
    Without a ``sequence_length`` the lengths are the numbers of unmasked
    steps; with one, the steps past each length are masked too.

    Parameters
    ----------
    embeddings : array_like, shape ``[vocab, embed_dim]``
        The vectors; copied (read-only) in ``dtype``.
    mask_zero : bool, default False
        Keras' ``mask_zero``: id 0 is padding. Without it id 0 is an ordinary token.
    dtype : float32 or float64, optional
        Default: the array's own if it is one of these, else float32. Must be
        the model's.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> emb = fastlstm.Embedding(np.eye(3, 4, dtype=np.float32), mask_zero=True)
    >>> model = fastlstm.LSTMModel([emb, fastlstm.BasicLSTMCell(2)])
    >>> outputs, (state,) = model(np.array([[0, 0, 1, 2], [1, 2, 0, 0]]))
    >>> outputs.shape, bool(np.allclose(state.h[0], state.h[1]))
    ((2, 4, 2), True)
    """

    __slots__ = ("_embeddings", "_mask_zero", "_table")

    def __init__(self, embeddings: Any, mask_zero: bool = False, dtype: Any = None) -> None:
        # The kernels read _table (writeable arrays are the type they are compiled for; nothing
        # writes to it); users see a read-only view, so a projection kept of it cannot go stale.
        self._table = check.layer_weight(embeddings, 2, "embeddings", dtype)
        self._embeddings = _read_only(self._table)
        self._mask_zero = check.flag(mask_zero, "mask_zero")

    @property
    def embeddings(self) -> np.ndarray:
        """The vectors ``[vocab, embed_dim]`` (read-only)."""
        return self._embeddings

    @property
    def mask_zero(self) -> bool:
        """Whether id 0 is padding (masked)."""
        return self._mask_zero

    @property
    def input_dim(self) -> int:
        """The vocabulary size (Keras' ``input_dim``)."""
        return self._embeddings.shape[0]

    @property
    def output_dim(self) -> int:
        """The depth of the vectors (Keras' ``output_dim``)."""
        return self._embeddings.shape[1]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the vectors."""
        return self._embeddings.dtype

    def get_config(self) -> dict[str, Any]:
        """The settings other than the weights: ``{"mask_zero": ...}``."""
        return {"mask_zero": self._mask_zero}

    def __repr__(self) -> str:
        return f"Embedding(input_dim={self.input_dim}, output_dim={self.output_dim}, mask_zero={self._mask_zero})"


class Dense:
    """``activation(inputs @ kernel + bias)`` over the last axis (Keras' ``Dense``, TF's ``tf.layers.dense``).

    Only after the recurrent layers of an :class:`~fastlstm.LSTMModel`, where
    it runs on every step of the outputs (Keras' ``Dense`` or
    ``TimeDistributed(Dense)`` after ``return_sequences=True``) or, with the
    model's ``return_sequences=False``, on the final output only (Keras'
    default; TF's ``dense(state.h)``). All rows go through one matrix product.

    Parameters
    ----------
    kernel : array_like, shape ``[input_size, units]``
        Keras' layout (``nn.Linear.weight`` transposed); copied (read-only) in ``dtype``.
    bias : array_like, shape ``[units]``, optional
        None: no bias (Keras' ``use_bias=False``).
    activation : str, optional
        One of :data:`DENSE_ACTIVATIONS`: a cell's activations by name (the
        same formulas) and ``"softmax"`` (over the units). None: linear.
    dtype : float32 or float64, optional
        Default: the kernel's own if it is one of these, else float32. Must be
        the model's.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> head = fastlstm.Dense(np.ones((4, 1), np.float32), [0.5], activation="sigmoid")
    >>> model = fastlstm.LSTMModel([fastlstm.BasicLSTMCell(4), head], return_sequences=False)
    >>> outputs, (state,) = model(np.ones((3, 5, 2), np.float32))
    >>> outputs.shape, bool(np.allclose(outputs, 1 / (1 + np.exp(-(state.h.sum(1, keepdims=True) + 0.5)))))
    ((3, 1), True)
    """

    __slots__ = ("_activation", "_bias", "_kernel")

    def __init__(
        self, kernel: Any, bias: Any = None, activation: str | None = None, dtype: Any = None
    ) -> None:
        self._kernel = _read_only(check.layer_weight(kernel, 2, "the Dense kernel", dtype))
        self._bias = (
            None
            if bias is None
            else _read_only(check.layer_weight(bias, 1, "the Dense bias", self._kernel.dtype))
        )
        check.dense_bias(self._bias, self.units)
        self._activation = check.dense_activation(activation, DENSE_ACTIVATIONS)

    @property
    def kernel(self) -> np.ndarray:
        """The kernel ``[input_size, units]`` (read-only)."""
        return self._kernel

    @property
    def bias(self) -> np.ndarray | None:
        """The bias ``[units]`` (read-only), or None."""
        return self._bias

    @property
    def activation(self) -> str:
        """The activation's name (``"linear"`` when none was given)."""
        return self._activation

    @property
    def input_size(self) -> int:
        """Depth of the inputs."""
        return self._kernel.shape[0]

    @property
    def units(self) -> int:
        """Depth of the outputs."""
        return self._kernel.shape[1]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the weights."""
        return self._kernel.dtype

    def get_config(self) -> dict[str, Any]:
        """The settings other than the weights: ``{"activation": ..., "use_bias": ...}``."""
        return {"activation": self._activation, "use_bias": self._bias is not None}

    def _apply(self, x: np.ndarray) -> np.ndarray:
        """``x [..., input_size]`` (C-contiguous, the layer's dtype) to ``[..., units]``: one matmul."""
        y = np.matmul(x.reshape(-1, self.input_size), self._kernel)
        if self._bias is not None:
            y += self._bias
        return DENSE_ACTIVATIONS[self._activation](y).reshape(*x.shape[:-1], self.units)

    def __repr__(self) -> str:
        return (
            f"Dense(input_size={self.input_size}, units={self.units}, activation={self._activation!r}, "
            f"use_bias={self._bias is not None})"
        )
