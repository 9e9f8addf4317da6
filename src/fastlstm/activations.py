"""Activation functions a cell can use for its candidate (``j``) and output.

Pass one of the names below, ``None`` (tanh, TF's default), or a scalar
function compiled with :func:`numba.njit` (or a plain Python function numba can
compile). The gates themselves always use the sigmoid, as in TensorFlow.

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

from . import _kernels

__all__ = ["ACTIVATIONS", "Activation", "resolve_activation"]

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
