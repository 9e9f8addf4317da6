"""Read LSTM weights from Keras files, without Keras or TensorFlow.

Four formats, recognised by their content rather than their file name:

* Keras 3 ``.keras`` (``model.save``): a zip of ``config.json`` (the model's layers
  and options), ``metadata.json`` (the Keras version) and ``model.weights.h5``.
* Keras 3 ``.weights.h5`` (``model.save_weights``): HDF5 with the weights only. Its
  groups are not named after the layers: ``layers/lstm``, ``layers/lstm_1``, ...,
  ``layers/bidirectional`` are the snake-case class name plus a per-class counter,
  and the weights are ``<group>/cell/vars/0`` (kernel), ``/1`` (recurrent kernel)
  and ``/2`` (bias); Bidirectional has ``forward_layer/`` and ``backward_layer/``.
  The file stores no layer order (HDF5 lists groups alphabetically), so the layers
  are put in the order Keras wrote them (their HDF5 object addresses), checked
  against the per-class counters. The layer options are unknown (``config=None``).
* Legacy tf.keras ``.h5`` (``model.save(..., save_format="h5")``): HDF5 with the
  model config as JSON in the root attribute ``model_config`` and the weights under
  ``model_weights/<layer name>/``, listed by the ``layer_names`` and
  ``weight_names`` attributes.
* Legacy weights-only ``.h5`` (``model.save_weights("x.h5")`` in Keras 2.x and
  tf.keras): the same layer groups at the root, the root attributes
  ``layer_names``, ``keras_version`` and ``backend``, and no config. The layers
  are identified by their weights, in ``layer_names`` order: an LSTM holds
  ``.../kernel:0`` ``[input, 4u]``, ``.../recurrent_kernel:0`` ``[u, 4u]`` and
  (unless ``use_bias=False``) ``.../bias:0`` ``[4u]``; a Bidirectional(LSTM) holds
  two such sets under ``forward_<name>/`` and ``backward_<name>/``. Layers without
  weights are skipped (the file cannot tell an ``InputLayer`` or ``Dropout`` from
  any other layer without weights); a layer with any other weights is refused.
  The layer options are unknown (``config=None``); ``keras_version`` tells which
  defaults applied (see :func:`fastlstm.from_keras`).

The models read are Sequential models, and Functional models that are a plain
chain of layers (see :mod:`fastlstm.io._keras_graph`), made of ``LSTM`` and
``Bidirectional(LSTM)`` layers, optionally with an ``Embedding`` first and
``Dense`` / ``TimeDistributed(Dense)`` layers after them (the weights-only formats:
LSTM layers only). ``InputLayer`` and layers that do nothing at inference
(dropout, noise) are skipped; any other layer (``GRU``, ``SimpleRNN``,
``ConvLSTM*``, a ``Dense`` in front, ...) is refused with
:class:`UnsupportedLayerError` naming it. Weights keep **Keras' gate
order (i, f, c, o)** (TensorFlow 1 cells use (i, j, f, o) with j the candidate;
converting is the caller's job). A truncated, corrupted or malformed file raises
:class:`KerasFileError` (a ``ValueError``) naming the file and the problem.

The HDF5 formats need ``h5py`` (``pip install fastlstm[keras]``). Only hard links
are followed and only plain, uncompressed datasets stored inside the file are
read, so a crafted file can neither point the reader at other files nor make it
allocate more than the file holds. Zip members are read into memory with a size
limit; nothing is extracted to disk. libhdf5 itself (2.0.0 in h5py 3.16) crashes
or hangs on some damaged files while decoding variable-length strings, which all
Keras attributes are; so before h5py sees a file, its global heaps are walked and
checked, and every string attribute's stored type and size are checked before it
is decoded (see ``tests/fuzz_corpus/keras`` for files that crash libhdf5 otherwise).
Those format-independent checks live in :mod:`fastlstm.io._hdf5_scan`; this module
parses Keras' layouts.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from ._hdf5_scan import HDF5_SIGNATURE, HDF5Reader, check_global_heaps, translated_errors
from ._keras_graph import chain_layers

__all__ = [
    "GATE_ORDER",
    "IDENTITY_LAYERS",
    "KerasBidirectionalConfig",
    "KerasBidirectionalWeights",
    "KerasFileError",
    "KerasLSTMConfig",
    "KerasLSTMWeights",
    "KerasModelWeights",
    "UnsupportedLayerError",
    "read_keras_weights",
]

GATE_ORDER = ("i", "f", "c", "o")
"""Column blocks of ``kernel``, ``recurrent_kernel`` and ``bias``: Keras' gate order."""

