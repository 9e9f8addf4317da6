"""Converters from trained models of other frameworks to :class:`~fastlstm.LSTMModel`.

* :func:`from_tf_checkpoint`: TensorFlow 1 cells from a checkpoint (no TensorFlow needed).
* :func:`from_keras`: Keras ``LSTM`` / ``Bidirectional(LSTM)`` stacks from files,
  layer or model objects, or ``get_weights()`` (no Keras needed for files).
* :func:`from_torch`: PyTorch ``nn.LSTM`` modules or state dicts (numpy state
  dicts need no torch).

Each maps the framework's gate order and bias convention to TF 1's (gates
i, j, f, o; ``forget_bias`` added at run time) and gives a model whose outputs
are the framework's own.
"""

from .keras import from_keras
from .pytorch import from_torch
from .tensorflow import from_tf_checkpoint

__all__ = ["from_keras", "from_tf_checkpoint", "from_torch"]
