"""fastlstm's own file format: one ``.npz`` holding a JSON config and the weights.

Layout of the archive (all loadable with ``np.load(path, allow_pickle=False)``):

``fastlstm_format_version``
    0-d int64, the format version (:data:`FORMAT_VERSION`).
``fastlstm_config``
    0-d unicode array, JSON: ``{"class": ..., <constructor arguments>}`` for a
    cell (``cell.get_config()``), ``{"class": "MultiRNNCell", "cells": [...]}``
    or ``{"class": "LSTMModel", "layers": [...]}`` where a bidirectional layer
    is a two-element list ``[cell_fw, cell_bw]`` and a backward-only layer
    ``{"class": "Backward", "cell": cell}`` (files written before
    :class:`~fastlstm.Backward` existed have none and load as before), an
    :class:`~fastlstm.Embedding` ``{"class": "Embedding", "mask_zero": ...}``
    and a :class:`~fastlstm.Dense` layer ``{"class": "Dense", "activation": ...,
    "use_bias": ...}``; ``"return_sequences": false`` is written only when so
    (files without Embedding, Dense or that key load as before).
one array per weight
    Named by its place in the object and the cell's weight name:
    ``kernel`` for a single cell, ``cells.1.bias`` in a MultiRNNCell,
    ``layers.0.bw.w_f_diag`` in a model (``fw``/``bw`` for the two cells of a
    pair, ``bw`` for the cell of a Backward layer), ``layers.0.embeddings``,
    ``layers.3.kernel`` and ``layers.3.bias`` for Embedding and Dense layers.
    Stored in the layer's dtype.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from typing import Any

import numpy as np

from ..activations import ACTIVATIONS, HardSigmoid
from ..cell import BasicLSTMCell, LSTMCell, MultiRNNCell, RNNCell
from ..layers import Dense, Embedding
from ..model import Backward, LSTMModel

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_VERSION = 1
_VERSION_KEY = "fastlstm_format_version"
_CONFIG_KEY = "fastlstm_config"
_LEAF_CLASSES: dict[str, type] = {"BasicLSTMCell": BasicLSTMCell, "LSTMCell": LSTMCell}

Saveable = RNNCell | LSTMModel
# Cell settings added after format version 1: optional when read (get_config, hence the
# file, has them only when not at their defaults, so such files still load in fastlstm
# versions from before them). A HardSigmoid gate activation is written as
# {"class": "HardSigmoid", "alpha": a, "beta": b}.
_LATER_SETTINGS = {
    "BasicLSTMCell": {"recurrent_activation"},
    "LSTMCell": {"recurrent_activation", "gate_clip"},
}


def save(path: str | os.PathLike, model_or_cell: Saveable) -> None:
    """Write a built cell or model to ``path`` (exactly that name; no suffix is added).

    The file is written to a temporary file in the same directory and then
    renamed over ``path``, so a reader never sees a half-written file and a
    failed save leaves any previous file intact. Loading gives back the same
    settings and bit-identical weights.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    model_or_cell : BasicLSTMCell, LSTMCell, MultiRNNCell or LSTMModel
        What to save (a model with any of its layer types, :class:`~fastlstm.Backward`
        included); every cell in it must be built (have weights).

    Raises
    ------
    TypeError
        If ``model_or_cell`` is not a fastlstm cell or model.
    ValueError
        If a cell is not built, or uses a custom (numba) activation, which
        the format cannot store: only the built-in activations are saved, by name.

    Examples
    --------
    >>> import os, tempfile, numpy as np, fastlstm
    >>> cell = fastlstm.LSTMCell(4, num_proj=2)
    >>> cell.build(3, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.npz")
    >>> fastlstm.save(path, cell)
    >>> loaded = fastlstm.load(path)
    >>> loaded.get_config() == cell.get_config()
    True
    >>> all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), cell.get_weights()))
    True
    """
    arrays: dict[str, np.ndarray] = {}
    config = _describe(model_or_cell, "", arrays)
    payload = {
        _VERSION_KEY: np.array(FORMAT_VERSION, dtype=np.int64),
        _CONFIG_KEY: np.array(json.dumps(config, allow_nan=False)),
        **arrays,
    }
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    temporary = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            np.savez(stream, **payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load(path: str | os.PathLike) -> Saveable:
    """Read a cell or model written by :func:`save`.

    Everything is checked before an object is returned: the format version,
    the JSON config (known classes, exactly the expected settings, valid
    values), and every weight array (present, of the cell's dtype and shape,
    none left over). The archive is read with ``allow_pickle=False``.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    BasicLSTMCell, LSTMCell, MultiRNNCell or LSTMModel
        Built, with the saved weights.

    Raises
    ------
    ValueError
        If the file is not a valid fastlstm file of a supported version; the
        message says what is wrong.
    OSError
        If the file cannot be opened (missing, a directory, no permission).
    """
    name = os.fspath(path)
    try:
        archive = np.load(name, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise ValueError(f"{name} is not a fastlstm file (not a readable .npz archive): {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{name} is not a fastlstm file: it holds a single array, not an .npz archive")
    with archive:
        try:
            arrays = {key: archive[key] for key in archive.files}
        except Exception as exc:
            raise ValueError(f"{name} is not a valid fastlstm file: cannot read its arrays: {exc}") from exc
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{name} is not a valid fastlstm file: member {key!r} is not a .npy array")
    try:
        return _load_arrays(arrays)
    except RecursionError as exc:
        raise ValueError(f"{name} is not a valid fastlstm file: its config is nested too deeply") from exc
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid fastlstm file: {exc}") from exc


# -- writing ------------------------------------------------------------------------------
def _describe(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON config of ``obj``; its weights are added to ``arrays``."""
    if isinstance(obj, LSTMModel):
        layers: list[Any] = []
        for k, layer in enumerate(obj.layers):
            if isinstance(layer, tuple):
                pair = zip(layer, ("fw", "bw"))
                layers.append([_describe(cell, f"{prefix}layers.{k}.{d}.", arrays) for cell, d in pair])
            elif isinstance(layer, Backward):
                layers.append(
                    {"class": "Backward", "cell": _describe(layer.cell, f"{prefix}layers.{k}.bw.", arrays)}
                )
            elif isinstance(layer, Embedding):
                arrays[f"{prefix}layers.{k}.embeddings"] = layer.embeddings
                layers.append({"class": "Embedding", **layer.get_config()})
            elif isinstance(layer, Dense):
                arrays[f"{prefix}layers.{k}.kernel"] = layer.kernel
                if layer.bias is not None:
                    arrays[f"{prefix}layers.{k}.bias"] = layer.bias
                layers.append({"class": "Dense", **layer.get_config()})
            else:
                layers.append(_describe(layer, f"{prefix}layers.{k}.", arrays))
        config = {"class": "LSTMModel", "layers": layers}
        if not obj.return_sequences:
            config["return_sequences"] = False
        return config
    if isinstance(obj, MultiRNNCell):
        cells = [_describe(cell, f"{prefix}cells.{k}.", arrays) for k, cell in enumerate(obj.cells)]
        return {"class": "MultiRNNCell", "cells": cells}
    if type(obj) in _LEAF_CLASSES.values():
        if not obj.built:
            raise ValueError(
                f"cannot save {obj!r}: it has no weights yet; call build(input_size) or set_weights() first"
            )
        config = obj.get_config()
        if config["activation"] is not None and not isinstance(config["activation"], str):
            raise ValueError(
                f"cannot save {obj!r}: its activation is a custom function, and the native format "
                f"stores activations by name only (one of {sorted(ACTIVATIONS)})"
            )
        gates = config.get("recurrent_activation")
        if isinstance(gates, HardSigmoid):
            config["recurrent_activation"] = {
                "class": "HardSigmoid",
                "alpha": gates.alpha,
                "beta": gates.beta,
            }
        for weight_name, value in zip(obj.weight_names, obj.get_weights()):
            arrays[prefix + weight_name] = value
        return {"class": type(obj).__name__, **config}
    raise TypeError(
        f"save expects a BasicLSTMCell, LSTMCell, MultiRNNCell or LSTMModel, got {type(obj).__name__}"
    )


