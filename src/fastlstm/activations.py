"""Activation functions a cell can use for its candidate (``j``) and output.

Pass one of the names below, ``None`` (tanh, TF's default), or a scalar
function compiled with :func:`numba.njit` (or a plain Python function numba can
compile).

The gates i, f and o use the sigmoid, as in TensorFlow, unless a cell is given
another ``recurrent_activation`` (an extension of TF's API, for models from
Keras and ONNX):

======================== ======================================================
``recurrent_activation`` formula
======================== ======================================================
``"sigmoid"``            1 / (1 + exp(-x)) (the default; TF's cells)
``"hard_sigmoid"``       clip(0.2 x + 0.5, 0, 1) (Keras 2, tf.keras)
``"keras3_hard_sigmoid"`` relu6(x + 3) / 6 (Keras 3)
``HardSigmoid(a, b)``    clip(a x + b, 0, 1) (ONNX's HardSigmoid)
======================== ======================================================

The hard sigmoids are computed in the cell's dtype, in exactly these operations
(``HardSigmoid(0.2, 0.5)`` gives the same bits as ``"hard_sigmoid"``).

=============== ==================================================
name            formula
=============== ==================================================
``tanh``        tanh(x)
``relu``        max(x, 0)
``sigmoid``     1 / (1 + exp(-x))
``linear``      x
``softsign``    x / (1 + abs(x))
``elu``         x if x > 0 else exp(x) - 1
``hard_sigmoid`` clip(0.2 x + 0.5, 0, 1) (tf.keras 2 / TF 1)
``relu6``       min(max(x, 0), 6)
``selu``        1.0507 * (x if x > 0 else 1.6733 * (exp(x) - 1))
``swish``       x * sigmoid(x)
=============== ==================================================
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _kernels

__all__ = [
    "ACTIVATIONS",
    "RECURRENT_ACTIVATIONS",
    "Activation",
    "GateActivation",
    "HardSigmoid",
    "resolve_activation",
    "resolve_recurrent_activation",
]

ACTIVATIONS: dict[str, int] = {
    "tanh": _kernels.TANH,
    "relu": _kernels.RELU,
    "sigmoid": _kernels.SIGMOID,
    "linear": _kernels.LINEAR,
    "softsign": _kernels.SOFTSIGN,
    "elu": _kernels.ELU,
    "hard_sigmoid": _kernels.HARD_SIGMOID,
    "relu6": _kernels.RELU6,
    "selu": _kernels.SELU,
    "swish": _kernels.SWISH,
}

ActivationLike = str | Callable[[float], float] | None


@dataclass(frozen=True)
class HardSigmoid:
    """ONNX's ``HardSigmoid(alpha, beta)`` gate activation: ``clip(alpha * x + beta, 0, 1)``.

    Pass it as a cell's ``recurrent_activation``. The defaults are ONNX's (and
    Keras 2's ``hard_sigmoid``).

    Parameters
    ----------
    alpha, beta : float
        Finite slope and offset.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> cell = fastlstm.BasicLSTMCell(4, recurrent_activation=fastlstm.HardSigmoid(0.25, 0.5))
    >>> outputs, state = fastlstm.dynamic_rnn(cell, np.ones((1, 3, 2), np.float32))
    >>> outputs.shape
    (1, 3, 4)
    """

    alpha: float = 0.2
    beta: float = 0.5

    def __post_init__(self) -> None:
        for field in ("alpha", "beta"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(
                    f"HardSigmoid {field} must be a real number, got {type(value).__name__}: {value!r}"
                )
            if not np.isfinite(value):
                raise ValueError(f"HardSigmoid {field} must be finite, got {value!r}")
            object.__setattr__(self, field, float(value))


# Named gate activations: (alpha, beta, top) of min(max(alpha * x + beta, 0), top) / top,
# None for the sigmoid.
RECURRENT_ACTIVATIONS: dict[str, tuple[float, float, float] | None] = {
    "sigmoid": None,
    "hard_sigmoid": (0.2, 0.5, 1.0),
    "keras3_hard_sigmoid": (1.0, 3.0, 6.0),
}

RecurrentActivationLike = str | HardSigmoid


@dataclass(frozen=True)
class GateActivation:
    """A resolved gate activation: the sigmoid, or ``min(max(alpha x + beta, 0), top) / top``."""

    name: str
    hard: bool = False
    alpha: float = 0.0
    beta: float = 0.0
    top: float = 1.0


SIGMOID_GATES = GateActivation("sigmoid")


def resolve_recurrent_activation(value: RecurrentActivationLike) -> GateActivation:
    """Turn a cell's ``recurrent_activation`` argument into what the kernels run.

    Parameters
    ----------
    value : str or HardSigmoid
        A name from :data:`RECURRENT_ACTIVATIONS` or a :class:`HardSigmoid`.

    Returns
    -------
    GateActivation

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything else.
    """
    if isinstance(value, HardSigmoid):
        return GateActivation(
            f"HardSigmoid({value.alpha!r}, {value.beta!r})", True, value.alpha, value.beta, 1.0
        )
    if isinstance(value, str):
        key = value.lower()
        if key not in RECURRENT_ACTIVATIONS:
            raise ValueError(
                f"unknown recurrent_activation {value!r}; expected one of {sorted(RECURRENT_ACTIVATIONS)} "
                f"or fastlstm.HardSigmoid(alpha, beta)"
            )
        params = RECURRENT_ACTIVATIONS[key]
        return SIGMOID_GATES if params is None else GateActivation(key, True, *params)
    raise TypeError(
        f"recurrent_activation must be a name ({sorted(RECURRENT_ACTIVATIONS)}) or a "
        f"fastlstm.HardSigmoid(alpha, beta), got {type(value).__name__}: {value!r}"
    )


@dataclass(frozen=True)
class Activation:
    """A resolved activation: a built-in kernel code, or a compiled user function."""

    name: str
    code: int
    function: Callable[[float], float] | None = None


# The Activation of each user function object, while a cell holds it: every cell built with
# one function shares its compiled function and gate kernel (keyed on the Activation).
_user_activations: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _compile_user_function(function: Callable) -> Callable:
    import numba
    from numba.core.registry import CPUDispatcher

    name = getattr(function, "__name__", repr(function))
    if isinstance(function, CPUDispatcher):
        dispatcher = function
    else:
        try:
            dispatcher = numba.njit(function)
        except Exception as exc:  # numba refuses some callables outright
            raise _not_compilable(name, exc) from exc
    for numeric_type in (numba.float32, numba.float64):
        try:
            dispatcher.compile((numeric_type,))
        except Exception as exc:
            raise _not_compilable(name, exc) from exc
    return dispatcher


def _not_compilable(name: str, cause: Exception) -> TypeError:
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return TypeError(
        f"activation {name!r} cannot be compiled by numba ({first_line}). "
        f"Pass a built-in activation by name instead, e.g. activation='relu' for tf.nn.relu "
        f"(one of {sorted(ACTIVATIONS)}), or pass a scalar function decorated with "
        f"@numba.njit that takes and returns a float."
    )


def resolve_activation(activation: ActivationLike) -> Activation:
    """Turn a cell's ``activation`` argument into what the kernels run.

    Parameters
    ----------
    activation : str, callable or None
        A name from :data:`ACTIVATIONS`, ``None`` for tanh, or a scalar function
        numba can compile.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything else numba cannot compile as ``float -> float``.
    """
    if activation is None:
        return Activation("tanh", _kernels.TANH)
    if isinstance(activation, str):
        key = activation.lower()
        if key not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)} "
                f"or a numba-compiled scalar function"
            )
        return Activation(key, ACTIVATIONS[key])
    if not callable(activation):
        raise TypeError(
            f"activation must be a name, None or a callable, got {type(activation).__name__}: {activation!r}"
        )
    known = _user_activations.get(id(activation))
    # The entry holds the function, so no other object can have its id meanwhile.
    if known is not None and activation in (known.function, getattr(known.function, "py_func", None)):
        return known
    compiled = _compile_user_function(activation)
    name = getattr(activation, "__name__", "custom")
    resolved = Activation(name, _kernels.CUSTOM, compiled)
    _user_activations[id(activation)] = resolved
    return resolved