MAX_JSON_BYTES = 16 * 2**20
"""Largest ``config.json`` / ``metadata.json`` read from a ``.keras`` zip."""
MAX_WEIGHTS_BYTES = 2**31
"""Largest ``model.weights.h5`` read from a ``.keras`` zip (it is held in memory)."""

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
IDENTITY_LAYERS = frozenset(
    {
        "InputLayer",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
"""Keras layer classes that are the identity at inference (they hold no weights): skipped."""
_WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")
_GROUP_NAME = re.compile(r"^(?P<kind>.*?)(?:_(?P<counter>\d+))?$")


class KerasFileError(ValueError):
    """A Keras file is damaged, malformed or not in a format this reader knows.

    The message names the file and what is wrong with it.
    """


class UnsupportedLayerError(KerasFileError):
    """The model holds a layer (or a layer option) that fastlstm cannot read, such as a GRU."""


@dataclass(frozen=True, eq=False)
class KerasLSTMConfig:
    """The options of a Keras ``LSTM`` layer, as saved (Keras defaults where absent).

    Attributes
    ----------
    activation, recurrent_activation : str
        Activation names, e.g. ``"tanh"`` and ``"sigmoid"``. Note that Keras 3's
        ``"hard_sigmoid"`` is ``relu6(x + 3) / 6`` while tf.keras' is
        ``clip(0.2 x + 0.5, 0, 1)``: see :attr:`KerasModelWeights.keras_version`.
    use_bias : bool
        Whether the layer has a bias (``bias`` is None otherwise).
    unit_forget_bias : bool
        Informational: it only affects the bias *initialiser*; the stored bias is
        the whole bias (Keras adds nothing to the forget gate at run time).
    go_backwards, return_sequences, return_state, stateful : bool
        As in Keras.
    time_major : bool
        tf.keras only; always False for Keras 3.
    raw : Mapping
        The layer's whole ``config`` dict as saved (initialisers, dropout, ...).
    """

    activation: str
    recurrent_activation: str
    use_bias: bool
    unit_forget_bias: bool
    go_backwards: bool
    return_sequences: bool
    return_state: bool
    stateful: bool
    time_major: bool
    raw: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class KerasLSTMWeights:
    """The weights of one Keras ``LSTM`` layer, gate blocks in Keras' order (i, f, c, o).

    Attributes
    ----------
    name : str
        The Keras layer name (``layer.name``), e.g. ``"lstm"`` or ``"forward_lstm"``.
    kernel : numpy.ndarray
        Input weights, shape ``[input_size, 4 * units]``.
    recurrent_kernel : numpy.ndarray
        Recurrent weights, shape ``[units, 4 * units]``.
    bias : numpy.ndarray or None
        Shape ``[4 * units]``; None when the layer has ``use_bias=False``.
    config : KerasLSTMConfig or None
        The layer options; None for a ``.weights.h5`` file, which stores none.

    All arrays share one floating dtype (as stored, usually float32), are
    C-contiguous, writable and in native byte order.
    """

    name: str
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    config: KerasLSTMConfig | None

    @property
    def units(self) -> int:
        """Number of units (size of the state ``c`` and output ``h``)."""
        return int(self.recurrent_kernel.shape[0])

    @property
    def input_size(self) -> int:
        """Depth of the layer's input."""
        return int(self.kernel.shape[0])


@dataclass(frozen=True, eq=False)
class KerasBidirectionalConfig:
    """The options of a Keras ``Bidirectional`` wrapper.

    Attributes
    ----------
    merge_mode : {"concat", "sum", "mul", "ave"} or None
        How the two directions' outputs are combined (None: returned separately).
    raw : Mapping
        The wrapper's whole ``config`` dict as saved.
    """

    merge_mode: str | None
    raw: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class KerasBidirectionalWeights:
    """A Keras ``Bidirectional(LSTM)`` layer: two LSTMs over the same input.

    Attributes
    ----------
    name : str
        The wrapper's layer name, e.g. ``"bidirectional"``.
    forward, backward : KerasLSTMWeights
        The two directions (for ``backward``, Keras runs the sequence reversed and
        its config has ``go_backwards=True``).
    config : KerasBidirectionalConfig or None
        None for a ``.weights.h5`` file.
    """

    name: str
    forward: KerasLSTMWeights
    backward: KerasLSTMWeights
    config: KerasBidirectionalConfig | None


@dataclass(frozen=True, eq=False)
class KerasEmbeddingWeights:
    """A Keras ``Embedding`` layer (only as the model's first layer with weights).

    Attributes
    ----------
    name : str
        The Keras layer name.
    embeddings : numpy.ndarray
        Shape ``[input_dim, output_dim]``.
    mask_zero : bool
        Keras' ``mask_zero``: id 0 is padding, masked in the layers after it.
    """

    name: str
    embeddings: np.ndarray
    mask_zero: bool


@dataclass(frozen=True, eq=False)
class KerasDenseWeights:
    """A Keras ``Dense`` layer, or ``TimeDistributed(Dense)``, after the recurrent layers.

    Attributes
    ----------
    name : str
        The Keras layer name (the wrapper's for ``TimeDistributed``).
    kernel : numpy.ndarray
        Shape ``[input_size, units]``.
    bias : numpy.ndarray or None
        Shape ``[units]``; None for ``use_bias=False``.
    activation : str
        The activation's name as saved (``"linear"`` when none).
    time_distributed : bool
        Whether it was wrapped in ``TimeDistributed`` (the same numbers on 3-D inputs).
    """

    name: str
    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str
    time_distributed: bool


KerasLayerWeights = KerasLSTMWeights | KerasBidirectionalWeights | KerasEmbeddingWeights | KerasDenseWeights


@dataclass(frozen=True, eq=False)
class KerasModelWeights:
    """What :func:`read_keras_weights` found in a Keras file.

    Attributes
    ----------
    path : str
        The file read.
    file_format : {"keras", "weights_h5", "legacy_h5", "legacy_weights_h5"}
        Keras 3 ``.keras`` zip, Keras 3 ``.weights.h5``, legacy tf.keras ``.h5``
        (whole model), or legacy weights-only ``.h5`` (Keras 2 / tf.keras
        ``model.save_weights``).
    keras_version : str or None
        The Keras version that wrote the file (None for ``.weights.h5``, which does
        not record it). Versions ``3.*`` are Keras 3, ``2.*`` Keras 2 or tf.keras
        (tf.keras in TensorFlow up to 2.2 appends ``-tf``, e.g. ``"2.2.4-tf"``).
    layers : tuple of KerasLSTMWeights, KerasBidirectionalWeights, KerasEmbeddingWeights, KerasDenseWeights
        The layers in model order (input first): an Embedding first, if any,
        then the LSTM layers, then any Dense layers (files with a model config
        only: a weights-only file holds only LSTM layers).
    """

    path: str
    file_format: Literal["keras", "weights_h5", "legacy_h5", "legacy_weights_h5"]
    keras_version: str | None
    layers: tuple[KerasLayerWeights, ...]


def read_keras_weights(path: str | os.PathLike[str]) -> KerasModelWeights:
    """Read the LSTM layers of a Keras ``.keras``, ``.weights.h5`` or legacy (whole-model or weights-only) ``.h5``.

    Parameters
    ----------
    path : str or path-like
        The file; its format is recognised from its content.

    Returns
    -------
    KerasModelWeights
        ``layers`` holds one :class:`KerasLSTMWeights` per ``LSTM`` layer and one
        :class:`KerasBidirectionalWeights` per ``Bidirectional(LSTM)``, in model
        order, with kernels in Keras' gate order (i, f, c, o).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` does not exist or is a directory.
    ImportError
        If the file is HDF5 (or a ``.keras`` zip, which holds HDF5) and h5py is
        not installed.
    UnsupportedLayerError
        If the model holds a layer other than ``LSTM`` / ``Bidirectional(LSTM)``
        (besides ``InputLayer`` and dropout/noise layers) or is not Sequential;
        in a weights-only file, a layer whose weights are not an LSTM's.
    KerasFileError
        If the file is truncated, corrupted, malformed, or its weights do not fit
        its config; the message names the file.

    Examples
    --------
    >>> from fastlstm.io import read_keras_weights
    >>> model = read_keras_weights("tests/golden/keras/stacked.keras")  # doctest: +SKIP
    >>> [(layer.name, layer.kernel.shape) for layer in model.layers]  # doctest: +SKIP
    [('lstm', (3, 20)), ('lstm_1', (5, 16))]
    """
    path_str = os.fsdecode(os.fspath(path))
    if os.path.isdir(path_str):
        raise IsADirectoryError(
            f"{path_str} is a directory; pass a .keras, .weights.h5 or .h5 file (for an unzipped "
            "Keras 3 model directory, zip it back into a .keras file)"
        )
    if not os.path.isfile(path_str):
        raise FileNotFoundError(f"Keras file {path_str} does not exist")
    with open(path_str, "rb") as file:
        head = file.read(len(HDF5_SIGNATURE))
    if head.startswith(b"PK"):
        return _read_keras_zip(path_str)
    if head == HDF5_SIGNATURE:
        h5py = _import_h5py()
        size = os.path.getsize(path_str)
        with open(path_str, "rb") as file:
            check_global_heaps(file, size, path_str, KerasFileError)
        with translated_errors(path_str, KerasFileError), h5py.File(path_str, "r") as root:
            return _read_hdf5(HDF5Reader(h5py, size, KerasFileError), root, path_str)
    raise KerasFileError(
        f"{path_str}: neither a .keras zip nor an HDF5 file (it starts with {head!r}); "
        "it is truncated, corrupted or not a Keras file"
    )


# ---------------------------------------------------------------------- file formats


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "reading Keras weights (HDF5) needs the optional dependency h5py: pip install fastlstm[keras]"
        ) from exc
    return h5py


def _read_keras_zip(path: str) -> KerasModelWeights:
    """A Keras 3 ``.keras`` zip: config from ``config.json``, weights from ``model.weights.h5``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise KerasFileError(
                    f"{path}: a .keras zip must hold config.json and model.weights.h5; it holds "
                    f"{sorted(names)[:10]} (sharded or non-HDF5 weights are not supported)"
                )
            config = _parse_json(
                _zip_member(archive, "config.json", MAX_JSON_BYTES, path), f"{path}: config.json"
            )
            metadata = (
                _parse_json(
                    _zip_member(archive, "metadata.json", MAX_JSON_BYTES, path), f"{path}: metadata.json"
                )
                if "metadata.json" in names
                else {}
            )
            weights = _zip_member(archive, "model.weights.h5", MAX_WEIGHTS_BYTES, path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error, NotImplementedError,
            RuntimeError) as exc:  # fmt: skip
        raise KerasFileError(f"{path}: cannot read the zip archive, the file is damaged ({exc})") from exc

    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    specs = _model_layers(config, f"{path}: config.json", legacy=False)
    hdf5 = HDF5Reader(_import_h5py(), len(weights), KerasFileError)
    where = f"{path}: model.weights.h5"
    check_global_heaps(io.BytesIO(weights), len(weights), where, KerasFileError)
    with translated_errors(where, KerasFileError), hdf5.h5py.File(io.BytesIO(weights), "r") as root:
        layers_group = hdf5.child(root, "layers", where)
        counters: dict[str, int] = {}
        layers: list[KerasLayerWeights] = []
        for name, spec in specs:
            kind = _group_kind(spec)
            counter = counters.get(kind, -1) + 1
            counters[kind] = counter
            group_name = kind if counter == 0 else f"{kind}_{counter}"
            group = hdf5.child(layers_group, group_name, where)
            saved = _saved_name(hdf5, group, where)
            if saved not in (None, name):
                raise KerasFileError(
                    f"{where}: layers/{group_name} holds the weights of layer {saved!r}, but config.json "
                    f"puts layer {name!r} there"
                )
            group_where = f"{where}: layers/{group_name}"
            if isinstance(spec, KerasLSTMConfig):
                arrays = _keras3_cell_arrays(hdf5, group, group_where)
                layers.append(_lstm_layer(name, arrays, spec, group_where))
            elif isinstance(spec, _BidirectionalSpec):
                layers.append(_keras3_bidirectional(hdf5, group, spec, where))
            else:
                vars_path = "layer/vars" if isinstance(spec, _DenseSpec) and spec.time_distributed else "vars"
                arrays = _keras3_vars(hdf5, group, vars_path, group_where)
                layers.append(_feedforward_layer(name, arrays, spec, group_where))
    _check_chain(layers, path)
    return KerasModelWeights(path, "keras", version if isinstance(version, str) else None, tuple(layers))


def _zip_member(archive: zipfile.ZipFile, name: str, limit: int, path: str) -> bytes:
    """A zip member's bytes, refusing members larger than ``limit`` (whatever they claim)."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise KerasFileError(
            f"{path}: zip member {name} claims {info.file_size} bytes, more than the {limit} allowed"
        )
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) != info.file_size:
        raise KerasFileError(
            f"{path}: zip member {name} holds {len(data)} bytes, not the {info.file_size} it claims"
        )
    return data


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise KerasFileError(f"{where}: not valid JSON ({exc})") from exc


