"""Output files of ``fastlstm score``: written batch by batch, renamed into place only when complete.

Everything goes to a hidden temporary file in the output's directory
(``.NAME.<random>.tmp``); :meth:`Sink.commit` flushes it to disk and renames it
over ``OUTPUT`` (``os.replace``, atomic on POSIX). Until then ``OUTPUT`` is
untouched: a failure, Ctrl-C or SIGTERM removes the temporary files, and a
SIGKILL can only leave a hidden ``.tmp`` file behind, never a truncated
``OUTPUT``. Data is written with plain sequential writes (no memory map), so
the process holds one batch at a time.

Layouts (``N`` sequences, ``T`` the input's padded ``max_time`` or its longest
sequence, dtype the computation dtype):

``--outputs sequences``, OUTPUT ``*.npy``
    ``[N, T, output_size]``, zero past each sequence's length.
``--outputs sequences``, OUTPUT ``*.npz``
    Ragged: ``values`` ``[sum(lengths), output_size]`` (each sequence's valid
    steps, one sequence after the other) and ``lengths`` ``[N]`` (int64).
``--outputs final``, OUTPUT ``*.npy``
    ``[N, output_size]``: the top layer's final ``h`` (forward and backward
    concatenated for a bidirectional top layer).
``--outputs predictions``
    The model's outputs (its last layer's: a Dense head's, say): for a model
    with ``return_sequences=False`` OUTPUT ``*.npy`` ``[N, output_size]``; else
    per step, in the two layouts of ``--outputs sequences``.
``--outputs both``, OUTPUT ``*.npz``
    ``values`` and ``lengths`` as the ragged layout, plus ``final_h``
    ``[N, output_size]`` and ``final_c`` ``[N, c_size]``.

Both ``.npz`` layouts are themselves valid ragged inputs of ``fastlstm score``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import zipfile
from typing import IO, TYPE_CHECKING

import numpy as np

from .compute import BatchResult
from .errors import ScoreError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LAYOUTS", "Sink", "open_sink"]

#: ``--outputs`` value → the OUTPUT suffixes it accepts.
LAYOUTS = {
    "sequences": (".npy", ".npz"),
    "final": (".npy",),
    "both": (".npz",),
    "predictions": (".npy", ".npz"),
}


def _write_npy_header(stream: IO[bytes], shape: tuple[int, ...], dtype: np.dtype) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)


def _write_array(stream: IO[bytes], array: np.ndarray) -> None:
    stream.write(memoryview(np.ascontiguousarray(array)).cast("B"))


class Sink:
    """Base of the writers: a temporary file that becomes ``path`` on :meth:`commit`.

    Use as a context manager: leaving it by an exception (including
    ``KeyboardInterrupt``) deletes the temporary files.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        self._prefix = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}")
        self._temporaries: list[str] = []
        self._temporary, self._stream = self._create(".tmp")
        try:
            self._start()
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise ScoreError(path, f"cannot write: {exc.strerror or exc}", exit_code=1) from exc
            raise

    def _create(self, suffix: str) -> tuple[str, IO[bytes]]:
        """A new temporary file beside ``path``: its name and a stream writing it."""
        name = self._prefix + suffix
        try:
            descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise ScoreError(self.path, f"cannot write here: {exc.strerror or exc}") from exc
        self._temporaries.append(name)
        return name, os.fdopen(descriptor, "wb")

    def _start(self) -> None:
        """Write what precedes the data (headers); attributes set by the subclass are ready."""

    def write(self, result: BatchResult, lengths: np.ndarray) -> None:
        """Append one batch (the next sequences in input order)."""
        try:
            self._write(result, lengths)
        except OSError as exc:
            raise ScoreError(self.path, f"cannot write: {exc.strerror or exc}", exit_code=1) from exc

    def _write(self, result: BatchResult, lengths: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Complete the temporary file (trailing members, zip directory)."""

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it over ``path``."""
        try:
            self._finish()
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self._temporary, self.path)
            self._temporaries.remove(self._temporary)
        except OSError as exc:
            raise ScoreError(self.path, f"cannot write: {exc.strerror or exc}", exit_code=1) from exc
        finally:
            self.discard()
        # Make the rename itself durable; some file systems cannot sync a directory.
        with contextlib.suppress(OSError):
            directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def discard(self) -> None:
        """Close and delete whatever temporary files are left."""
        self._stream.close()
        for name in self._temporaries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        self._temporaries.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.discard()


class PaddedSink(Sink):
    """``[N, T, output_size]`` ``.npy``."""

    def __init__(self, path: str, count: int, max_time: int, output_size: int, dtype: np.dtype) -> None:
        self._count, self._shape, self._dtype = count, (max_time, output_size), dtype
        super().__init__(path)

    def _start(self) -> None:
        _write_npy_header(self._stream, (self._count, *self._shape), self._dtype)

    def _write(self, result: BatchResult, lengths: np.ndarray) -> None:
        outputs = result.outputs
        if outputs.shape[1] != self._shape[0]:
            block = np.zeros((outputs.shape[0], *self._shape), outputs.dtype)
            block[:, : outputs.shape[1]] = outputs
            outputs = block
        _write_array(self._stream, outputs)


