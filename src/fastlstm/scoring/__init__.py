"""Batch scoring of files of any size: the engine of ``fastlstm score``.

:func:`score_file` runs a saved cell or model over a padded ``.npy``, a ragged
``.npz`` or a Parquet file, one batch at a time, and writes the outputs to a
temporary file renamed into place only when complete. With a
``distributed.Client`` the batches run on a Dask cluster and the output is
still written locally, in order.

>>> import os, tempfile, numpy as np, fastlstm
>>> from fastlstm.scoring import score_file
>>> folder = tempfile.mkdtemp()
>>> cell = fastlstm.BasicLSTMCell(4)
>>> cell.build(3, seed=0)
>>> fastlstm.save(os.path.join(folder, "model.npz"), cell)
>>> x = np.random.default_rng(0).random((10, 6, 3), dtype=np.float32)
>>> np.save(os.path.join(folder, "x.npy"), x)
>>> summary = score_file(os.path.join(folder, "model.npz"), os.path.join(folder, "x.npy"),
...                      os.path.join(folder, "h.npy"), outputs="final", batch_size=4)
>>> h = np.load(os.path.join(folder, "h.npy"))
>>> h.shape, bool((h == fastlstm.dynamic_rnn(cell, x)[1].h).all()), summary.sequences
((10, 4), True, 10)
"""

from .errors import ScoreError
from .job import ScoreSummary, load_model, score_file

__all__ = ["ScoreError", "ScoreSummary", "load_model", "score_file"]
