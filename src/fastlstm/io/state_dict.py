"""Read a PyTorch state dict from a ``.safetensors``, ``.pt`` or ``.pth`` file as numpy arrays.

Two formats, recognised by their content rather than their file name:

* safetensors: an 8-byte little-endian header length, a JSON header naming each
  tensor's dtype, shape and byte range, then the data. Read with the
  ``safetensors`` package's numpy API (``pip install fastlstm[safetensors]``),
  without torch. The package checks the header (its size, that every byte range
  lies inside the file, that the ranges tile the data) before any tensor is read,
  and only the tensors asked for are read, so a crafted file cannot make the
  reader allocate more than the file holds. ``bfloat16`` tensors, which numpy has
  no dtype for, are widened to float32 from their bytes.
* ``torch.save`` files (the zip format, or the legacy pickle one): read with
  ``torch.load(weights_only=True)``, whose restricted unpickler builds tensors and
  containers only and runs no code from the file. Needs torch.

A damaged or malformed file raises :class:`StateDictFileError` (a ``ValueError``)
naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["StateDictFileError", "read_state_dict"]

_ZIP_SIGNATURE = b"PK\x03\x04"
_PICKLE_PROTOCOL = 0x80  # first byte of a pickle of protocol 2 or later (torch's legacy format)
_HEADER_LENGTH_BYTES = 8
# safetensors dtypes the package's numpy API returns as numpy arrays (BF16 is widened here).
_NUMPY_DTYPES = frozenset({"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"})

Selector = Callable[[list[str]], list[str]]


class StateDictFileError(ValueError):
    """A state dict file is damaged, malformed or not a state dict.

    The message names the file and what is wrong with it.
    """


def read_state_dict(path: str | os.PathLike[str], select: Selector | None = None) -> dict[str, np.ndarray]:
    """Read the tensors of a state dict file as numpy arrays.

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file, or a ``torch.save`` file (``.pt`` / ``.pth``)
        holding a state dict (a mapping from names to tensors); the format is
        recognised from the content.
    select : callable, optional
        Given the list of every tensor name in the file, returns the names to
        read; all of them when None. Only the selected tensors of a
        safetensors file are read from disk.

    Returns
    -------
    dict
        ``{name: array}`` for the selected names, in the file's order. Half
        precision (float16, bfloat16) is widened to float32; other dtypes are
        kept.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If ``path`` does not exist or is a directory.
    ImportError
        If the file needs a package that is not installed (``safetensors``, or
        torch for a ``torch.save`` file).
    StateDictFileError
        If the file is truncated, corrupted, not a state dict, or ``select``
        names a tensor it does not hold; the message names the file.
    """
    path_str = os.fsdecode(os.fspath(path))
    if os.path.isdir(path_str):
        raise IsADirectoryError(f"{path_str} is a directory; pass a .safetensors, .pt or .pth file")
    if not os.path.isfile(path_str):
        raise FileNotFoundError(f"state dict file {path_str} does not exist")
    with open(path_str, "rb") as file:
        head = file.read(_HEADER_LENGTH_BYTES + 1)
    if head.startswith(_ZIP_SIGNATURE) or head[:1] == bytes([_PICKLE_PROTOCOL]):
        return _read_torch_file(path_str, select)
    if len(head) == _HEADER_LENGTH_BYTES + 1 and head[-1:] == b"{":
        return _read_safetensors(path_str, select)
    raise StateDictFileError(
        f"{path_str}: neither a safetensors file nor a torch.save file (it starts with {head!r}); "
        "it is truncated, corrupted or not a state dict"
    )


def _selected(names: list[str], select: Selector | None, path: str) -> list[str]:
    if select is None:
        return names
    wanted = list(select(list(names)))
    known = set(names)
    for name in wanted:
        if name not in known:
            raise StateDictFileError(f"{path}: holds no tensor {name!r}")
    return wanted


def _read_safetensors(path: str, select: Selector | None) -> dict[str, np.ndarray]:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError as error:
        raise ImportError(
            f"reading {path} needs the optional dependency safetensors: pip install fastlstm[safetensors]"
        ) from error
    try:
        with safe_open(path, framework="np") as file:
            names = _selected(list(file.keys()), select, path)
            arrays = {}
            for name in names:
                dtype = file.get_slice(name).get_dtype()
                if dtype == "BF16":
                    arrays[name] = _bfloat16(path, name)
                elif dtype in _NUMPY_DTYPES:
                    arrays[name] = _widened(file.get_tensor(name))
                else:
                    raise StateDictFileError(
                        f"{path}: tensor {name!r} has dtype {dtype}, which numpy cannot hold "
                        f"(readable: {sorted(_NUMPY_DTYPES | {'BF16'})})"
                    )
            return arrays
    except SafetensorError as error:
        raise StateDictFileError(f"{path}: not a valid safetensors file ({error})") from error


def _bfloat16(path: str, name: str) -> np.ndarray:
    """A bfloat16 tensor as float32 (its 16 bits are the top half of a float32's)."""
    with open(path, "rb") as file:
        (length,) = np.frombuffer(file.read(_HEADER_LENGTH_BYTES), "<u8")
        entry = json.loads(file.read(int(length)))[name]  # safe_open validated the header
        start, end = entry["data_offsets"]
        file.seek(_HEADER_LENGTH_BYTES + int(length) + start)
        raw = np.frombuffer(file.read(end - start), "<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])


def _widened(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) if array.dtype == np.float16 else array


def _read_torch_file(path: str, select: Selector | None) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"{path} is a torch.save file; reading it needs torch (or convert it to .safetensors)"
        ) from error
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises whatever its unpickler or zip reader meets
        raise StateDictFileError(f"{path}: torch.load(weights_only=True) cannot read it ({error})") from error
    if not isinstance(loaded, Mapping):
        raise StateDictFileError(
            f"{path}: holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors); "
            "save model.state_dict()"
        )
    names = _selected([str(key) for key in loaded], select, path)
    by_name = {str(key): value for key, value in loaded.items()}
    arrays = {}
    for name in names:
        value = by_name[name]
        if not isinstance(value, torch.Tensor):
            raise StateDictFileError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        arrays[name] = _tensor_to_numpy(torch, value)
    return arrays


def _tensor_to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.numpy()
