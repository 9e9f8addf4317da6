"""Converters from trained models of other frameworks to :class:`~fastlstm.LSTMModel`.

* :func:`from_tf_checkpoint`: TensorFlow 1 cells from a checkpoint (no TensorFlow needed).
* :func:`from_keras`: Keras ``LSTM`` / ``Bidirectional(LSTM)`` stacks from files,
  layer or model objects, or ``get_weights()`` (no Keras needed for files).
* :func:`from_torch`: PyTorch ``nn.LSTM`` / ``nn.LSTMCell`` modules, state dicts or
  ``.safetensors`` / ``.pt`` files (numpy state dicts and safetensors need no torch).
* :func:`from_onnx`: an ONNX ``LSTM`` node (needs the ``onnx`` package, no runtime);
  :func:`onnx_initial_state` and :func:`onnx_outputs` map ONNX's ``initial_h`` /
  ``initial_c`` and ``Y`` / ``Y_h`` / ``Y_c`` layouts to the model's.

Each maps the framework's gate order and bias convention to TF 1's (gates
i, j, f, o; ``forget_bias`` added at run time) and gives a model whose outputs
are the framework's own.
"""

from .keras import from_keras
from .onnx import from_onnx, onnx_initial_state, onnx_outputs
from .pytorch import from_torch
from .tensorflow import from_tf_checkpoint

__all__ = [
    "from_keras",
    "from_onnx",
    "from_tf_checkpoint",
    "from_torch",
    "onnx_initial_state",
    "onnx_outputs",
]