def _read_hdf5(hdf5: HDF5Reader, root: Any, path: str) -> KerasModelWeights:
    """A Keras 3 ``.weights.h5`` or a legacy tf.keras ``.h5``, told apart by their layout."""
    if "layers" in root:
        return _read_keras3_weights(hdf5, root, path)
    if "model_weights" in root and "model_config" in root.attrs:
        return _read_legacy(hdf5, root, path)
    if "layer_names" in root.attrs:
        return _read_legacy_weights(hdf5, root, path)
    raise KerasFileError(
        f"{path}: an HDF5 file, but not a Keras one (no 'layers' group, no 'model_weights' with 'model_config')"
    )


def _read_keras3_weights(hdf5: HDF5Reader, root: Any, path: str) -> KerasModelWeights:
    """A Keras 3 ``.weights.h5``: layers found by group name, ordered as Keras wrote them."""
    layers_group = hdf5.child(root, "layers", path)
    found = []
    for group_name in layers_group:
        group = hdf5.child(layers_group, group_name, path)
        if not isinstance(group, hdf5.h5py.Group):
            raise KerasFileError(f"{path}: layers/{group_name} is not a group")
        match = _GROUP_NAME.match(group_name)
        assert match is not None  # the pattern matches every string
        kind, counter = match["kind"], int(match["counter"] or 0)
        if kind not in ("lstm", "bidirectional"):
            if hdf5.holds_datasets(group):
                label = _saved_name(hdf5, group, path) or group_name
                raise UnsupportedLayerError(
                    f"{path}: layer group layers/{group_name} (layer {label!r}) holds weights but is not "
                    "an LSTM or Bidirectional(LSTM); fastlstm reads only LSTM stacks"
                )
            continue
        found.append((hdf5.h5py.h5o.get_info(group.id).addr, kind, counter, group_name, group))
    found.sort(key=lambda item: item[0])
    last_counter: dict[str, int] = {}
    layers: list[KerasLayerWeights] = []
    for _, kind, counter, group_name, group in found:
        if counter <= last_counter.get(kind, -1):
            raise KerasFileError(
                f"{path}: cannot tell the layer order (layers/{group_name} was written before a "
                f"lower-numbered {kind} group); read the .keras file, which has the model config"
            )
        last_counter[kind] = counter
        name = _saved_name(hdf5, group, path) or group_name
        where = f"{path}: layers/{group_name}"
        if kind == "lstm":
            layers.append(_lstm_layer(name, _keras3_cell_arrays(hdf5, group, where), None, where))
        else:
            layers.append(_keras3_bidirectional(hdf5, group, None, path))
    _check_chain(layers, path)
    return KerasModelWeights(path, "weights_h5", None, tuple(layers))


