"""Read an ONNX ``LSTM`` node and its constant inputs from an ONNX model, as numpy arrays.

The model is parsed with the ``onnx`` package (``pip install fastlstm[onnx]``); no
ONNX runtime is needed. Only the main graph is searched for ``LSTM`` nodes, and
a node's weights must be constants: initializers of the main graph or outputs
of its ``Constant`` nodes. Tensors are decoded here, not by ``onnx.numpy_helper``:
every tensor's element count is checked against the bytes the file holds for
it before anything is allocated, and tensors stored outside the model file
(``data_location = EXTERNAL``) are refused, so a crafted model can neither make
the reader allocate more than the file holds nor point it at other files.
A damaged or malformed model raises :class:`OnnxFileError` (a ``ValueError``)
naming the file.

Arrays keep ONNX's layout: ``W`` ``[num_directions, 4 * hidden, input]``, ``R``
``[num_directions, 4 * hidden, hidden]``, gate blocks in ONNX's order (i, o, f, c);
``B`` ``[num_directions, 8 * hidden]`` (``Wb`` then ``Rb``), ``P``
``[num_directions, 3 * hidden]`` in the order (i, o, f).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OnnxFileError", "OnnxLSTMNode", "read_onnx_lstm"]

INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
"""The inputs of ONNX's LSTM operator, in order."""

MIN_OPSET = 7
"""The first opset whose LSTM fastlstm reads (opset 1's had an ``output_sequence`` attribute)."""

# TensorProto.DataType codes and how their elements are stored.
_FLOAT, _INT32, _INT64, _FLOAT16, _DOUBLE, _BFLOAT16 = 1, 6, 7, 10, 11, 16
_RAW_DTYPES = {
    _FLOAT: np.dtype("<f4"),
    _INT32: np.dtype("<i4"),
    _INT64: np.dtype("<i8"),
    _FLOAT16: np.dtype("<f2"),
    _DOUBLE: np.dtype("<f8"),
    _BFLOAT16: np.dtype("<u2"),
}
_TYPED_FIELDS = {
    _FLOAT: "float_data",
    _INT32: "int32_data",
    _INT64: "int64_data",
    _FLOAT16: "int32_data",  # 16 bits per int32 element
    _DOUBLE: "double_data",
    _BFLOAT16: "int32_data",
}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# AttributeProto.AttributeType codes.
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_TENSOR = 1, 2, 3, 4
_ATTR_FLOATS, _ATTR_INTS, _ATTR_STRINGS = 6, 7, 8
_ATTRIBUTE_TYPES = {
    "hidden_size": _ATTR_INT,
    "direction": _ATTR_STRING,
    "layout": _ATTR_INT,
    "clip": _ATTR_FLOAT,
    "input_forget": _ATTR_INT,
    "activations": _ATTR_STRINGS,
    "activation_alpha": _ATTR_FLOATS,
    "activation_beta": _ATTR_FLOATS,
}
_DIRECTIONS = ("forward", "reverse", "bidirectional")
_SUBGRAPH_SEARCH_DEPTH = 16


class OnnxFileError(ValueError):
    """An ONNX model is damaged, malformed, or its LSTM node cannot be read.

    The message names the file (or ``<ModelProto>`` for an in-memory model) and
    what is wrong.
    """


@dataclass(frozen=True, eq=False)
class OnnxLSTMNode:
    """One ONNX ``LSTM`` node: its attributes as written and its constant inputs.

    Attributes
    ----------
    source : str
        The file it was read from, or ``<ModelProto>``.
    name : str
        The node's name ('' if unnamed).
    outputs : tuple of str
        The names of its outputs ``Y``, ``Y_h``, ``Y_c`` ('' where unused).
    opset : int
        The model's opset of the default ONNX domain.
    hidden_size : int
    direction : str
        'forward', 'reverse' or 'bidirectional'.
    layout : int
        0: ``X`` is ``[seq_length, batch, input]``; 1: ``[batch, seq_length, input]``.
    clip : float or None
    input_forget : int
    activations : tuple of str
        As written (empty if the attribute is absent).
    activation_alpha, activation_beta : tuple of float
        As written (empty if absent).
    W, R : ndarray
    B, P : ndarray or None
        None when the node has no such input.
    sequence_lens, initial_h, initial_c : ndarray or None
        The input's value when it is a constant of the graph; None when it is
        absent or computed at run time (see ``runtime_inputs``).
    runtime_inputs : dict
        ONNX input name (``X``, ``sequence_lens``, ...) -> graph value name, for the
        inputs that are not constants.
    """

    source: str
    name: str
    outputs: tuple[str, ...]
    opset: int
    hidden_size: int
    direction: str
    layout: int
    clip: float | None
    input_forget: int
    activations: tuple[str, ...]
    activation_alpha: tuple[float, ...]
    activation_beta: tuple[float, ...]
    W: np.ndarray
    R: np.ndarray
    B: np.ndarray | None
    P: np.ndarray | None
    sequence_lens: np.ndarray | None
    initial_h: np.ndarray | None
    initial_c: np.ndarray | None
    runtime_inputs: dict[str, str]

    @property
    def num_directions(self) -> int:
        """2 for a bidirectional node, else 1."""
        return 2 if self.direction == "bidirectional" else 1


