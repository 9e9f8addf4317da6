"""Side-by-side comparison: fastlstm vs PyTorch, ONNX Runtime, TF 1 and numpy.

A thin wrapper around :func:`fastlstm.bench.main`; same as ``python -m fastlstm bench``.

    python benchmarks/compare.py --threads 2
    python benchmarks/compare.py --workloads small,large --rounds 5 --json out.json
    python benchmarks/compare.py --shape 8,300,40,96 --lengths skewed
"""

import os
import sys

if __name__ == "__main__":
    try:
        from fastlstm.bench import main
    except ImportError:  # not installed: use the source tree next to this file
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
        from fastlstm.bench import main

    raise SystemExit(main(prog="compare.py"))
