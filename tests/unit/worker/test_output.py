"""Output capture: raw bytes to the file, a decoded tail of bounded length."""

from __future__ import annotations

import os
from pathlib import Path

from herdsman.core.schemas.worker import TAIL_CHARACTERS
from herdsman.worker.output import OutputCapture, output_file_path


def _capture(chunks: list[bytes], path: Path | None = None) -> OutputCapture:
    read_fd, write_fd = os.pipe()
    capture = OutputCapture(os.fdopen(read_fd, "rb", buffering=0), path, stream="stdout")
    capture.start()
    for chunk in chunks:
        os.write(write_fd, chunk)
    os.close(write_fd)
    assert capture.join(5.0)
    return capture


def test_multi_byte_characters_split_across_chunks_are_decoded_whole() -> None:
    text = "αβγ€𝄞"
    data = text.encode()
    chunks = [data[i : i + 1] for i in range(len(data))]  # one byte at a time

    assert _capture(chunks).tail() == text


def test_undecodable_bytes_and_nul_become_replacement_characters() -> None:
    assert _capture([b"ok\xff\x00\xc3"]).tail() == "ok\ufffd\ufffd\ufffd"


def test_the_tail_is_bounded_by_characters_not_bytes() -> None:
    data = ("é" * (TAIL_CHARACTERS + 500)).encode()

    tail = _capture([data[:7001], data[7001:]]).tail()

    assert tail == "é" * TAIL_CHARACTERS


def test_the_file_gets_the_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "task.o1"

    capture = _capture([b"a\xffb", b"\n"], path)

    assert path.read_bytes() == b"a\xffb\n"
    assert capture.path == path


def test_output_file_path() -> None:
    assert output_file_path(None, "t", "o", "1") is None
    assert output_file_path("", "t", "o", "1") is None
    assert output_file_path("/logs", "fit", "e", "99") == Path("/logs/fit.e99")
    assert output_file_path("/logs", "a/b", "o", "1") == Path("/logs/a_b.o1")
