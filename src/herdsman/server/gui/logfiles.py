"""Reading an attempt's output files for the log viewer, only inside the allowed directories.

An attempt's stdout and stderr paths are written by its job, so they are not trusted: a file
is opened only when its real path (every symlink resolved) lies under one of the server's
``gui.log_roots``, and only a regular file (a FIFO or a device could block the server or never
end). The check is made again on the opened descriptor (its ``/proc/self/fd`` link), so a
symlink swapped in between the check and the open still cannot lead outside.

Every read is bounded: a range of at most :data:`CHUNK` bytes, a search over at most
:data:`SEARCH_BYTES` bytes and :data:`SEARCH_MATCHES` matches, a download streamed in chunks.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from herdsman.core.errors import NotFoundError, PermissionDeniedError

__all__ = [
    "CHUNK",
    "SEARCH_BYTES",
    "SEARCH_MATCHES",
    "Match",
    "Piece",
    "SearchResult",
    "opened",
    "read_after",
    "read_before",
    "search",
    "stream",
]

logger = structlog.get_logger(__name__)

CHUNK = 64 * 1024
SEARCH_BYTES = 256 * 1024 * 1024
SEARCH_MATCHES = 200
SEARCH_READ = 1024 * 1024
LINE_SHOWN = 500


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


@contextlib.contextmanager
def opened(recorded: str | None, roots: Sequence[Path]) -> Iterator[tuple[int, int]]:
    """The file an attempt recorded, open for reading, and its size: ``(descriptor, size)``.

    PermissionDeniedError when no directory is allowed, or the file's real path is outside
    them or not a regular file; NotFoundError when there is no such file (any more).
    """
    if not roots:
        raise PermissionDeniedError(
            "this server shows only the output tails attempts reported: no directory is "
            "allowed for reading output files (gui.log_roots)"
        )
    if not recorded or not os.path.isabs(recorded) or "\x00" in recorded:
        raise PermissionDeniedError(f"the recorded path {recorded!r} is not an absolute path")
    try:
        real = Path(recorded).resolve()  # before any answer says whether the file exists
    except (OSError, RuntimeError):
        raise PermissionDeniedError(f"the recorded path {recorded!r} cannot be resolved") from None
    if not _inside(real, roots):
        logger.warning("gui_log_refused", path=recorded, real=str(real))
        raise PermissionDeniedError(
            f"the output file {recorded} is outside the directories this server may read "
            "(gui.log_roots)"
        )
    try:
        descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        message = f"the output file {recorded} cannot be read: {error.strerror}"
        raise NotFoundError(message) from None
    try:
        info = os.fstat(descriptor)
        link = Path(f"/proc/self/fd/{descriptor}")
        again = Path(os.readlink(link)) if link.is_symlink() else real
        if not stat.S_ISREG(info.st_mode) or not _inside(again, roots):
            logger.warning("gui_log_refused", path=recorded, real=str(again))
            raise PermissionDeniedError(
                f"the output file {recorded} is not a regular file inside the directories "
                "this server may read (gui.log_roots)"
            )
        yield descriptor, info.st_size
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class Piece:
    """Bytes ``start`` to ``end`` of a file of ``size`` bytes, as text (cut at line ends)."""

    start: int
    end: int
    size: int
    text: str


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def read_before(descriptor: int, size: int, end: int | None) -> Piece:
    """Up to :data:`CHUNK` bytes before ``end`` (None: the end of the file), starting after a
    line end so no line is cut (unless the chunk holds no line end at all)."""
    stop = size if end is None else max(0, min(end, size))
    start = max(0, stop - CHUNK)
    data = os.pread(descriptor, stop - start, start)
    if start > 0:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1 :]
            start += newline + 1
    return Piece(start, start + len(data), size, _decode(data))


def read_after(descriptor: int, size: int, start: int, *, whole_lines: bool) -> Piece:
    """Up to :data:`CHUNK` bytes from ``start``. With ``whole_lines`` (a file still being
    written) it ends at the last line end, when there is one: the rest of the line comes with
    the next read, so a line is never shown in two halves."""
    begin = max(0, min(start, size))
    data = os.pread(descriptor, min(CHUNK, size - begin), begin)
    newline = data.rfind(b"\n")
    if whole_lines and 0 <= newline < len(data) - 1:
        data = data[: newline + 1]
    return Piece(begin, begin + len(data), size, _decode(data))


@dataclass(frozen=True)
class Match:
    """A line that holds the search: its number (from 1), its first byte, its text."""

    line: int
    offset: int
    text: str


@dataclass(frozen=True)
class SearchResult:
    """The matches found, and whether the search stopped early (too many matches, or the
    file is larger than a search may read); ``searched``: how many bytes it read."""

    matches: tuple[Match, ...]
    searched: int
    complete: bool


def search(descriptor: int, size: int, needle: str) -> SearchResult:
    """Lines of the file holding ``needle`` (ignoring ASCII case), read a megabyte at a time,
    at most :data:`SEARCH_MATCHES` of them within the first :data:`SEARCH_BYTES` bytes."""
    wanted = needle.encode().lower()
    matches: list[Match] = []
    offset = line = carry_start = 0
    carry = b""
    limit = min(size, SEARCH_BYTES)
    while offset < limit:
        block = os.pread(descriptor, min(SEARCH_READ, limit - offset), offset)
        if not block:
            break
        offset += len(block)
        lines = (carry + block).split(b"\n")
        # The last piece may go on in the next block; a "line" longer than a block is taken
        # as it is, so no line is held in memory whole.
        carry = lines.pop() if offset < limit else b""
        if len(carry) > SEARCH_READ:
            lines.append(carry)
            carry = b""
        start = carry_start
        for text in lines:
            line += 1
            if wanted in text.lower():
                matches.append(Match(line, start, _decode(text[:LINE_SHOWN])))
                if len(matches) >= SEARCH_MATCHES:
                    return SearchResult(tuple(matches), offset, complete=False)
            start += len(text) + 1
        carry_start = start
    return SearchResult(tuple(matches), offset, complete=offset >= size)


def stream(recorded: str, roots: Sequence[Path]) -> Iterator[bytes]:
    """The whole file as it is when the download starts, :data:`CHUNK` bytes at a time (the
    file is opened again, and checked again, for the download)."""
    with opened(recorded, roots) as (descriptor, size):
        offset = 0
        while offset < size:
            block = os.pread(descriptor, min(CHUNK, size - offset), offset)
            if not block:
                return
            offset += len(block)
            yield block