def read_onnx_lstm(model: Any, node: str | None = None) -> OnnxLSTMNode:
    """Read one ``LSTM`` node of an ONNX model and its constant inputs.

    Parameters
    ----------
    model : str, path-like or onnx.ModelProto
        An ``.onnx`` file, or a model already loaded (or built with ``onnx.helper``).
    node : str, optional
        The name of the LSTM node to read (or the name of one of its outputs,
        for unnamed nodes). Needed only when the main graph holds several.

    Returns
    -------
    OnnxLSTMNode

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If the path does not exist or is a directory.
    ImportError
        If the ``onnx`` package is not installed.
    OnnxFileError
        If the file is not a valid ONNX model, holds no such LSTM node (the
        message lists the LSTM nodes there are), uses an opset before 7, or the
        node's weights are not constants or do not fit together.
    TypeError
        If ``model`` is neither a path nor an ``onnx.ModelProto``.
    """
    onnx = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        proto, where = model, "<ModelProto>"
    elif isinstance(model, (str, os.PathLike)):
        where = os.fsdecode(os.fspath(model))
        proto = _parse(onnx, where)
    else:
        raise TypeError(
            f"expected the path of an .onnx file or an onnx.ModelProto, got {type(model).__name__}"
        )
    graph = proto.graph
    opset = _default_opset(proto, where)
    lstm = _find_node(graph, node, where)
    label = f"{where}: LSTM node {_describe(lstm)}"
    if opset < MIN_OPSET:
        raise OnnxFileError(
            f"{label}: the model uses opset {opset}, whose LSTM (with output_sequence) is not supported; "
            f"fastlstm reads LSTM from opset {MIN_OPSET} onward"
        )
    attributes = _attributes(lstm, label)
    constants = _Constants(graph, where)
    inputs = list(lstm.input)
    if len(inputs) > len(INPUT_NAMES):
        raise OnnxFileError(
            f"{label} has {len(inputs)} inputs; the LSTM operator has at most {len(INPUT_NAMES)}"
        )
    inputs += [""] * (len(INPUT_NAMES) - len(inputs))
    values: dict[str, np.ndarray | None] = {}
    runtime: dict[str, str] = {}
    for slot, value_name in zip(INPUT_NAMES, inputs):
        array = constants.get(value_name) if value_name else None
        if value_name and array is None:
            runtime[slot] = value_name
        values[slot] = array
    for slot in ("W", "R", "B", "P"):
        if slot in runtime:
            raise OnnxFileError(
                f"{label}: input {slot} ({runtime[slot]!r}) is computed at run time ({constants.producer(runtime[slot])}); "
                "fastlstm reads weights from initializers and Constant nodes only"
            )
    if values["W"] is None or values["R"] is None:
        missing = "W" if values["W"] is None else "R"
        raise OnnxFileError(f"{label} has no input {missing}; W and R are required")
    return _checked(where, lstm, label, opset, attributes, values, runtime)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "reading ONNX models needs the optional dependency onnx: pip install fastlstm[onnx]"
        ) from error
    return onnx


def _parse(onnx: Any, path: str) -> Any:
    from google.protobuf.message import DecodeError

    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; pass an .onnx file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    with open(path, "rb") as file:
        data = file.read()
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RecursionError) as error:
        raise OnnxFileError(
            f"{path}: not a valid ONNX model; the protobuf cannot be parsed ({error})"
        ) from error
    if not proto.HasField("graph"):
        raise OnnxFileError(
            f"{path}: not an ONNX model (it has no graph); it is truncated, corrupted or another file"
        )
    return proto


def _default_opset(proto: Any, where: str) -> int:
    versions = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    if not versions:
        raise OnnxFileError(f"{where}: the model imports no opset of the default ONNX domain")
    return int(max(versions))


def _describe(node: Any) -> str:
    if node.name:
        return repr(node.name)
    outputs = [name for name in node.output if name]
    return f"(unnamed, output {outputs[0]!r})" if outputs else "(unnamed)"


def _is_lstm(node: Any) -> bool:
    return node.op_type == "LSTM" and node.domain in ("", "ai.onnx")


