"""Build an :class:`~fastlstm.LSTMModel` from Keras ``LSTM`` and ``Bidirectional(LSTM)`` layers.

Keras is never imported: files are read by :func:`fastlstm.io.read_keras_weights`
(h5py), and Keras objects are used through ``get_config()``, ``get_weights()``,
``layers``, ``forward_layer`` / ``backward_layer`` and their class names.

A Keras LSTM computes ``z = x @ kernel + h @ recurrent_kernel + bias`` with gate
blocks (i, f, c, o) and adds nothing to the forget gate at run time
(``unit_forget_bias`` only initialises the bias). That is TF's cell with
``kernel = concat([kernel, recurrent_kernel])`` and both it and ``bias``
reordered to (i, j=c, f, o), and ``forget_bias=0.0``; Keras'
``recurrent_activation`` becomes the cell's (``"hard_sigmoid"`` means
``clip(0.2 x + 0.5, 0, 1)`` in Keras 2 / tf.keras and ``relu6(x + 3) / 6`` in
Keras 3, fastlstm's ``"hard_sigmoid"`` and ``"keras3_hard_sigmoid"``).

The default ``recurrent_activation`` of a Keras LSTM, which a weights-only
legacy ``.h5`` file relies on, depends on the Keras that wrote it; the file's
``keras_version`` tells (checked against the Keras and TensorFlow sources):

* ``2.0.0`` - ``2.2.5`` (Keras): ``hard_sigmoid``. Keras 2.3.0 changed it.
* ``2.3.0`` and later (Keras 2.3+, tf.keras of TF 2.3 - 2.5 writes ``2.4.0``,
  keras / tf_keras 2.6+), and ``3.*`` (Keras 3): ``sigmoid``.
* ``-tf`` versions below ``2.2.4-tf`` (tf.keras of TensorFlow 1.4 - 1.12):
  ``hard_sigmoid``.
* ``2.2.4-tf``: refused unless ``recurrent_activation=`` is given. tf.keras
  writes it in TF 1.13 - 1.15 (default ``hard_sigmoid``) *and* in TF 2.0 - 2.1
  (default ``sigmoid``): TF 2.0 and 2.1 import Keras before they enable v2
  behaviour, so Keras still picks its TF 1 version string (read in the
  TensorFlow 1.15.0, 2.0.0, 2.1.0 and 2.2.0 wheels).
* ``2.3.0-tf`` (tf.keras of TF 2.2): ``sigmoid``.

TF 1.x's ``tf.keras.layers.LSTM`` and ``tf.compat.v1.keras.layers.LSTM`` in any
TF 2 default to ``hard_sigmoid``, TF 2's ``tf.keras.layers.LSTM`` to ``sigmoid``;
a model built with the TF 1 layer in TF 2 records a TF 2 version: override it.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..cell import BasicLSTMCell
from ..io import (
    KerasBidirectionalConfig,
    KerasBidirectionalWeights,
    KerasLSTMConfig,
    KerasLSTMWeights,
    read_keras_weights,
)
from ..io._keras_graph import FUNCTIONAL_CLASSES, chain_layers, layer_name
from ..io.keras_h5 import IDENTITY_LAYERS, KerasDenseWeights, KerasEmbeddingWeights
from ..layers import Dense, Embedding
from ..model import LSTMModel
from ._common import default_dtype, float_array, per_cell, to_tf_gate_order

__all__ = ["from_keras"]

# Keras activation name -> fastlstm's name for the same function.
_ACTIVATIONS = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "linear": "linear",
    "softsign": "softsign",
    "elu": "elu",
    "relu6": "relu6",
    "selu": "selu",
    "swish": "swish",
    "silu": "swish",
    "hard_sigmoid": "hard_sigmoid",
}
KerasLayer = KerasLSTMWeights | KerasBidirectionalWeights
KerasAnyLayer = KerasLayer | KerasEmbeddingWeights | KerasDenseWeights
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(.*)$")


class _Source(NamedTuple):
    """The LSTM layers of a Keras source, the Keras version and file format (if known)."""

    layers: list[KerasAnyLayer]
    version: str | None
    file_format: str | None


def from_keras(
    layer_or_model_or_path: Any,
    dtype: Any = None,
    *,
    recurrent_activation: Any = None,
    activation: Any = None,
) -> LSTMModel:
    """Build a model from a Keras LSTM stack: a file, a layer or model object, or ``get_weights()``.

    Parameters
    ----------
    layer_or_model_or_path : str, path-like, Keras layer or model, or list of arrays
        * A ``.keras``, ``.weights.h5``, legacy ``.h5`` (whole model) or legacy
          weights-only ``.h5`` file (needs h5py: ``pip install fastlstm[keras]``).
          A Keras 3 ``.weights.h5`` stores no layer options: Keras' defaults are
          assumed (tanh, sigmoid gates, ``merge_mode="concat"``). A legacy
          weights-only ``.h5`` (``model.save_weights("x.h5")`` in Keras 2.x or
          tf.keras) stores none either: its LSTM layers are found by their
          weights, in file order, with tanh, ``merge_mode="concat"`` and the
          default ``recurrent_activation`` of the Keras version the file records
          (see the module docstring; ``hard_sigmoid`` before Keras 2.3.0 and in
          TensorFlow 1's tf.keras).
        * An ``LSTM`` or ``Bidirectional(LSTM)`` layer, or a Sequential /
          Functional model made of them, optionally with an ``Embedding`` first
          and ``Dense`` / ``TimeDistributed(Dense)`` layers after them
          (``InputLayer`` and layers that are the identity at inference, such as
          ``Dropout``, are skipped; any other layer is refused).
        * Files and model objects alike: a Functional model must be a plain
          chain (one input, one output, each layer called once on the output of
          the one before it; Keras 3's ``not_equal(ids, 0)`` mask node of an
          ``Embedding(mask_zero=True)`` is accepted). Branches, shared layers,
          extra call arguments (``initial_state=``, ``training=True``) are refused
          with the layer named.
        * The ``get_weights()`` of one ``LSTM`` layer, ``[kernel,
          recurrent_kernel, bias]`` (or without ``bias`` for ``use_bias=False``),
          Keras' defaults assumed (tanh, sigmoid gates).
    dtype : float32 or float64, optional
        Dtype of the model; float64 if the weights are float64, else float32.
    recurrent_activation : str, HardSigmoid or list, optional
        The gate activation, overriding what the source says or implies: a
        fastlstm name (``"sigmoid"``, ``"hard_sigmoid"`` = Keras 2 / tf.keras'
        ``clip(0.2 x + 0.5, 0, 1)``, ``"keras3_hard_sigmoid"`` = Keras 3's
        ``relu6(x + 3) / 6``) or a :class:`fastlstm.HardSigmoid`; one value for
        every layer or a list with one per Keras LSTM / Bidirectional layer
        (both directions of a Bidirectional get its value; a ``None`` entry
        keeps what the source says).
    activation : str or list, optional
        The cell activation (a fastlstm activation name), overriding the
        source's; one value or one per layer, like ``recurrent_activation``.

    Returns
    -------
    LSTMModel
        One layer per Keras layer: a :class:`~fastlstm.BasicLSTMCell` with
        ``forget_bias=0.0``, or a ``(cell_fw, cell_bw)`` pair for
        ``Bidirectional``. Its ``outputs`` are the Keras model's when every
        layer has ``return_sequences=True``; with ``return_sequences=False`` on
        the top layer, Keras returns the final output, ``states[-1].h`` (for a
        bidirectional top layer, the concatenation of both directions' ``h``).
        Inputs are batch-major as in Keras (``time_major=True`` for a tf.keras
        layer built with ``time_major=True``). Dropout is not applied
        (inference), and a ``stateful`` layer's state is not carried between
        calls: pass it as ``initial_state``.

    Raises
    ------
    ValueError
        Layers other than LSTM / Bidirectional(LSTM) (GRU, SimpleRNN, Dense, ...;
        in a weights-only file, any layer whose weights are not an LSTM's),
        an activation fastlstm does not have (or Keras 3's ``hard_sigmoid`` as
        the cell activation), a ``recurrent_activation`` other than
        ``"sigmoid"`` and ``"hard_sigmoid"`` (or ``"hard_sigmoid"`` from an
        unknown Keras version), a weights-only file whose Keras version does not
        tell the default ``recurrent_activation`` (``"2.2.4-tf"``, none recorded)
        and no ``recurrent_activation=`` given, ``go_backwards=True`` outside
        ``Bidirectional``, a ``merge_mode`` other than ``"concat"``, a layer with
        ``return_sequences=False`` below another, weights of the wrong shape, or
        an override list of the wrong length. File problems raise
        :class:`fastlstm.io.KerasFileError` (a ValueError).
    TypeError
        If the argument is none of the above.

    Notes
    -----
    Keras 3's ``"hard_sigmoid"`` is ``relu6(x + 3) / 6``; tf.keras (Keras 2)
    and fastlstm's ``"hard_sigmoid"`` are ``clip(0.2 x + 0.5, 0, 1)``. As a
    ``recurrent_activation`` each becomes its own fastlstm gate activation; as
    the cell ``activation``, Keras 3's is refused rather than converted to
    different numbers.

    Examples
    --------
    >>> import numpy as np, fastlstm
    >>> rng = np.random.default_rng(0)
    >>> weights = [rng.uniform(-0.5, 0.5, shape).astype(np.float32)   # keras_lstm.get_weights()
    ...            for shape in [(3, 16), (4, 16), (16,)]]
    >>> model = fastlstm.from_keras(weights)
    >>> model.layers[0].forget_bias, model.input_size, model.output_size
    (0.0, 3, 4)
    >>> model(np.ones((2, 6, 3), np.float32))[0].shape
    (2, 6, 4)
    """
    source = _keras_layers(layer_or_model_or_path)
    embedding, layers, heads = _roles(source.layers)
    arrays = [a for layer in layers for side in _sides(layer) for a in _arrays(side)]
    dtype = default_dtype(dtype, arrays)
    order = "one per Keras LSTM / Bidirectional layer, input first"
    gates = per_cell(recurrent_activation, len(layers), "recurrent_activation", order)
    activations = per_cell(activation, len(layers), "activation", order)
    default_gate = None  # needed only by layers without saved options and without an override
    if any(gate is None and _sides(layer)[0].config is None for gate, layer in zip(gates, layers)):
        default_gate = _default_gate(source)
    built: list[Any] = []
    for k, layer in enumerate(layers):
        top = k == len(layers) - 1
        options = (gates[k], activations[k], source.version, source.file_format)
        if isinstance(layer, KerasLSTMWeights):
            _check_direction(layer, False, f"LSTM {layer.name!r}")
            _check_sequences(layer, top)
            built.append(_cell(layer, options, default_gate, dtype))
            continue
        label = f"Bidirectional {layer.name!r}"
        merge_mode = "concat" if layer.config is None else layer.config.merge_mode
        if merge_mode != "concat":
            raise ValueError(
                f"{label} has merge_mode={merge_mode!r}; fastlstm supports only 'concat' "
                "(outputs [forward, backward] on the last axis)"
            )
        _check_direction(layer.forward, False, f"{label} forward layer")
        _check_direction(layer.backward, True, f"{label} backward layer")
        _check_sequences(layer.forward, top)
        built.append(
            (
                _cell(layer.forward, options, default_gate, dtype),
                _cell(layer.backward, options, default_gate, dtype),
            )
        )
    _check_chain(layers)
    if embedding is None and not heads:
        return LSTMModel(built)
    around: list[Any] = []
    if embedding is not None:
        around.append(Embedding(embedding.embeddings, mask_zero=embedding.mask_zero, dtype=dtype))
    around += built
    for head in heads:
        label = f"Dense {head.name!r}"
        around.append(
            Dense(head.kernel, head.bias, _activation(head.activation, source.version, label, True), dtype)
        )
    top = _sides(layers[-1])[0]
    return_sequences = top.config is None or top.config.return_sequences
    return LSTMModel(around, return_sequences=return_sequences)


def _roles(
    layers: list[KerasAnyLayer],
) -> tuple[KerasEmbeddingWeights | None, list[KerasLayer], list[KerasDenseWeights]]:
    """The Embedding (first, if any), the LSTM layers and the Dense layers after them."""
    embedding = layers[0] if layers and isinstance(layers[0], KerasEmbeddingWeights) else None
    rest = layers[1:] if embedding is not None else layers
    recurrent = [layer for layer in rest if isinstance(layer, (KerasLSTMWeights, KerasBidirectionalWeights))]
    heads = [layer for layer in rest if isinstance(layer, KerasDenseWeights)]
    for k, layer in enumerate(rest):
        if isinstance(layer, KerasEmbeddingWeights):
            raise ValueError(  # noqa: TRY004 - an unsupported network is a ValueError in every converter
                f"Embedding {layer.name!r} is not the first layer; fastlstm takes an Embedding only first"
            )
        later = rest[k + 1 :]
        if isinstance(layer, KerasDenseWeights) and any(not isinstance(x, KerasDenseWeights) for x in later):
            raise ValueError(
                f"Dense {layer.name!r} comes before an LSTM layer; fastlstm takes Dense layers only after "
                "every LSTM layer"
            )
    if not recurrent:
        raise ValueError("the Keras model has no LSTM or Bidirectional(LSTM) layer")
    return embedding, recurrent, heads


# ------------------------------------------------------------------ sources to layers


def _keras_layers(source: Any) -> _Source:
    """The LSTM layers of ``source`` in model order, the Keras version and file format (if known)."""
    if isinstance(source, (str, os.PathLike)):
        model = read_keras_weights(source)
        return _Source(list(model.layers), model.keras_version, model.file_format)
    if isinstance(source, (list, tuple)):
        if any(hasattr(item, "get_weights") for item in source):
            raise TypeError("pass a Keras model or one layer, not a list of layers")
        return _Source([_lstm_weights("lstm", list(source), None, "the weights given")], None, None)
    class_name = type(source).__name__
    if class_name in ("LSTM", "Bidirectional"):
        return _Source([_layer_object(source)], _keras_version(source), None)
    if hasattr(source, "layers") and hasattr(source, "get_config"):
        layers: list[KerasAnyLayer] = []
        for layer in _model_layer_objects(source):
            kind = type(layer).__name__
            recurrent_seen = any(isinstance(x, (KerasLSTMWeights, KerasBidirectionalWeights)) for x in layers)
            if kind in ("LSTM", "Bidirectional"):
                layers.append(_layer_object(layer))
            elif (kind == "Embedding" and not layers) or (
                recurrent_seen
                and (
                    kind == "Dense"
                    or (kind == "TimeDistributed" and type(getattr(layer, "layer", None)).__name__ == "Dense")
                )
            ):
                layers.append(_feedforward_object(layer))
            elif kind in ("Embedding", "Dense", "TimeDistributed"):
                place = "after the first layer" if kind == "Embedding" else "before the LSTM layers"
                raise ValueError(
                    f"{class_name} model: {_label(layer)}: {kind} is not supported {place}; fastlstm converts "
                    "an Embedding first, then LSTM and Bidirectional(LSTM) layers, then Dense and "
                    "TimeDistributed(Dense) layers"
                )
            elif kind not in IDENTITY_LAYERS:
                raise ValueError(_unsupported_layer(layer, f"{class_name} model"))
        if not layers:
            raise ValueError(f"the {class_name} model has no LSTM or Bidirectional(LSTM) layer")
        return _Source(layers, _keras_version(source), None)
    if hasattr(source, "get_weights") and hasattr(source, "get_config"):
        raise ValueError(_unsupported_layer(source, "from_keras"))
    raise TypeError(
        "from_keras takes a Keras file path, an LSTM / Bidirectional(LSTM) layer, a Keras model, "
        f"or a layer's get_weights() list; got {class_name}"
    )


def _model_layer_objects(model: Any) -> list[Any]:
    """The layers of a Sequential model, or of a Functional one that is a plain chain, in data-flow order."""
    class_name = type(model).__name__
    if class_name == "Sequential":
        return list(model.layers)
    if class_name not in FUNCTIONAL_CLASSES:
        raise ValueError(
            f"model class {class_name!r} is not supported; fastlstm converts Sequential models and "
            "Functional models that are a plain chain of layers"
        )
    config = {"class_name": class_name, "config": _as_json(model.get_config())}
    chain = chain_layers(config, f"{class_name} model {getattr(model, 'name', '')!r}", ValueError, ValueError)
    by_name = {layer.name: layer for layer in model.layers}
    missing = [layer_name(entry) for entry in chain if layer_name(entry) not in by_name]
    if missing:
        raise ValueError(f"{class_name} model: its config names layers {missing} that are not in its .layers")
    return [by_name[layer_name(entry)] for entry in chain]


def _as_json(value: Any) -> Any:
    """A ``get_config()`` value as its JSON file form: Keras 3 keeps node arguments in tuples."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(item) for item in value]
    return value


def _label(layer: Any) -> str:
    kind = type(layer).__name__
    name = getattr(layer, "name", None)
    return f"layer {name!r} ({kind})" if isinstance(name, str) else kind


def _unsupported_layer(layer: Any, where: str) -> str:
    kind = type(layer).__name__
    return (
        f"{where}: {_label(layer)}: {kind} is not supported; fastlstm converts LSTM and Bidirectional(LSTM) "
        "layers, with an Embedding before them and Dense or TimeDistributed(Dense) layers after them "
        "(InputLayer and Dropout-like layers are skipped)"
    )


def _keras_version(obj: Any) -> str | None:
    """``__version__`` of the (already imported) package a Keras object's class comes from."""
    package = sys.modules.get(type(obj).__module__.split(".")[0])
    version = getattr(package, "__version__", None)
    return version if isinstance(version, str) else None


def _layer_object(layer: Any) -> KerasLayer:
    """A Keras LSTM or Bidirectional(LSTM) layer object, as the file reader would return it."""
    config = layer.get_config()
    name = config.get("name") or type(layer).__name__
    if type(layer).__name__ == "LSTM":
        return _lstm_weights(name, layer.get_weights(), _lstm_config(config), f"LSTM {name!r}")
    sides = []
    for side in (layer.forward_layer, layer.backward_layer):
        if type(side).__name__ != "LSTM":
            raise ValueError(_unsupported_layer(side, f"Bidirectional {name!r}"))
        side_config = side.get_config()
        side_name = side_config.get("name") or "lstm"
        sides.append(
            _lstm_weights(side_name, side.get_weights(), _lstm_config(side_config), f"LSTM {side_name!r}")
        )
    merge_mode = config.get("merge_mode", "concat")
    return KerasBidirectionalWeights(name, sides[0], sides[1], KerasBidirectionalConfig(merge_mode, config))


def _feedforward_object(layer: Any) -> KerasEmbeddingWeights | KerasDenseWeights:
    """A Keras Embedding, Dense or TimeDistributed(Dense) layer object, as the file reader would return it."""
    name = layer.get_config().get("name") or type(layer).__name__
    kind = type(layer).__name__
    if kind == "Embedding":
        weights = layer.get_weights()
        if len(weights) != 1:
            raise ValueError(f"Embedding {name!r}: got {len(weights)} weight arrays, expected [embeddings]")
        table = float_array(weights[0], f"Embedding {name!r}: embeddings")
        return KerasEmbeddingWeights(name, table, bool(layer.get_config().get("mask_zero", False)))
    dense = layer.layer if kind == "TimeDistributed" else layer
    config = dense.get_config()
    weights = dense.get_weights()
    use_bias = bool(config.get("use_bias", True))
    if len(weights) != 1 + use_bias:
        raise ValueError(f"Dense {name!r}: got {len(weights)} weight arrays, expected {1 + use_bias}")
    arrays = [float_array(w, f"Dense {name!r}: weight {k}") for k, w in enumerate(weights)]
    activation = config.get("activation") or "linear"
    return KerasDenseWeights(
        name, arrays[0], arrays[1] if use_bias else None, activation, kind == "TimeDistributed"
    )


def _lstm_config(raw: dict[str, Any]) -> KerasLSTMConfig:
    """The options of a Keras LSTM ``get_config()`` (Keras' defaults where absent)."""
    return KerasLSTMConfig(
        activation=raw.get("activation", "tanh"),
        recurrent_activation=raw.get("recurrent_activation", "sigmoid"),
        use_bias=bool(raw.get("use_bias", True)),
        unit_forget_bias=bool(raw.get("unit_forget_bias", True)),
        go_backwards=bool(raw.get("go_backwards", False)),
        return_sequences=bool(raw.get("return_sequences", False)),
        return_state=bool(raw.get("return_state", False)),
        stateful=bool(raw.get("stateful", False)),
        time_major=bool(raw.get("time_major", False)),
        raw=raw,
    )


def _lstm_weights(
    name: str, weights: Sequence[Any], config: KerasLSTMConfig | None, label: str
) -> KerasLSTMWeights:
    """Checked ``[kernel, recurrent_kernel(, bias)]`` of one LSTM layer."""
    if len(weights) not in (2, 3):
        raise ValueError(
            f"{label}: got {len(weights)} weight arrays; an LSTM has [kernel, recurrent_kernel, bias] "
            "(or two without bias)" + ("; is the layer built?" if not weights else "")
        )
    kernel, recurrent = (
        float_array(w, f"{label}: {n}") for w, n in zip(weights, ("kernel", "recurrent_kernel"))
    )
    bias = float_array(weights[2], f"{label}: bias") if len(weights) == 3 else None
    if recurrent.ndim != 2 or recurrent.shape[0] == 0 or recurrent.shape[1] != 4 * recurrent.shape[0]:
        raise ValueError(
            f"{label}: recurrent_kernel has shape {recurrent.shape}; expected [units, 4 * units]"
        )
    units = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[0] == 0 or kernel.shape[1] != 4 * units:
        raise ValueError(f"{label}: kernel has shape {kernel.shape}; expected [input_size, {4 * units}]")
    if bias is not None and bias.shape != (4 * units,):
        raise ValueError(f"{label}: bias has shape {bias.shape}; expected ({4 * units},)")
    if config is not None and config.use_bias != (bias is not None):
        raise ValueError(f"{label}: use_bias={config.use_bias} but {len(weights)} weight arrays were given")
    return KerasLSTMWeights(name, kernel, recurrent, bias, config)


# ------------------------------------------------------------------ layers to cells


def _sides(layer: KerasLayer) -> tuple[KerasLSTMWeights, ...]:
    return (layer,) if isinstance(layer, KerasLSTMWeights) else (layer.forward, layer.backward)


def _arrays(layer: KerasLSTMWeights) -> list[np.ndarray]:
    return [a for a in (layer.kernel, layer.recurrent_kernel, layer.bias) if a is not None]


def _check_direction(layer: KerasLSTMWeights, backwards: bool, label: str) -> None:
    if layer.config is None or layer.config.go_backwards == backwards:
        return
    if layer.config.go_backwards:
        raise ValueError(
            f"{label} has go_backwards=True: Keras then returns the outputs in reversed time order, "
            "which fastlstm does not; go_backwards is supported inside Bidirectional only"
        )
    raise ValueError(
        f"{label} has go_backwards=False; a Bidirectional backward layer must have go_backwards=True"
    )


def _check_sequences(layer: KerasLSTMWeights, top: bool) -> None:
    if layer.config is not None and not layer.config.return_sequences and not top:
        raise ValueError(
            f"LSTM {layer.name!r} has return_sequences=False but another layer follows it; fastlstm "
            "passes whole sequences between layers"
        )


def _check_chain(layers: list[KerasLayer]) -> None:
    """Each layer's input depth is the output depth of the layer below (concat for Bidirectional)."""
    for below, layer in itertools.pairwise(layers):
        out = sum(side.units for side in _sides(below))
        depth = _sides(layer)[0].input_size
        if depth != out:
            assumed = (
                " (merge_mode 'concat' was assumed: the file stores no layer options)"
                if isinstance(below, KerasBidirectionalWeights) and below.config is None
                else ""
            )
            raise ValueError(
                f"layer {layer.name!r} takes inputs of depth {depth} but the layer below, "
                f"{below.name!r}, outputs {out}{assumed}"
            )


def _activation(name: Any, version: str | None, label: str, dense: bool = False) -> str:
    if dense and name == "softmax":
        return "softmax"
    if name == "hard_sigmoid" and not (version or "").startswith("2."):
        raise ValueError(
            f"{label}: activation 'hard_sigmoid' from Keras {version or '3 (or an unknown version)'} is "
            "relu6(x + 3) / 6, not the clip(0.2 x + 0.5, 0, 1) of tf.keras that fastlstm implements; "
            "only tf.keras (Keras 2) models with hard_sigmoid can be converted"
        )
    if not isinstance(name, str) or name not in _ACTIVATIONS:
        raise ValueError(
            f"{label}: activation {name!r} is not supported; fastlstm has the Keras activations "
            f"{sorted(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[name]


def _keras_generation(version: str | None, file_format: str | None) -> int | None:
    """2 for Keras 2 / tf.keras, 3 for Keras 3, None when unknown."""
    if version is not None:
        match = _VERSION.match(version)
        major = int(match[1]) if match else None
        return 2 if major in (1, 2) else 3 if major == 3 else None
    return 3 if file_format in ("keras", "weights_h5") else None


def _default_gate(source: _Source) -> str:
    """The ``recurrent_activation`` Keras' LSTM defaults to, for layers whose options are not saved.

    Only a legacy weights-only ``.h5`` depends on the version (see the module
    docstring); a Keras 3 ``.weights.h5`` and ``get_weights()`` lists get Keras 3's
    default, sigmoid.
    """
    if source.file_format != "legacy_weights_h5":
        return "sigmoid"
    version = source.version
    fix = "pass recurrent_activation='hard_sigmoid' or 'sigmoid' to from_keras"
    where = "the weights-only .h5 file holds no layer options and"
    if version is None:
        raise ValueError(
            f"{where} records no keras_version, so the LSTMs' default recurrent_activation is unknown; {fix}"
        )
    match = _VERSION.match(version)
    number = tuple(int(part) for part in match.groups()[:3]) if match else None
    if match is not None and match[4] == "-tf":  # tf.keras inside TensorFlow 1.4 to 2.2
        if number < (2, 2, 4):
            return "hard_sigmoid"  # TF 1.4 - 1.12 (TF 2.0 already writes 2.2.4-tf)
        if number == (2, 3, 0):
            return "sigmoid"  # TF 2.2
        if number == (2, 2, 4):
            raise ValueError(
                f"{where} records keras_version '2.2.4-tf', which tf.keras writes both in TensorFlow 1.13 - "
                "1.15 (LSTM default recurrent_activation 'hard_sigmoid') and in TensorFlow 2.0 - 2.1 "
                "(default 'sigmoid'); pass recurrent_activation='hard_sigmoid' (TF 1.x) or 'sigmoid' "
                "(TF 2.x) to from_keras"
            )
    elif number is not None and number[0] == 2:
        return "hard_sigmoid" if number < (2, 3, 0) else "sigmoid"  # Keras 2.3.0 changed it
    elif number is not None and number[0] == 3:
        return "sigmoid"
    raise ValueError(
        f"{where} records keras_version {version!r}, whose LSTM default recurrent_activation is not known "
        f"here; {fix}"
    )


def _gate(name: Any, version: str | None, file_format: str | None, label: str) -> str:
    """fastlstm's gate activation for a saved Keras ``recurrent_activation``."""
    if name == "sigmoid":
        return "sigmoid"
    if name == "hard_sigmoid":
        generation = _keras_generation(version, file_format)
        if generation == 2:
            return "hard_sigmoid"
        if generation == 3:
            return "keras3_hard_sigmoid"
        raise ValueError(
            f"{label}: recurrent_activation 'hard_sigmoid' is not supported when the Keras version is "
            f"unknown ({version!r}): Keras 3's is relu6(x + 3) / 6, Keras 2's (tf.keras) clip(0.2 x + 0.5, 0, 1); "
            "pass recurrent_activation='keras3_hard_sigmoid' or 'hard_sigmoid' to from_keras"
        )
    raise ValueError(
        f"{label}: recurrent_activation {name!r} is not supported; fastlstm's gates use 'sigmoid' or "
        "'hard_sigmoid' (Keras 2's or Keras 3's)"
    )


def _cell(
    layer: KerasLSTMWeights,
    options: tuple[Any, Any, str | None, str | None],
    default_gate: str | None,
    dtype: Any,
) -> BasicLSTMCell:
    """The cell of one Keras LSTM; ``options`` = (gate override, activation override, version, format)."""
    gate, activation, version, file_format = options
    label = f"LSTM {layer.name!r}"
    if layer.config is not None:
        if gate is None:
            gate = _gate(layer.config.recurrent_activation, version, file_format, label)
        if activation is None:
            activation = _activation(layer.config.activation, version, label)
    gate = default_gate if gate is None else gate
    activation = "tanh" if activation is None else activation
    units = layer.units
    bias = np.zeros(4 * units, layer.kernel.dtype) if layer.bias is None else layer.bias
    cell = BasicLSTMCell(
        units,
        forget_bias=0.0,
        activation=activation,
        name=layer.name,
        dtype=dtype,
        recurrent_activation=gate,
    )
    cell.set_weights(
        [to_tf_gate_order(np.concatenate([layer.kernel, layer.recurrent_kernel])), to_tf_gate_order(bias)]
    )
    return cell
