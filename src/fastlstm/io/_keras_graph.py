"""The layers of a Keras model config in the order data flows through them.

A Sequential config lists its layers in order. A Functional config (class
``Functional``, or ``Model`` in tf.keras files) is a graph: each layer names the
layers its inputs come from (``inbound_nodes``). fastlstm runs a model layer
after layer, so it reads only Functional models that are a *plain chain*: one
input, one output, every layer called once on the single output of the layer
before it, and every layer on the path from the input to the output.

Keras 3 records one more node in a masked chain: ``Embedding(mask_zero=True)``
computes its mask as ``not_equal(ids, 0)``, and the layers after it receive that
tensor as their ``mask`` keyword. Such a ``NotEqual`` node of the model input and
``0`` is accepted as the Embedding's mask (it is what fastlstm computes from the
ids); any other ``mask`` argument is refused.

The two config dialects differ in how a node is written:

* Keras 3: ``{"args": [<tensor>, ...], "kwargs": {...}}``, a tensor being
  ``{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, index]}}``;
  ``input_layers`` / ``output_layers`` are ``[layer, node, index]`` for one tensor.
* tf.keras: ``[[layer, node, index, kwargs], ...]`` (one entry per input tensor);
  ``input_layers`` / ``output_layers`` are lists of ``[layer, node, index]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["FUNCTIONAL_CLASSES", "chain_layers", "layer_name"]

FUNCTIONAL_CLASSES = ("Functional", "Model")
"""Model classes whose config is a graph of layers (``Model`` in older tf.keras files)."""
_CALL_KEYWORDS = frozenset({"training", "mask"})
"""Keyword arguments a layer call in a plain chain may carry (``training`` only false)."""


class _Tensor(NamedTuple):
    """A reference to one output of one call of a layer."""

    layer: str
    node: int
    index: int


class _Call(NamedTuple):
    """One call of a layer: its positional arguments (tensors or constants) and keywords."""

    args: list[Any]
    kwargs: dict[str, Any]


def layer_name(layer: dict) -> str | None:
    """The name of a layer entry of a model config (top level, or inside its ``config``)."""
    config = layer.get("config")
    name = layer.get("name", config.get("name") if isinstance(config, dict) else None)
    return name if isinstance(name, str) else None


def chain_layers(config: Any, where: str, error: type[Exception], unsupported: type[Exception]) -> list[dict]:
    """The layer configs of a model config, in data-flow order.

    Parameters
    ----------
    config : object
        A parsed model config: ``{"class_name": ..., "config": {"layers": [...], ...}}``.
    where : str
        Where the config comes from, for messages.
    error : type
        Raised for a malformed config.
    unsupported : type
        Raised for a well-formed model fastlstm does not run (another model class,
        a graph that is not a plain chain).

    Returns
    -------
    list of dict
        The layer entries; for a Functional model without its ``InputLayer`` and
        the mask node (a Sequential config is returned as it lists them).
    """
    if not isinstance(config, dict):
        raise error(f"{where}: the model config is not a JSON object")
    model_class = config.get("class_name")
    if not isinstance(model_class, str):
        raise error(f"{where}: the model config has no class_name")
    body = config.get("config")
    if not isinstance(body, dict):
        raise error(f"{where}: the model config has no 'config' object")
    layers = body.get("layers")
    if not isinstance(layers, list):
        raise error(f"{where}: the {model_class} config has no 'layers' list")
    for number, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise error(f"{where}: layer {number} is not a JSON object")
    if model_class == "Sequential":
        return layers
    if model_class not in FUNCTIONAL_CLASSES:
        raise unsupported(
            f"{where}: model class {model_class!r} is not supported; fastlstm reads Sequential models and "
            "Functional models that are a plain chain of layers"
        )
    return _Graph(body, where, error, unsupported).chain()


class _Graph:
    """A Functional config's layers by name, with their calls parsed."""

    def __init__(self, body: dict, where: str, error: type[Exception], unsupported: type[Exception]):
        self.where, self.error, self.unsupported = where, error, unsupported
        self.layers: dict[str, dict] = {}
        self.calls: dict[str, list[_Call]] = {}
        for number, layer in enumerate(body["layers"]):
            name = layer_name(layer)
            if name is None:
                raise error(f"{where}: layer {number} has no name")
            if name in self.layers:
                raise error(f"{where}: two layers are named {name!r}")
            self.layers[name] = layer
            self.calls[name] = self._calls(layer, name)
        self.input = self._endpoint(body, "input_layers")
        self.output = self._endpoint(body, "output_layers")

    def label(self, name: str) -> str:
        class_name = self.layers[name].get("class_name")
        kind = class_name if isinstance(class_name, str) else repr(class_name)
        return f"{self.where}: layer {name!r} ({kind})"

    def chain(self) -> list[dict]:
        """Walk from the output back to the input; refuse anything off that single path."""
        if self.layers[self.input.layer].get("class_name") != "InputLayer":
            raise self.error(f"{self.label(self.input.layer)} is the model input but not an InputLayer")
        path: list[str] = []
        mask_nodes: set[str] = set()
        tensor = self.output
        while tensor.layer != self.input.layer:
            name = tensor.layer
            if name in path:
                raise self.error(f"{self.label(name)} feeds itself: the model graph has a cycle")
            path.append(name)
            call = self._single_call(name, tensor)
            mask_nodes.update(self._mask_sources(name, call))
            tensor = self._single_tensor(name, call)
        if tensor != _Tensor(self.input.layer, 0, 0):
            raise self.unsupported(
                f"{self.label(path[-1])} does not take the model input {self.input.layer!r}"
            )
        path.reverse()
        for name in mask_nodes:
            self._check_mask_node(name, path)
        off_path = [n for n in self.layers if n not in path and n != self.input.layer and n not in mask_nodes]
        if off_path:
            raise self.unsupported(
                f"{self.label(off_path[0])} is not on the path from the input to the output; fastlstm reads "
                "Functional models that are a plain chain (no branches, no layers whose outputs go unused)"
            )
        return [self.layers[name] for name in path]

    def _single_call(self, name: str, tensor: _Tensor) -> _Call:
        calls = self.calls[name]
        if len(calls) != 1:
            raise self.unsupported(
                f"{self.label(name)} is called {len(calls)} times; fastlstm reads chains where each layer "
                "is called once"
            )
        if (tensor.node, tensor.index) != (0, 0):
            raise self.unsupported(
                f"{self.label(name)}: its output {tensor.index} of call {tensor.node} is used; fastlstm "
                "reads chains that pass on each layer's single output"
            )
        return calls[0]

    def _single_tensor(self, name: str, call: _Call) -> _Tensor:
        tensors = [arg for arg in call.args if isinstance(arg, _Tensor)]
        if len(call.args) != 1 or len(tensors) != 1:
            raise self.unsupported(
                f"{self.label(name)} takes {len(tensors)} tensors and {len(call.args) - len(tensors)} other "
                "arguments; fastlstm reads chains where each layer takes the one output of the layer before it"
            )
        if tensors[0].layer not in self.layers:
            raise self.error(
                f"{self.label(name)} takes its input from {tensors[0].layer!r}, which is not a layer"
            )
        return tensors[0]

    def _mask_sources(self, name: str, call: _Call) -> list[str]:
        """The layers whose outputs ``call`` receives as keywords: only ``training=False`` and ``mask``."""
        extra = sorted(set(call.kwargs) - _CALL_KEYWORDS)
        if extra:
            raise self.unsupported(
                f"{self.label(name)} is called with {extra}; fastlstm reads chains whose calls pass only "
                "the previous layer's output (and the Embedding's mask)"
            )
        if call.kwargs.get("training") not in (None, False):
            raise self.unsupported(
                f"{self.label(name)} is called with training={call.kwargs['training']!r}; fastlstm runs "
                "models in inference mode"
            )
        mask = call.kwargs.get("mask")
        if mask is None:
            return []
        if not isinstance(mask, _Tensor) or mask.layer not in self.layers:
            raise self.unsupported(
                f"{self.label(name)} is called with mask={mask!r}; only the Embedding's mask is read"
            )
        return [mask.layer]

    def _check_mask_node(self, name: str, path: list[str]) -> None:
        """A ``mask`` must be Keras 3's ``not_equal(ids, 0)`` for an ``Embedding(mask_zero=True)`` first."""
        layer = self.layers[name]
        calls = self.calls[name]
        first = self.layers[path[0]] if path else {}
        is_not_equal = (
            layer.get("class_name") == "NotEqual"
            and len(calls) == 1
            and not calls[0].kwargs
            and len(calls[0].args) == 2
            and calls[0].args[0] == _Tensor(self.input.layer, 0, 0)
            and type(calls[0].args[1]) is int
            and calls[0].args[1] == 0
        )
        first_config = first.get("config")
        masks_zero = (
            first.get("class_name") == "Embedding"
            and isinstance(first_config, dict)
            and first_config.get("mask_zero") is True
        )
        if not (is_not_equal and masks_zero):
            raise self.unsupported(
                f"{self.label(name)} is passed as a mask; fastlstm reads only the mask of an "
                "Embedding(mask_zero=True) at the start of the chain (Keras 3's not_equal(ids, 0))"
            )

    def _endpoint(self, body: dict, key: str) -> _Tensor:
        """The one input or output tensor of the model."""
        value = body.get(key)
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            value = [value]  # Keras 3 writes a single tensor unwrapped
        if not isinstance(value, list) or not value:
            raise self.error(f"{self.where}: the Functional config has no {key!r} list")
        if len(value) != 1:
            raise self.unsupported(
                f"{self.where}: the model has {len(value)} {key.split('_')[0]}s; fastlstm reads models with one"
            )
        tensor = self._tensor(value[0], key)
        if tensor.layer not in self.layers:
            raise self.error(f"{self.where}: {key} names {tensor.layer!r}, which is not a layer")
        return tensor

    def _tensor(self, value: Any, where: str) -> _Tensor:
        if (
            not isinstance(value, list)
            or len(value) < 3
            or not isinstance(value[0], str)
            or not all(type(v) is int and v >= 0 for v in value[1:3])
        ):
            raise self.error(f"{self.where}: {where}: {value!r} is not a [layer, node, index] reference")
        return _Tensor(value[0], value[1], value[2])

    def _calls(self, layer: dict, name: str) -> list[_Call]:
        nodes = layer.get("inbound_nodes", [])
        where = f"layer {name!r} inbound_nodes"
        if not isinstance(nodes, list):
            raise self.error(f"{self.where}: {where} is not a list")
        return [self._call(node, where) for node in nodes]

    def _call(self, node: Any, where: str) -> _Call:
        if isinstance(node, dict):  # Keras 3
            args, kwargs = node.get("args", []), node.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise self.error(f"{self.where}: {where}: a node's args / kwargs are not a list / object")
            return _Call(
                [self._keras3_value(a, where) for a in args],
                {k: self._keras3_value(v, where) for k, v in kwargs.items()},
            )
        if isinstance(node, list):  # tf.keras: one [layer, node, index, kwargs] per input tensor
            tensors, kwargs = [], {}
            for entry in node:
                tensors.append(self._tensor(entry, where))
                extra = entry[3] if len(entry) > 3 else {}
                if not isinstance(extra, dict):
                    raise self.error(
                        f"{self.where}: {where}: {entry!r} has keyword arguments that are not an object"
                    )
                kwargs.update({k: self._tf_keras_value(v, where) for k, v in extra.items()})
            return _Call(tensors, kwargs)
        raise self.error(f"{self.where}: {where}: {node!r} is not a node")

    def _keras3_value(self, value: Any, where: str) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            return self._tensor(config.get("keras_history") if isinstance(config, dict) else None, where)
        return value

    def _tf_keras_value(self, value: Any, where: str) -> Any:
        # tf.keras writes a tensor keyword (e.g. mask=) as a [layer, node, index] list
        if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str):
            return self._tensor(value, where)
        return value