def _read_legacy(hdf5: HDF5Reader, root: Any, path: str) -> KerasModelWeights:
    """A legacy tf.keras ``.h5``: ``model_config`` JSON plus ``model_weights/<layer>/``."""
    config = _parse_json(hdf5.one_text(root, "model_config", path), f"{path}: model_config")
    specs = _model_layers(config, f"{path}: model_config", legacy=True)
    weights_group = hdf5.child(root, "model_weights", path)
    layer_names = hdf5.string_attribute(weights_group, "layer_names", path) or []
    configured = [name for name, _ in specs]
    weighted = [name for name in layer_names if _legacy_weight_names(hdf5, weights_group, name, path)]
    if weighted != configured:
        raise KerasFileError(
            f"{path}: the layers with weights {weighted} do not match the LSTM layers of model_config {configured}"
        )
    layers: list[KerasLayerWeights] = []
    for name, spec in specs:
        where = f"{path}: model_weights/{name}"
        group = hdf5.child(weights_group, name, path)
        weight_names = _legacy_weight_names(hdf5, weights_group, name, path)
        arrays = [hdf5.read_array(hdf5.child(group, wn, where), f"{where}/{wn}") for wn in weight_names]
        if isinstance(spec, KerasLSTMConfig):
            _check_legacy_names(weight_names, spec.use_bias, where)
            layers.append(_lstm_layer(name, arrays, spec, where))
            continue
        if isinstance(spec, (_EmbeddingSpec, _DenseSpec)):
            expected = _feedforward_names(spec)
            found = [wn.rsplit("/", 1)[-1].split(":", 1)[0] for wn in weight_names]
            if found != expected:
                raise KerasFileError(f"{where}: weights {weight_names} are not the layer's {expected}")
            layers.append(_feedforward_layer(name, arrays, spec, where))
            continue
        # tf.keras names the directions after the wrapped layer: forward_<name>, backward_<name>.
        split = 3 if spec.forward.use_bias else 2
        _check_legacy_names(weight_names[:split], spec.forward.use_bias, where)
        _check_legacy_names(weight_names[split:], spec.backward.use_bias, where)
        forward = _lstm_layer(f"forward_{spec.forward.raw['name']}", arrays[:split], spec.forward, where)
        backward = _lstm_layer(f"backward_{spec.backward.raw['name']}", arrays[split:], spec.backward, where)
        layers.append(_bidirectional(name, forward, backward, spec.config, where))
    _check_chain(layers, path)
    version = hdf5.one_text(root, "keras_version", path) if "keras_version" in root.attrs else None
    return KerasModelWeights(path, "legacy_h5", version, tuple(layers))


