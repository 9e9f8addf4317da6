"""Byte-level mutations of real files, shared by the binary readers' fuzz tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap

from hypothesis import strategies as st

EXAMPLE_TIME_LIMIT = 30
"""Seconds one fuzzed read may take before it counts as a hang (a read takes milliseconds)."""


def byte_mutations(max_position: int, max_delete: int) -> st.SearchStrategy:
    """One to four edits ``(kind, position, argument)``: flip, insert, delete, truncate, overwrite."""
    position = st.integers(0, max_position)
    return st.lists(
        st.one_of(
            st.tuples(st.just("flip"), position, st.integers(1, 255)),
            st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=8)),
            st.tuples(st.just("delete"), position, st.integers(1, max_delete)),
            st.tuples(st.just("truncate"), position, st.just(0)),
            st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=8)),
        ),
        min_size=1,
        max_size=4,
    )


def apply_mutations(data: bytes, mutations) -> bytes:
    """``data`` with the edits of :func:`byte_mutations` applied in order (positions wrap)."""
    buffer = bytearray(data)
    for kind, pos, arg in mutations:
        pos = pos % (len(buffer) + 1)
        if kind == "flip" and pos < len(buffer):
            buffer[pos] ^= arg
        elif kind == "insert":
            buffer[pos:pos] = arg
        elif kind == "delete":
            del buffer[pos : pos + arg]
        elif kind == "truncate":
            del buffer[pos:]
        elif kind == "overwrite":
            buffer[pos : pos + len(arg)] = arg
    return bytes(buffer)


@contextlib.contextmanager
def time_limit(seconds):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"no result after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcomes_under_memory_limit(files, loader: str) -> list[str]:
    """Load each of ``files`` with ``fastlstm.<loader>(path)`` in a child process limited to 4 GiB
    of address space; one line per file: ``"<name> loaded"``, ``"<name> ValueError"`` or
    ``"<name> MemoryError"`` (a crash leaves lines missing)."""
    script = textwrap.dedent(f"""
        import resource, pathlib
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
        import fastlstm
        for path in {sorted(str(f) for f in files)!r}:
            path = pathlib.Path(path)
            try:
                fastlstm.{loader}(path)
                print(path.name, "loaded")
            except ValueError as error:
                print(path.name, "ValueError")
            except MemoryError:
                print(path.name, "MemoryError")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300
    )
    return result.stdout.split("\n")[:-1] or [result.stderr]