# -- reading ------------------------------------------------------------------------------
def _load_arrays(arrays: dict[str, np.ndarray]) -> Saveable:
    version = arrays.pop(_VERSION_KEY, None)
    if version is None:
        raise ValueError(f"no {_VERSION_KEY!r} array (was it written by fastlstm.save?)")
    if version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(
            f"{_VERSION_KEY!r} must be a 0-d integer array, got {version.dtype} of shape {version.shape}"
        )
    if int(version) != FORMAT_VERSION:
        raise ValueError(
            f"format version {int(version)} is not supported; this fastlstm reads version {FORMAT_VERSION}"
            + (" (the file is newer: upgrade fastlstm)" if int(version) > FORMAT_VERSION else "")
        )
    text = arrays.pop(_CONFIG_KEY, None)
    if text is None:
        raise ValueError(f"no {_CONFIG_KEY!r} array")
    if text.shape != () or text.dtype.kind != "U":
        raise ValueError(
            f"{_CONFIG_KEY!r} must be a 0-d unicode array, got {text.dtype} of shape {text.shape}"
        )
    try:
        config = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{_CONFIG_KEY!r} is not valid JSON: {exc}") from exc
    obj = _build(config, "", arrays, "config")
    if arrays:
        raise ValueError(f"arrays not used by the config: {sorted(arrays)}")
    return obj


