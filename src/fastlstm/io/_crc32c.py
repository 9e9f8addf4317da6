"""CRC-32C (Castagnoli), the checksum of LevelDB tables and TensorFlow tensor bundles.

The standard library only has CRC-32 (IEEE, ``zlib.crc32``), a different polynomial,
so the table-driven loop (slicing-by-8) is compiled with numba and cached on disk:
over 1 GB/s instead of a few MB/s in pure Python. Its compile options are defined in
this file (numba's cache stamps a kernel with its own file's contents only).
"""

from __future__ import annotations

import numpy as np

from .._config import kernel_jit

# Integer arithmetic only (fastmath flags would change nothing); indices in range by construction.
_CRC_OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True, "boundscheck": False}

_POLY = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8


def _make_tables() -> np.ndarray:
    """Slicing-by-8 tables: ``tables[0]`` is the byte-at-a-time table."""
    tables = np.zeros((8, 256), dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
        tables[0, byte] = crc
    for k in range(1, 8):
        for byte in range(256):
            prev = int(tables[k - 1, byte])
            tables[k, byte] = (prev >> 8) ^ int(tables[0, prev & 0xFF])
    return tables


_TABLES = _make_tables()


@kernel_jit(_CRC_OPTIONS)
def _crc32c_update(crc: int, data: np.ndarray, tables: np.ndarray) -> int:  # pragma: no cover - compiled
    crc = np.uint32(crc) ^ np.uint32(0xFFFFFFFF)
    n = data.shape[0]
    i = 0
    while i + 8 <= n:
        lo = crc ^ (
            np.uint32(data[i])
            | (np.uint32(data[i + 1]) << 8)
            | (np.uint32(data[i + 2]) << 16)
            | (np.uint32(data[i + 3]) << 24)
        )
        crc = (
            tables[7, lo & 0xFF]
            ^ tables[6, (lo >> 8) & 0xFF]
            ^ tables[5, (lo >> 16) & 0xFF]
            ^ tables[4, lo >> 24]
            ^ tables[3, data[i + 4]]
            ^ tables[2, data[i + 5]]
            ^ tables[1, data[i + 6]]
            ^ tables[0, data[i + 7]]
        )
        i += 8
    while i < n:
        crc = tables[0, (crc ^ np.uint32(data[i])) & 0xFF] ^ (crc >> 8)
        i += 1
    return crc ^ np.uint32(0xFFFFFFFF)


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``crc`` (the CRC of the preceding bytes).

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    view = np.frombuffer(data, dtype=np.uint8)
    return int(_crc32c_update(crc, view, _TABLES))


def mask(crc: int) -> int:
    """LevelDB's masked CRC: rotate right by 15 bits and add a constant.

    Stored checksums are masked so that the CRC of data containing CRCs stays well
    distributed. TensorFlow stores masked CRCs in table blocks and bundle entries.
    """
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
