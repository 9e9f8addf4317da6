"""Read trained LSTM weights from other frameworks' files, as plain numpy arrays.

* :func:`read_tf_checkpoint`: every tensor of a TensorFlow (V2, tensor-bundle)
  checkpoint, ``{name: array}``, without TensorFlow. Errors: :class:`CheckpointError`.
* :func:`read_keras_weights`: the LSTM and Bidirectional(LSTM) layers of a Keras
  ``.keras``, ``.weights.h5``, legacy tf.keras ``.h5`` (whole model) or legacy
  weights-only ``.h5`` (``model.save_weights``) file, without Keras (needs
  ``h5py``: ``pip install fastlstm[keras]``). Errors: :class:`KerasFileError`, and
  :class:`UnsupportedLayerError` for layers other than LSTM.

Both error classes are ``ValueError`` subclasses whose message names the file. The
readers build no cells or models: they return the arrays in the source framework's
own layout (TF gate order i, j, f, o; Keras gate order i, f, c, o).
"""

from .keras_h5 import (
    KerasBidirectionalConfig,
    KerasBidirectionalWeights,
    KerasFileError,
    KerasLSTMConfig,
    KerasLSTMWeights,
    KerasModelWeights,
    UnsupportedLayerError,
    read_keras_weights,
)
from .tf_checkpoint import CheckpointError, read_tf_checkpoint

__all__ = [
    "CheckpointError",
    "KerasBidirectionalConfig",
    "KerasBidirectionalWeights",
    "KerasFileError",
    "KerasLSTMConfig",
    "KerasLSTMWeights",
    "KerasModelWeights",
    "UnsupportedLayerError",
    "read_keras_weights",
    "read_tf_checkpoint",
]