def _build(config: Any, prefix: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    """The object described by ``config`` (at ``where`` in the JSON), weights popped from ``arrays``."""
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(config).__name__}")
    class_name = config.get("class")
    known = sorted([*_LEAF_CLASSES, "MultiRNNCell", "LSTMModel"])
    if not isinstance(class_name, str):
        raise ValueError(f"{where}: unknown class {class_name!r}; expected one of {known}")
    if class_name == "LSTMModel":
        _expect_keys(config, {"class", "layers", "return_sequences"}, where, optional={"return_sequences"})
        return_sequences = config.get("return_sequences", True)
        if not isinstance(return_sequences, bool):
            raise ValueError(f"{where}.return_sequences must be true or false, got {return_sequences!r}")
        layers = _json_list(config["layers"], f"{where}.layers")
        built = []
        for k, layer in enumerate(layers):
            here = f"{where}.layers[{k}]"
            if isinstance(layer, list):
                if len(layer) != 2:
                    raise ValueError(
                        f"{here} must be a cell or a [cell_fw, cell_bw] pair, got {len(layer)} items"
                    )
                built.append(
                    tuple(
                        _build(cell, f"{prefix}layers.{k}.{d}.", arrays, f"{here}[{i}]")
                        for i, (cell, d) in enumerate(zip(layer, ("fw", "bw")))
                    )
                )
            elif isinstance(layer, dict) and layer.get("class") == "Backward":
                _expect_keys(layer, {"class", "cell"}, here)
                built.append(
                    _construct(
                        Backward,
                        here,
                        _build(layer["cell"], f"{prefix}layers.{k}.bw.", arrays, f"{here}.cell"),
                    )
                )
            elif isinstance(layer, dict) and layer.get("class") in ("Embedding", "Dense"):
                built.append(_build_feedforward(layer, f"{prefix}layers.{k}.", arrays, here))
            else:
                built.append(_build(layer, f"{prefix}layers.{k}.", arrays, here))
        return _construct(LSTMModel, where, built, return_sequences=return_sequences)
    if class_name == "MultiRNNCell":
        _expect_keys(config, {"class", "cells"}, where)
        cells = _json_list(config["cells"], f"{where}.cells")
        built = [
            _build(cell, f"{prefix}cells.{k}.", arrays, f"{where}.cells[{k}]") for k, cell in enumerate(cells)
        ]
        return _construct(MultiRNNCell, where, built)
    if class_name in _LEAF_CLASSES:
        return _build_leaf(_LEAF_CLASSES[class_name], config, prefix, arrays, where)
    raise ValueError(f"{where}: unknown class {class_name!r}; expected one of {known}")


