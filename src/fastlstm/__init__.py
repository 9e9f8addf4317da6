"""fastlstm: TensorFlow 1's LSTM cells and ``dynamic_rnn``, fast on the CPU with numba.

>>> import numpy as np, fastlstm
>>> cell = fastlstm.BasicLSTMCell(num_units=4)
>>> outputs, state = fastlstm.dynamic_rnn(cell, np.zeros((2, 3, 5), np.float32))
>>> outputs.shape
(2, 3, 4)
"""

from .activations import HardSigmoid
from .cell import BasicLSTMCell, LSTMCell, LSTMStateTuple, MultiRNNCell
from .convert import from_keras, from_onnx, from_tf_checkpoint, from_torch
from .io.native import load, save
from .layers import Dense, Embedding
from .model import Backward, LSTMModel
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn
from .warmup import warmup

__all__ = [
    "Backward",
    "BasicLSTMCell",
    "Dense",
    "Embedding",
    "HardSigmoid",
    "LSTMCell",
    "LSTMModel",
    "LSTMStateTuple",
    "MultiRNNCell",
    "bidirectional_dynamic_rnn",
    "dynamic_rnn",
    "from_keras",
    "from_onnx",
    "from_tf_checkpoint",
    "from_torch",
    "load",
    "save",
    "warmup",
]
__version__ = "0.1.0"