def _find_node(graph: Any, name: str | None, where: str) -> Any:
    nodes = [n for n in graph.node if _is_lstm(n)]
    listed = ", ".join(_describe(n) for n in nodes)
    if name is None:
        if len(nodes) == 1:
            return nodes[0]
        if nodes:
            raise OnnxFileError(
                f"{where}: the main graph holds {len(nodes)} LSTM nodes ({listed}); pick one with node="
            )
        nested = _nested_lstm_count(graph, 0)
        inside = (
            f"; {nested} LSTM node(s) sit inside subgraphs (If / Loop / Scan bodies), which are not read"
            if nested
            else ""
        )
        raise OnnxFileError(f"{where}: the main graph holds no LSTM node{inside}")
    if not isinstance(name, str):
        raise TypeError(f"node must be the name of an LSTM node (a str), got {type(name).__name__}")
    for candidate in nodes:
        if candidate.name == name:
            return candidate
    for candidate in nodes:
        if name in candidate.output:
            return candidate
    raise OnnxFileError(
        f"{where}: the main graph holds no LSTM node named {name!r} (its LSTM nodes: {listed or 'none'})"
    )


def _nested_lstm_count(graph: Any, depth: int) -> int:
    if depth > _SUBGRAPH_SEARCH_DEPTH:
        return 0
    count = 0
    for node in graph.node:
        for attribute in node.attribute:
            subgraphs = list(attribute.graphs) + ([attribute.g] if attribute.HasField("g") else [])
            for subgraph in subgraphs:
                count += sum(1 for n in subgraph.node if _is_lstm(n)) + _nested_lstm_count(
                    subgraph, depth + 1
                )
    return count


