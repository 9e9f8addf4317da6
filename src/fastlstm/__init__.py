"""fastlstm: TensorFlow 1's LSTM cells and ``dynamic_rnn``, fast on the CPU with numba.

>>> import numpy as np, fastlstm
>>> cell = fastlstm.BasicLSTMCell(num_units=4)
>>> outputs, state = fastlstm.dynamic_rnn(cell, np.zeros((2, 3, 5), np.float32))
>>> outputs.shape
(2, 3, 4)
"""

from .cell import BasicLSTMCell, LSTMStateTuple
from .rnn import dynamic_rnn

__all__ = ["BasicLSTMCell", "LSTMStateTuple", "dynamic_rnn"]
__version__ = "0.1.0"