class FinalSink(Sink):
    """``[N, output_size]`` ``.npy`` of the final ``h`` (``field="outputs"``: of final outputs)."""

    def __init__(
        self, path: str, count: int, output_size: int, dtype: np.dtype, field: str = "final_h"
    ) -> None:
        self._shape, self._dtype, self._field = (count, output_size), dtype, field
        super().__init__(path)

    def _start(self) -> None:
        _write_npy_header(self._stream, self._shape, self._dtype)

    def _write(self, result: BatchResult, lengths: np.ndarray) -> None:
        _write_array(self._stream, getattr(result, self._field))


class RaggedSink(Sink):
    """``.npz`` with ``lengths`` and ``values``, and with ``final_h``/``final_c`` if asked.

    ``values`` streams straight into the archive (stored, zip64). A zip archive
    takes one member at a time, so the final states go to two side files while
    ``values`` is written and are copied in at the end.
    """

    def __init__(
        self,
        path: str,
        lengths: np.ndarray,
        output_size: int,
        final_sizes: tuple[int, int] | None,
        dtype: np.dtype,
    ) -> None:
        self._lengths, self._output_size, self._final_sizes, self._dtype = (
            lengths,
            output_size,
            final_sizes,
            dtype,
        )
        self._finals: dict[str, tuple[str, IO[bytes]]] = {}
        super().__init__(path)

    def _start(self) -> None:
        lengths, dtype = self._lengths, self._dtype
        self._archive = zipfile.ZipFile(self._stream, "w", zipfile.ZIP_STORED, allowZip64=True)
        with self._archive.open("lengths.npy", "w", force_zip64=True) as member:
            _write_npy_header(member, lengths.shape, np.dtype(np.int64))
            _write_array(member, lengths.astype(np.int64))
        self._values = self._archive.open("values.npy", "w", force_zip64=True)
        _write_npy_header(self._values, (int(lengths.sum()), self._output_size), dtype)
        if self._final_sizes is not None:
            for name, size in zip(("final_c", "final_h"), self._final_sizes):
                self._finals[name] = self._create(f".{name}.tmp")
                _write_npy_header(self._finals[name][1], (lengths.shape[0], size), dtype)

    def _write(self, result: BatchResult, lengths: np.ndarray) -> None:
        outputs = result.outputs
        valid = np.arange(outputs.shape[1]) < lengths[:, None]
        _write_array(self._values, outputs[valid])
        if self._finals:
            _write_array(self._finals["final_c"][1], result.final_c)
            _write_array(self._finals["final_h"][1], result.final_h)

    def _finish(self) -> None:
        self._values.close()
        for name in ("final_h", "final_c"):
            if name in self._finals:
                side_path, side = self._finals[name]
                side.close()
                with (
                    open(side_path, "rb") as source,
                    self._archive.open(f"{name}.npy", "w", force_zip64=True) as member,
                ):
                    shutil.copyfileobj(source, member, 1 << 20)
        self._archive.close()

    def discard(self) -> None:
        # Close the open member and the archive first: a ZipFile left open would
        # try to write its directory when garbage-collected, after the file is gone.
        with contextlib.suppress(Exception):
            self._values.close()
        with contextlib.suppress(Exception):
            self._archive.close()
        for _, side in self._finals.values():
            side.close()
        super().discard()


def open_sink(
    path: str,
    outputs: str,
    lengths: np.ndarray,
    max_time: int,
    output_size: int,
    final_sizes: tuple[int, int],
    dtype: np.dtype,
    final_outputs: bool = False,
) -> Sink:
    """The writer for ``--outputs outputs`` into ``path`` (its suffix picks the layout).

    Parameters
    ----------
    path : str
        OUTPUT; must end in one of ``LAYOUTS[outputs]``.
    outputs : {"sequences", "final", "both", "predictions"}
    lengths : ndarray of int64, shape ``[N]``
    max_time : int
        Time extent of a padded output.
    output_size : int
        Depth of the outputs and of ``final_h``.
    final_sizes : (int, int)
        Depths of ``final_c`` and ``final_h``.
    dtype : numpy dtype
        The computation dtype.
    final_outputs : bool, default False
        Whether the model's outputs are final outputs ``[N, output_size]``
        (``return_sequences=False``): ``"predictions"`` then writes an ``.npy`` of them.

    Raises
    ------
    ScoreError
        A suffix that does not fit ``outputs``, or a directory that cannot be written.
    """
    suffix = os.path.splitext(path)[1].lower()
    if outputs == "predictions" and final_outputs and suffix != ".npy":
        raise ScoreError(path, "--outputs predictions of final outputs writes *.npy; name OUTPUT accordingly")
    if suffix not in LAYOUTS[outputs]:
        allowed = " or ".join(f"*{s}" for s in LAYOUTS[outputs])
        raise ScoreError(path, f"--outputs {outputs} writes {allowed}; name OUTPUT accordingly")
    if os.path.isdir(path):
        raise ScoreError(path, "is a directory")
    count = lengths.shape[0]
    if outputs == "final":
        return FinalSink(path, count, final_sizes[1], dtype)
    if outputs == "predictions" and final_outputs:
        return FinalSink(path, count, output_size, dtype, field="outputs")
    if outputs in ("sequences", "predictions") and suffix == ".npy":
        return PaddedSink(path, count, max_time, output_size, dtype)
    return RaggedSink(path, lengths, output_size, final_sizes if outputs == "both" else None, dtype)