def _attributes(node: Any, label: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute in node.attribute:
        name = attribute.name
        if name not in _ATTRIBUTE_TYPES:
            raise OnnxFileError(
                f"{label}: unknown attribute {name!r} (the LSTM operator has {sorted(_ATTRIBUTE_TYPES)})"
            )
        if name in found:
            raise OnnxFileError(f"{label}: attribute {name!r} is given twice")
        kind = _ATTRIBUTE_TYPES[name]
        if attribute.type != kind:
            raise OnnxFileError(
                f"{label}: attribute {name!r} has type code {attribute.type}, expected {kind}"
            )
        if kind == _ATTR_INT:
            found[name] = int(attribute.i)
        elif kind == _ATTR_FLOAT:
            found[name] = float(attribute.f)
        elif kind == _ATTR_FLOATS:
            found[name] = tuple(float(v) for v in attribute.floats)
        elif kind == _ATTR_STRING:
            found[name] = _text(attribute.s, name, label)
        else:
            found[name] = tuple(_text(v, name, label) for v in attribute.strings)
    return found


def _text(raw: bytes, name: str, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OnnxFileError(f"{label}: attribute {name!r} is not valid UTF-8 ({error})") from error


class _Constants:
    """The graph's constant values: initializers and the outputs of ``Constant`` nodes (decoded on demand)."""

    def __init__(self, graph: Any, where: str) -> None:
        self._where = where
        self._initializers = {t.name: t for t in graph.initializer}
        self._constant_nodes = {}
        self._producers = {}
        for node in graph.node:
            for output in node.output:
                self._producers.setdefault(output, node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
                self._constant_nodes.setdefault(node.output[0], node)

    def producer(self, name: str) -> str:
        node = self._producers.get(name)
        if node is None:
            return "a graph input"
        return f"by {node.op_type} node {_describe(node)}"

    def get(self, name: str) -> np.ndarray | None:
        if name in self._initializers:
            return _tensor(self._initializers[name], f"{self._where}: initializer {name!r}")
        node = self._constant_nodes.get(name)
        if node is None:
            return None
        return _constant(node, f"{self._where}: Constant node {_describe(node)}")


def _constant(node: Any, label: str) -> np.ndarray:
    if len(node.attribute) != 1:
        raise OnnxFileError(f"{label} has {len(node.attribute)} attributes; a Constant has exactly one value")
    attribute = node.attribute[0]
    if attribute.name == "value" and attribute.type == _ATTR_TENSOR:
        return _tensor(attribute.t, label)
    if attribute.name == "value_float" and attribute.type == _ATTR_FLOAT:
        return np.array(attribute.f, np.float32)
    if attribute.name == "value_floats" and attribute.type == _ATTR_FLOATS:
        return np.array(attribute.floats, np.float32)
    if attribute.name == "value_int" and attribute.type == _ATTR_INT:
        return np.array(attribute.i, np.int64)
    if attribute.name == "value_ints" and attribute.type == _ATTR_INTS:
        return np.array(attribute.ints, np.int64)
    raise OnnxFileError(
        f"{label}: attribute {attribute.name!r} (type code {attribute.type}) is not a numeric dense value "
        "(value, value_float(s), value_int(s))"
    )


def _tensor(tensor: Any, label: str) -> np.ndarray:
    """A TensorProto as a numpy array; sizes checked against the stored bytes before allocating."""
    if tensor.data_location == _EXTERNAL or len(tensor.external_data):
        raise OnnxFileError(f"{label} is stored outside the model file (external data), which is not read")
    if tensor.HasField("segment"):
        raise OnnxFileError(f"{label} is a segment of a tensor, which is not supported")
    dtype = _RAW_DTYPES.get(tensor.data_type)
    if dtype is None:
        raise OnnxFileError(
            f"{label} has data type code {tensor.data_type}; expected float, float16, bfloat16, double, int32 or int64"
        )
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise OnnxFileError(f"{label} has a negative dimension: {dims}")
    count = math.prod(dims)
    if math.prod(d for d in dims if d) * dtype.itemsize >= 2**63:
        raise OnnxFileError(f"{label}: shape {dims} is too large for any array")
    if tensor.HasField("raw_data"):
        stored = len(tensor.raw_data)
        if stored != count * dtype.itemsize:
            raise OnnxFileError(
                f"{label}: shape {dims} needs {count * dtype.itemsize} bytes but {stored} are stored"
            )
        array = np.frombuffer(tensor.raw_data, dtype).reshape(dims)
    else:
        field = getattr(tensor, _TYPED_FIELDS[tensor.data_type])
        if len(field) != count:
            raise OnnxFileError(f"{label}: shape {dims} needs {count} values but {len(field)} are stored")
        if tensor.data_type in (_FLOAT16, _BFLOAT16):
            bits = np.array(field, np.int64)
            if bits.size and (bits.min() < 0 or bits.max() > 0xFFFF):
                raise OnnxFileError(
                    f"{label}: a 16-bit value is stored as {bits[(bits < 0) | (bits > 0xFFFF)][0]}"
                )
            array = bits.astype("<u2").view(dtype).reshape(dims)  # the 16 bits of each value
        else:
            array = np.array(field, dtype).reshape(dims)
    if tensor.data_type == _BFLOAT16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if tensor.data_type == _FLOAT16:
        return array.astype(np.float32)
    return array.astype(dtype.newbyteorder("="))


def _checked(
    where: str,
    node: Any,
    label: str,
    opset: int,
    attributes: dict[str, Any],
    values: dict[str, np.ndarray | None],
    runtime: dict[str, str],
) -> OnnxLSTMNode:
    direction = attributes.get("direction", "forward")
    if direction not in _DIRECTIONS:
        raise OnnxFileError(f"{label}: direction = {direction!r} is not one of {list(_DIRECTIONS)}")
    directions = 2 if direction == "bidirectional" else 1
    weights = {}
    for slot in ("W", "R", "B", "P"):
        array = values[slot]
        if array is not None and array.dtype.kind != "f":
            raise OnnxFileError(
                f"{label}: input {slot} has dtype {array.dtype}; LSTM weights are floating point"
            )
        weights[slot] = array
    w, r = weights["W"], weights["R"]
    assert w is not None and r is not None
    if r.ndim != 3 or r.shape[0] != directions or r.shape[2] == 0 or r.shape[1] != 4 * r.shape[2]:
        raise OnnxFileError(
            f"{label}: R has shape {r.shape}; expected [num_directions={directions}, 4 * hidden_size, hidden_size]"
        )
    hidden = r.shape[2]
    if attributes.get("hidden_size", hidden) != hidden:
        raise OnnxFileError(f"{label}: hidden_size = {attributes['hidden_size']} but R has shape {r.shape}")
    if w.ndim != 3 or w.shape[:2] != (directions, 4 * hidden):
        raise OnnxFileError(
            f"{label}: W has shape {w.shape}; expected [{directions}, {4 * hidden}, input_size]"
        )
    for slot, width in (("B", 8 * hidden), ("P", 3 * hidden)):
        array = weights[slot]
        if array is not None and array.shape != (directions, width):
            raise OnnxFileError(f"{label}: {slot} has shape {array.shape}; expected ({directions}, {width})")
    layout = attributes.get("layout", 0)
    if layout not in (0, 1):
        raise OnnxFileError(f"{label}: layout = {layout} is not 0 or 1")
    return OnnxLSTMNode(
        source=where,
        name=node.name,
        outputs=tuple(list(node.output) + [""] * (3 - len(node.output))),
        opset=opset,
        hidden_size=hidden,
        direction=direction,
        layout=layout,
        clip=attributes.get("clip"),
        input_forget=attributes.get("input_forget", 0),
        activations=attributes.get("activations", ()),
        activation_alpha=attributes.get("activation_alpha", ()),
        activation_beta=attributes.get("activation_beta", ()),
        W=w,
        R=r,
        B=weights["B"],
        P=weights["P"],
        sequence_lens=values["sequence_lens"],
        initial_h=values["initial_h"],
        initial_c=values["initial_c"],
        runtime_inputs=runtime,
    )