def _build_leaf(cls: type, config: dict, prefix: str, arrays: dict[str, np.ndarray], where: str) -> RNNCell:
    defaults = cls(num_units=1).get_config()
    later = _LATER_SETTINGS[cls.__name__]
    _expect_keys(config, {"class", *defaults, *later}, where, optional=later)
    settings = {key: value for key, value in config.items() if key != "class"}
    for key, default in defaults.items():
        if isinstance(default, bool) and not isinstance(settings[key], bool):
            raise ValueError(f"{where}.{key} must be true or false, got {settings[key]!r}")
    gates = settings.get("recurrent_activation")
    if isinstance(gates, dict):
        here = f"{where}.recurrent_activation"
        _expect_keys(gates, {"class", "alpha", "beta"}, here)
        if gates["class"] != "HardSigmoid":
            raise ValueError(f"{here}: unknown class {gates['class']!r}; expected 'HardSigmoid'")
        try:
            settings["recurrent_activation"] = HardSigmoid(gates["alpha"], gates["beta"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{here}: {exc}") from exc
    cell = _construct(cls, where, **settings)
    weights = []
    for weight_name in cell.weight_names:
        key = prefix + weight_name
        if key not in arrays:
            raise ValueError(
                f"missing array {key!r} ({where} is a {cls.__name__} with {list(cell.weight_names)})"
            )
        value = arrays.pop(key)
        if value.dtype.kind != "f" or value.dtype.type is not cell.dtype.type:
            raise ValueError(f"array {key!r} has dtype {value.dtype}, but {where} has dtype {cell.dtype}")
        weights.append(value)
    try:
        cell.set_weights(weights)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: bad weights: {exc}") from exc
    return cell


def _build_feedforward(config: dict, prefix: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    """An Embedding or Dense layer of a model, its weights popped from ``arrays``."""

    def array(name: str) -> np.ndarray:
        key = prefix + name
        if key not in arrays:
            raise ValueError(f"missing array {key!r} (the {config['class']} layer at {where})")
        value = arrays.pop(key)
        if value.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"array {key!r} has dtype {value.dtype}; float32 or float64 expected")
        return value

    if config["class"] == "Embedding":
        _expect_keys(config, {"class", "mask_zero"}, where)
        if not isinstance(config["mask_zero"], bool):
            raise ValueError(f"{where}.mask_zero must be true or false, got {config['mask_zero']!r}")
        return _construct(Embedding, where, array("embeddings"), config["mask_zero"])
    _expect_keys(config, {"class", "activation", "use_bias"}, where)
    if not isinstance(config["use_bias"], bool):
        raise ValueError(f"{where}.use_bias must be true or false, got {config['use_bias']!r}")
    kernel = array("kernel")
    bias = array("bias") if config["use_bias"] else None
    return _construct(Dense, where, kernel, bias, config["activation"])


def _construct(cls: type, where: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: invalid {cls.__name__}: {exc}") from exc


def _expect_keys(config: dict, expected: set[str], where: str, optional: set[str] = frozenset()) -> None:
    missing = sorted(expected - optional - set(config))
    unexpected = sorted(set(config) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{where} ({config.get('class')}): missing keys {missing}, unexpected keys {unexpected}"
        )


def _json_list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a JSON list, got {type(value).__name__}")
    return value