def _read_legacy_weights(hdf5: HDF5Reader, root: Any, path: str) -> KerasModelWeights:
    """A legacy weights-only ``.h5``: LSTM layers identified by their weight names and shapes."""
    label = (
        f"{path}: a tf.keras weights-only .h5 (model.save_weights) holds no model config, so its "
        "layers are identified by their weights"
    )
    layers: list[KerasLayerWeights] = []
    for name in hdf5.string_attribute(root, "layer_names", path) or []:
        if not name or "/" in name or name in (".", ".."):
            raise KerasFileError(f"{label}; layer_names holds the invalid layer name {name!r}")
        if root.get(name, getlink=True) is None:
            raise KerasFileError(f"{label}; layer_names lists {name!r} but the file has no group /{name}")
        group = hdf5.child(root, name, path)
        if not isinstance(group, hdf5.h5py.Group):
            raise KerasFileError(f"{label}; /{name} is not a group")
        weight_names = hdf5.string_attribute(group, "weight_names", path) or []
        if not weight_names:
            continue  # InputLayer, Dropout, ...: nothing to read
        where = f"{path}: /{name}"
        datasets = [hdf5.child(group, wn, where) for wn in weight_names]
        for weight_name, dataset in zip(weight_names, datasets, strict=True):
            if not isinstance(dataset, hdf5.h5py.Dataset) or dataset.shape is None:
                raise KerasFileError(
                    f"{where}/{weight_name}: not a dataset with a shape; the file is damaged"
                )
        shapes = [dataset.shape for dataset in datasets]
        sides = _weights_only_sides(weight_names, shapes)
        if sides is None:
            raise UnsupportedLayerError(
                f"{label}; layer {name!r} holds {weight_names[:6]} of shapes {shapes[:6]}, which are not "
                "an LSTM's kernel [input, 4u], recurrent_kernel [u, 4u] and bias [4u] (a GRU, "
                "SimpleRNN, CuDNNLSTM, Dense, ... cannot be read): only plain stacks of LSTM and "
                "Bidirectional(LSTM) layers can"
            )
        lstms = []
        for side_name, indices in sides:
            arrays = [hdf5.read_array(datasets[k], f"{where}/{weight_names[k]}") for k in indices]
            lstms.append(_lstm_layer(side_name or name, arrays, None, where))
        if len(lstms) == 1:
            layers.append(lstms[0])
        else:
            layers.append(_bidirectional(name, lstms[0], lstms[1], None, where))
    if not layers:
        raise KerasFileError(f"{label}; none of its layers holds an LSTM's weights")
    _check_chain(layers, path)
    version = hdf5.one_text(root, "keras_version", path) if "keras_version" in root.attrs else None
    return KerasModelWeights(path, "legacy_weights_h5", version, tuple(layers))


def _weights_only_sides(
    weight_names: list[str], shapes: list[tuple[int, ...]]
) -> list[tuple[str | None, list[int]]] | None:
    """How a weights-only layer's weights split into LSTMs: [(name, indices)], or None if they do not.

    One LSTM: ``kernel``, ``recurrent_kernel`` (, ``bias``) with LSTM shapes. A
    Bidirectional(LSTM): two such sets, the first under a ``forward_*`` scope and
    the second under a ``backward_*`` one (named after those scopes).
    """
    parts = [name.split(":", 1)[0].split("/") for name in weight_names]
    for size in (3, 2):
        if len(parts) == size and _lstm_shaped([p[-1] for p in parts], shapes):
            return [(None, list(range(size)))]
        if len(parts) == 2 * size:
            halves = []
            for prefix, start in (("forward_", 0), ("backward_", size)):
                scopes = {
                    next((q for q in p[:-1] if q.startswith(prefix)), None)
                    for p in parts[start : start + size]
                }
                block = range(start, start + size)
                if len(scopes) != 1 or None in scopes:
                    break
                if not _lstm_shaped([parts[k][-1] for k in block], [shapes[k] for k in block]):
                    break
                halves.append((scopes.pop(), list(block)))
            if len(halves) == 2:
                return halves
    return None


def _lstm_shaped(kinds: list[str], shapes: list[tuple[int, ...]]) -> bool:
    """``kinds`` are an LSTM's weight names in order and ``shapes`` fit them."""
    if kinds != list(_WEIGHT_NAMES[: len(kinds)]):
        return False
    kernel, recurrent = shapes[0], shapes[1]
    if len(recurrent) != 2 or len(kernel) != 2 or recurrent[0] < 1 or kernel[0] < 1:
        return False
    units = recurrent[0]
    fits = recurrent[1] == 4 * units and kernel[1] == 4 * units
    return fits and (len(shapes) == 2 or shapes[2] == (4 * units,))


