"""``kernel_jit``: ``numba.njit`` with the disk cache, falling back to no cache when it has nowhere to live.

This module holds no compile option on purpose. numba's on-disk cache stamps
each kernel with the contents of the file that defines it (a SHA-256 of that
file, plus the function's bytecode, its closure and the target CPU) and sees
nothing else: an option imported from another file could change while the
cached machine code stayed the same. So every file with cached kernels
(``_kernels.py``, ``io/_crc32c.py``) defines its options itself, beside its
kernels, and passes them here; this decorator passes them on to numba
unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from numba import njit


def kernel_jit(options: dict[str, Any], **overrides: Any) -> Callable:
    """``numba.njit`` with ``options`` and ``overrides``; without the disk cache if it has nowhere to live.

    numba caches beside the package (``__pycache__``), else in a user cache
    directory, or in ``NUMBA_CACHE_DIR``. When none of these is writable (a
    read-only install with no home directory), the kernels still work: they are
    compiled in every process, with a warning saying so.
    """
    merged = {**options, **overrides}

    def decorate(func: Callable) -> Callable:
        try:
            return njit(**merged)(func)
        except RuntimeError as exc:
            if not merged.get("cache") or "no locator available" not in str(exc):
                raise
            warnings.warn(
                f"fastlstm: no writable cache directory for numba ({exc}); kernels will be "
                "compiled in every process. Set NUMBA_CACHE_DIR to a writable directory.",
                RuntimeWarning,
                stacklevel=2,
            )
            return njit(**{**merged, "cache": False})(func)

    return decorate
