"""Capture of one output stream of a command: copied to a file, its end kept as text.

A command's output can be endless and in any encoding (or none: binary junk, a progress bar
cut mid-character). The capture therefore never holds more than the tail, copies the raw bytes
to the file unchanged, and decodes only for the tail, as UTF-8 with undecodable bytes replaced.
The decoder is incremental, so a multi-byte character split across two reads is decoded once,
whole, instead of becoming two replacement characters.

NUL characters are replaced in the tail too: they are valid UTF-8 but PostgreSQL text columns
refuse them, and a tail the server cannot store would lose the whole report.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
from pathlib import Path
from typing import IO

import structlog

from herdsman.core.schemas.worker import TAIL_CHARACTERS, output_file_path

__all__ = ["OutputCapture", "output_file_path"]


logger = structlog.get_logger(__name__)

_READ_BYTES = 65_536
_REPLACEMENT = "\ufffd"


class OutputCapture:
    """Reads one pipe to its end in a daemon thread; see the module docstring.

    The owner calls :meth:`start` once, may call :meth:`tail` from any thread at any time, and
    :meth:`join` after the command ended. The pipe is closed by the reader at end of file; the
    file is opened by :meth:`start` (directories created) and closed by the reader.

    A file that cannot be opened or written is logged and given up, not fatal: the command's
    result matters more than its log, and the tail still reaches the server.
    """

    def __init__(self, pipe: IO[bytes], path: Path | None, *, stream: str) -> None:
        self._pipe = pipe
        self._stream = stream
        self._requested_path = path
        self._file: IO[bytes] | None = None
        self._opened = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._read_all, name=f"herdsman-{stream}", daemon=True
        )

    @property
    def path(self) -> Path | None:
        """The file the output went to; None without a directory or when it failed to open."""
        return self._requested_path if self._opened else None

    def start(self) -> None:
        if self._requested_path is not None:
            try:
                self._requested_path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self._requested_path.open("ab")
                self._opened = True
            except (OSError, ValueError) as error:  # ValueError: a NUL in the path
                logger.warning(
                    "worker_output_file_failed",
                    stream=self._stream,
                    path=str(self._requested_path),
                    error=str(error),
                )
        self._thread.start()

    def tail(self) -> str:
        """The last :data:`TAIL_CHARACTERS` characters read so far."""
        with self._lock:
            return self._tail

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for end of file; False if something still holds the pipe."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _read_all(self) -> None:
        fd = self._pipe.fileno()
        try:
            while True:
                chunk = os.read(fd, _READ_BYTES)
                if not chunk:
                    break
                self._write(chunk)
                self._append(self._decoder.decode(chunk))
            self._append(self._decoder.decode(b"", final=True))
        except OSError as error:  # the pipe was closed under us; keep what we have
            logger.debug("worker_output_read_failed", stream=self._stream, error=str(error))
        finally:
            self._pipe.close()
            if self._file is not None:
                self._file.close()

    def _write(self, chunk: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(chunk)
            self._file.flush()  # users follow the file while the task runs
        except (OSError, ValueError) as error:  # a full disk, a vanished mount
            logger.warning("worker_output_write_failed", stream=self._stream, error=str(error))
            failed, self._file = self._file, None
            with contextlib.suppress(OSError):
                failed.close()

    def _append(self, text: str) -> None:
        if not text:
            return
        text = text.replace("\x00", _REPLACEMENT)
        with self._lock:
            self._tail = (self._tail + text)[-TAIL_CHARACTERS:]