def _legacy_weight_names(hdf5: HDF5Reader, weights_group: Any, name: str, path: str) -> list[str]:
    group = hdf5.child(weights_group, name, path)
    return hdf5.string_attribute(group, "weight_names", path) or []


def _check_legacy_names(weight_names: list[str], use_bias: bool, where: str) -> None:
    """tf.keras names an LSTM's weights ``.../kernel:0``, ``.../recurrent_kernel:0``, ``.../bias:0``."""
    expected = list(_WEIGHT_NAMES if use_bias else _WEIGHT_NAMES[:2])
    found = [name.rsplit("/", 1)[-1].split(":", 1)[0] for name in weight_names]
    if found != expected:
        raise KerasFileError(f"{where}: weights {weight_names} are not an LSTM's {expected}")


# ------------------------------------------------------------------------ model config


class _BidirectionalSpec(NamedTuple):
    """The parsed config of a Bidirectional(LSTM) layer."""

    forward: KerasLSTMConfig
    backward: KerasLSTMConfig
    config: KerasBidirectionalConfig


class _EmbeddingSpec(NamedTuple):
    """The parsed config of an Embedding layer."""

    input_dim: int
    output_dim: int
    mask_zero: bool


class _DenseSpec(NamedTuple):
    """The parsed config of a Dense or TimeDistributed(Dense) layer."""

    units: int
    activation: str
    use_bias: bool
    time_distributed: bool


_Spec = KerasLSTMConfig | _BidirectionalSpec | _EmbeddingSpec | _DenseSpec


