"""Side-by-side comparison of fastlstm against PyTorch, ONNX Runtime, TF 1 and numpy.

Run as ``python -m fastlstm bench [options]`` or ``python benchmarks/compare.py
[options]``; ``--help`` lists the options.  Every contender gets identical
float32 inputs, weights and sequence lengths; each of its recipes (fastlstm:
``dynamic_rnn`` in float32 and with ``precision="bfloat16"``; PyTorch: packed,
padded with masked outputs, the plain call at full length, in float32 and
bfloat16) is checked against a float64 evaluation before it is timed, and
one that disagrees by more than the tolerance is reported as wrong and not
ranked.  Timing is done in interleaved rounds, median over rounds; then each
contender is timed alone in a fresh process, and a side-by-side figure more
than 20% away from its figure alone is reported as suspect.

One module per concern: :mod:`~fastlstm.bench.problems` (workloads, data, FLOP
count; also used by the asv suites in ``benchmarks/``),
:mod:`~fastlstm.bench.contenders`, :mod:`~fastlstm.bench.timing`,
:mod:`~fastlstm.bench.machine`, :mod:`~fastlstm.bench.report` and
:mod:`~fastlstm.bench.cli`.  None imports a contender's library until it runs.
"""

from .cli import main
from .problems import WORKLOADS, Problem, lstm_flops, make_lengths, make_problem

__all__ = ["WORKLOADS", "Problem", "lstm_flops", "main", "make_lengths", "make_problem"]
