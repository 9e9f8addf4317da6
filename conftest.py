"""What pytest collects outside ``tests/``: the docstring examples of ``src/fastlstm``.

``--doctest-modules`` (pyproject.toml) imports every module of the package;
a module that needs an optional package is left out when that package is
missing, as the tests of the optional parts are skipped then.
"""

from __future__ import annotations

import importlib.util

# Module (relative to this file) -> the optional packages it imports at the top (or its examples use).
_NEEDS = {"src/fastlstm/dask.py": ("dask", "distributed"), "src/fastlstm/convert/onnx.py": ("onnx",)}

collect_ignore = [
    path
    for path, packages in _NEEDS.items()
    if any(importlib.util.find_spec(package) is None for package in packages)
]