def _positive(config: dict[str, Any], key: str, label: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KerasFileError(f"{label}: {key} = {value!r} is not a positive integer")
    return value


def _embedding_spec(config: dict[str, Any], label: str) -> _EmbeddingSpec:
    mask_zero = config.get("mask_zero", False)
    if not isinstance(mask_zero, bool):
        raise KerasFileError(f"{label}: mask_zero = {mask_zero!r} is not a boolean")
    return _EmbeddingSpec(
        _positive(config, "input_dim", label), _positive(config, "output_dim", label), mask_zero
    )


def _dense_spec(config: dict[str, Any], label: str, time_distributed: bool) -> _DenseSpec:
    activation = config.get("activation", "linear")
    if activation is None:
        activation = "linear"
    if not isinstance(activation, str):
        raise UnsupportedLayerError(
            f"{label}: activation = {activation!r} is not the name of a built-in activation"
        )
    use_bias = config.get("use_bias", True)
    if not isinstance(use_bias, bool):
        raise KerasFileError(f"{label}: use_bias = {use_bias!r} is not a boolean")
    return _DenseSpec(_positive(config, "units", label), activation, use_bias, time_distributed)


def _model_layers(config: Any, where: str, legacy: bool) -> list[tuple[str, _Spec]]:
    """(layer name, parsed options) of each layer fastlstm runs, in model order.

    The model is a Sequential one or a Functional plain chain (:mod:`._keras_graph`).
    Everything is checked here, before any weight is read.
    """
    layers = chain_layers(config, where, KerasFileError, UnsupportedLayerError)
    result: list[tuple[str, _Spec]] = []
    recurrent_seen = False
    for number, layer in enumerate(layers):
        class_name = _get(layer, "class_name", str, f"{where}: layer {number}")
        layer_config = _get(layer, "config", dict, f"{where}: layer {number}")
        if class_name in IDENTITY_LAYERS:
            continue
        label = f"{where}: layer {layer_config.get('name')!r} ({class_name})"
        if class_name == "LSTM":
            result.append((_name(layer_config, label), _lstm_config(layer_config, where)))
        elif class_name == "Bidirectional":
            result.append((_name(layer_config, label), _bidirectional_spec(layer_config, label, legacy)))
        elif class_name == "Embedding" and not result:
            result.append((_name(layer_config, label), _embedding_spec(layer_config, label)))
        elif class_name == "Dense" and recurrent_seen:
            result.append((_name(layer_config, label), _dense_spec(layer_config, label, False)))
        elif (
            class_name == "TimeDistributed"
            and recurrent_seen
            and _get(layer_config, "layer", dict, label).get("class_name") == "Dense"
        ):
            inner = _get(layer_config["layer"], "config", dict, f"{label} layer")
            result.append((_name(layer_config, label), _dense_spec(inner, label, True)))
        else:
            place = {"Embedding": " after the first layer", "Dense": " before the LSTM layers"}.get(
                class_name, ""
            )
            raise UnsupportedLayerError(
                f"{label} is not supported{place}; fastlstm reads only LSTM and Bidirectional(LSTM) layers, "
                "with an Embedding first and Dense or TimeDistributed(Dense) layers after them"
            )
        recurrent_seen = recurrent_seen or isinstance(result[-1][1], (KerasLSTMConfig, _BidirectionalSpec))
    return result


def _lstm_config(config: dict[str, Any], where: str) -> KerasLSTMConfig:
    """The options of an LSTM layer config, type-checked, Keras defaults where absent."""
    label = f"{where}: layer {config.get('name')!r}"

    def flag(key: str, default: bool) -> bool:
        value = config.get(key, default)
        if not isinstance(value, bool):
            raise KerasFileError(f"{label}: {key} = {value!r} is not a boolean")
        return value

    def activation(key: str, default: str) -> str:
        value = config.get(key, default)
        if not isinstance(value, str):
            raise UnsupportedLayerError(
                f"{label}: {key} = {value!r} is not the name of a built-in activation"
            )
        return value

    units = config.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise KerasFileError(f"{label}: units = {units!r} is not a positive integer")
    return KerasLSTMConfig(
        activation=activation("activation", "tanh"),
        recurrent_activation=activation("recurrent_activation", "sigmoid"),
        use_bias=flag("use_bias", True),
        unit_forget_bias=flag("unit_forget_bias", True),
        go_backwards=flag("go_backwards", False),
        return_sequences=flag("return_sequences", False),
        return_state=flag("return_state", False),
        stateful=flag("stateful", False),
        time_major=flag("time_major", False),
        raw=config,
    )


def _bidirectional_spec(config: dict[str, Any], label: str, legacy: bool) -> _BidirectionalSpec:
    """Forward and backward LSTM options and the wrapper's own options.

    Keras 3 saves both directions' configs; tf.keras saves the wrapped layer and,
    unless a custom backward layer was given, builds the backward one as a copy with
    ``go_backwards`` flipped (so its ``raw`` config is that derived copy).
    """
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode not in _MERGE_MODES:
        raise KerasFileError(f"{label}: merge_mode = {merge_mode!r} is not one of {list(_MERGE_MODES)}")
    forward = _wrapped_lstm(config, "layer", label)
    if config.get("backward_layer") is not None:
        backward = _wrapped_lstm(config, "backward_layer", label)
    elif legacy:
        backward = dict(forward, go_backwards=not forward.get("go_backwards", False))
    else:
        raise KerasFileError(f"{label}: the Bidirectional config has no backward_layer")
    return _BidirectionalSpec(
        _lstm_config(forward, label),
        _lstm_config(backward, label),
        KerasBidirectionalConfig(merge_mode, config),
    )


def _wrapped_lstm(config: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    wrapped = _get(config, key, dict, label)
    if wrapped.get("class_name") != "LSTM":
        raise UnsupportedLayerError(
            f"{label}: Bidirectional({wrapped.get('class_name')}) is not supported; only Bidirectional(LSTM) is"
        )
    inner = _get(wrapped, "config", dict, f"{label} {key}")
    _name(inner, f"{label} {key}")
    return inner


def _get(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind):
        raise KerasFileError(f"{where}: '{key}' is missing or not a {kind.__name__}")
    return value


def _name(config: dict[str, Any], where: str) -> str:
    name = config.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise KerasFileError(f"{where}: layer name {name!r} is missing or invalid")
    return name


# ---------------------------------------------------------------------- layer weights


def _saved_name(hdf5: HDF5Reader, group: Any, where: str) -> str | None:
    """The Keras layer name Keras 3 saves in ``<group>/vars.attrs["name"]``, if there is one."""
    link = group.get("vars", getlink=True)
    if not isinstance(link, hdf5.h5py.HardLink) or not isinstance(group["vars"], hdf5.h5py.Group):
        return None
    if "name" not in group["vars"].attrs:
        return None
    return hdf5.one_text(group["vars"], "name", where)


def _keras3_cell_arrays(hdf5: HDF5Reader, group: Any, where: str) -> list[np.ndarray]:
    """``<group>/cell/vars/0..2``: kernel, recurrent kernel and (if any) bias."""
    variables = hdf5.child(group, "cell/vars", where)
    if not isinstance(variables, hdf5.h5py.Group):
        raise KerasFileError(f"{where}/cell/vars is not a group")
    keys = sorted(variables)
    if keys not in (["0", "1"], ["0", "1", "2"]):
        raise KerasFileError(f"{where}/cell/vars holds {keys[:6]}, not an LSTM's variables 0, 1[, 2]")
    return [hdf5.read_array(hdf5.child(variables, key, where), f"{where}/cell/vars/{key}") for key in keys]


def _keras3_bidirectional(
    hdf5: HDF5Reader, group: Any, spec: _BidirectionalSpec | None, path: str
) -> KerasBidirectionalWeights:
    """A Keras 3 Bidirectional group: ``forward_layer/`` and ``backward_layer/``."""
    where = f"{path}: {group.name}"
    names = []
    arrays = []
    for side in ("forward_layer", "backward_layer"):
        side_group = hdf5.child(group, side, where)
        arrays.append(_keras3_cell_arrays(hdf5, side_group, f"{where}/{side}"))
        names.append(_saved_name(hdf5, side_group, path) or side)
    if spec is None:
        name = _saved_name(hdf5, group, path) or group.name.rsplit("/", 1)[-1]
        forward = _lstm_layer(names[0], arrays[0], None, where)
        backward = _lstm_layer(names[1], arrays[1], None, where)
        return _bidirectional(name, forward, backward, None, where)
    forward = _lstm_layer(spec.forward.raw["name"], arrays[0], spec.forward, where)
    backward = _lstm_layer(spec.backward.raw["name"], arrays[1], spec.backward, where)
    return _bidirectional(spec.config.raw["name"], forward, backward, spec.config, where)


def _lstm_layer(
    name: str, arrays: list[np.ndarray], config: KerasLSTMConfig | None, where: str
) -> KerasLSTMWeights:
    """Check that kernel, recurrent kernel and bias fit together (and the config)."""
    label = f"{where}: LSTM {name!r}"
    if len(arrays) not in (2, 3):
        raise KerasFileError(f"{label}: {len(arrays)} weight arrays, expected 3 (or 2 without bias)")
    kernel, recurrent = arrays[0], arrays[1]
    bias = arrays[2] if len(arrays) == 3 else None
    if recurrent.ndim != 2 or recurrent.shape[0] < 1 or recurrent.shape[1] != 4 * recurrent.shape[0]:
        raise KerasFileError(f"{label}: recurrent_kernel shape {recurrent.shape} is not [units, 4 * units]")
    units = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[0] < 1 or kernel.shape[1] != 4 * units:
        raise KerasFileError(f"{label}: kernel shape {kernel.shape} is not [input_size, {4 * units}]")
    if bias is not None and bias.shape != (4 * units,):
        raise KerasFileError(f"{label}: bias shape {bias.shape} is not ({4 * units},)")
    dtypes = {array.dtype for array in arrays}
    if len(dtypes) != 1:
        raise KerasFileError(f"{label}: the weights have different dtypes {sorted(map(str, dtypes))}")
    if config is not None:
        if config.raw.get("units") != units:
            raise KerasFileError(
                f"{label}: config says units = {config.raw.get('units')}, the weights have {units}"
            )
        if config.use_bias != (bias is not None):
            raise KerasFileError(
                f"{label}: config says use_bias = {config.use_bias}, the file has {len(arrays)} arrays"
            )
    return KerasLSTMWeights(name, kernel, recurrent, bias, config)


def _bidirectional(
    name: str,
    forward: KerasLSTMWeights,
    backward: KerasLSTMWeights,
    config: KerasBidirectionalConfig | None,
    where: str,
) -> KerasBidirectionalWeights:
    if forward.input_size != backward.input_size:
        raise KerasFileError(
            f"{where}: Bidirectional {name!r}: forward input size {forward.input_size} "
            f"differs from backward {backward.input_size}"
        )
    if config is not None and config.merge_mode in ("sum", "mul", "ave") and forward.units != backward.units:
        raise KerasFileError(
            f"{where}: Bidirectional {name!r}: merge_mode {config.merge_mode!r} needs equal units, "
            f"got {forward.units} and {backward.units}"
        )
    return KerasBidirectionalWeights(name, forward, backward, config)


def _group_kind(spec: _Spec) -> str:
    """The name Keras 3 gives a layer's weights group in ``model.weights.h5`` (before its counter)."""
    if isinstance(spec, KerasLSTMConfig):
        return "lstm"
    if isinstance(spec, _BidirectionalSpec):
        return "bidirectional"
    if isinstance(spec, _EmbeddingSpec):
        return "embedding"
    return "time_distributed" if spec.time_distributed else "dense"


def _feedforward_names(spec: _EmbeddingSpec | _DenseSpec) -> list[str]:
    if isinstance(spec, _EmbeddingSpec):
        return ["embeddings"]
    return ["kernel", "bias"] if spec.use_bias else ["kernel"]


def _keras3_vars(hdf5: HDF5Reader, group: Any, vars_path: str, where: str) -> list[np.ndarray]:
    """``<group>/<vars_path>/0, 1, ...``: a layer's variables in order."""
    variables = hdf5.child(group, vars_path, where)
    if not isinstance(variables, hdf5.h5py.Group):
        raise KerasFileError(f"{where}/{vars_path} is not a group")
    keys = sorted(variables, key=lambda key: (len(key), key))
    if keys != [str(k) for k in range(len(keys))]:
        raise KerasFileError(f"{where}/{vars_path} holds {keys[:6]}, not variables 0, 1, ...")
    return [hdf5.read_array(hdf5.child(variables, key, where), f"{where}/{vars_path}/{key}") for key in keys]


def _feedforward_layer(
    name: str, arrays: list[np.ndarray], spec: _EmbeddingSpec | _DenseSpec, where: str
) -> KerasEmbeddingWeights | KerasDenseWeights:
    """An Embedding's or Dense layer's arrays, checked against its config."""
    expected = _feedforward_names(spec)
    if len(arrays) != len(expected):
        raise KerasFileError(f"{where}: {len(arrays)} weight arrays, expected {expected}")
    if isinstance(spec, _EmbeddingSpec):
        (table,) = arrays
        if table.shape != (spec.input_dim, spec.output_dim):
            raise KerasFileError(
                f"{where}: embeddings shape {table.shape} is not the config's ({spec.input_dim}, {spec.output_dim})"
            )
        return KerasEmbeddingWeights(name, table, spec.mask_zero)
    kernel = arrays[0]
    bias = arrays[1] if spec.use_bias else None
    if kernel.ndim != 2 or kernel.shape[0] < 1 or kernel.shape[1] != spec.units:
        raise KerasFileError(f"{where}: kernel shape {kernel.shape} is not [input_size, {spec.units}]")
    if bias is not None and bias.shape != (spec.units,):
        raise KerasFileError(f"{where}: bias shape {bias.shape} is not ({spec.units},)")
    return KerasDenseWeights(name, kernel, bias, spec.activation, spec.time_distributed)


def _check_chain(layers: list[KerasLayerWeights], path: str) -> None:
    """Each recurrent layer's input size is a possible output size of the one before it
    (an Embedding's and Dense layers' sizes are checked by the model built from them)."""
    layers = [layer for layer in layers if isinstance(layer, (KerasLSTMWeights, KerasBidirectionalWeights))]
    for previous, layer in itertools.pairwise(layers):
        if isinstance(previous, KerasLSTMWeights):
            sizes = {previous.units}
        else:
            fw, bw = previous.forward.units, previous.backward.units
            if previous.config is None:  # merge mode unknown: concat, or sum/mul/ave of equal sizes
                sizes = {fw + bw} | ({fw} if fw == bw else set())
            else:
                sizes = {"concat": {fw + bw}, None: set()}.get(previous.config.merge_mode, {fw})
        first = layer if isinstance(layer, KerasLSTMWeights) else layer.forward
        if first.input_size not in sizes:
            raise KerasFileError(
                f"{path}: layer {layer.name!r} takes inputs of size {first.input_size}, but the layer "
                f"before it, {previous.name!r}, outputs {sorted(sizes) or 'two separate sequences'}"
            )
