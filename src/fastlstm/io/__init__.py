"""Read trained LSTM weights from other frameworks' files, as plain numpy arrays.

* :func:`read_tf_checkpoint`: every tensor of a TensorFlow (V2, tensor-bundle)
  checkpoint, ``{name: array}``, without TensorFlow. Errors: :class:`CheckpointError`.
* :func:`read_keras_weights`: the LSTM and Bidirectional(LSTM) layers of a Keras
  ``.keras``, ``.weights.h5``, legacy tf.keras ``.h5`` (whole model) or legacy
  weights-only ``.h5`` (``model.save_weights``) file, without Keras (needs
  ``h5py``: ``pip install fastlstm[keras]``). Errors: :class:`KerasFileError`, and
  :class:`UnsupportedLayerError` for layers other than LSTM.
* :func:`read_state_dict`: the tensors of a PyTorch state dict saved as ``.safetensors``
  (without torch; needs ``safetensors``: ``pip install fastlstm[safetensors]``) or with
  ``torch.save`` (``.pt`` / ``.pth``; needs torch). Errors: :class:`StateDictFileError`.
* :func:`read_onnx_lstm`: one ``LSTM`` node of an ONNX model and its constant inputs
  (needs ``onnx``: ``pip install fastlstm[onnx]``). Errors: :class:`OnnxFileError`.

Every error class is a ``ValueError`` subclass whose message names the file. The
readers build no cells or models: they return the arrays in the source framework's
own layout (TF gate order i, j, f, o; Keras i, f, c, o; PyTorch i, f, g, o; ONNX i, o, f, c).
"""

from .keras_h5 import (
    KerasBidirectionalConfig,
    KerasBidirectionalWeights,
    KerasDenseWeights,
    KerasEmbeddingWeights,
    KerasFileError,
    KerasLSTMConfig,
    KerasLSTMWeights,
    KerasModelWeights,
    UnsupportedLayerError,
    read_keras_weights,
)
from .onnx_model import OnnxFileError, OnnxLSTMNode, read_onnx_lstm
from .state_dict import StateDictFileError, read_state_dict
from .tf_checkpoint import CheckpointError, read_tf_checkpoint

__all__ = [
    "CheckpointError",
    "KerasBidirectionalConfig",
    "KerasBidirectionalWeights",
    "KerasDenseWeights",
    "KerasEmbeddingWeights",
    "KerasFileError",
    "KerasLSTMConfig",
    "KerasLSTMWeights",
    "KerasModelWeights",
    "OnnxFileError",
    "OnnxLSTMNode",
    "StateDictFileError",
    "UnsupportedLayerError",
    "read_keras_weights",
    "read_onnx_lstm",
    "read_state_dict",
    "read_tf_checkpoint",
]
