"""The log viewer's file reads: only under the allowed directories, bounded, line-aligned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from herdsman.core.errors import NotFoundError, PermissionDeniedError
from herdsman.server.gui import logfiles


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    (root / "out.log").write_text("".join(f"line {i}\n" for i in range(30_000)))
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "link.log").symlink_to(outside / "secret")
    os.mkfifo(root / "fifo")
    return root, outside


def test_files_outside_the_roots_are_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    roots = [root.resolve()]
    for recorded in (
        f"{root}/../outside/secret",
        f"{root}/escape/secret",
        f"{root}/link.log",
        str(outside / "secret"),
        "/etc/passwd",
        "out.log",  # relative
        None,
    ):
        with pytest.raises(PermissionDeniedError), logfiles.opened(recorded, roots):
            pass
    fifo = str(root / "fifo")
    with pytest.raises(PermissionDeniedError, match="not a regular"), logfiles.opened(fifo, roots):
        pass
    log = str(root / "out.log")
    with pytest.raises(PermissionDeniedError, match="only the output"), logfiles.opened(log, []):
        pass
    with pytest.raises(NotFoundError), logfiles.opened(str(root / "missing.log"), roots):
        pass


def test_parts_join_up_at_line_ends_and_search_finds_lines(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    whole = (root / "out.log").read_text()
    with logfiles.opened(str(root / "out.log"), [root.resolve()]) as (descriptor, size):
        parts = []
        piece = logfiles.read_before(descriptor, size, None)
        assert piece.end == size and size - piece.start <= logfiles.CHUNK
        while True:
            parts.append(piece.text)
            assert piece.start == 0 or whole[piece.start - 1] == "\n"
            if piece.start == 0:
                break
            piece = logfiles.read_before(descriptor, size, piece.start)
        assert "".join(reversed(parts)) == whole
        assert logfiles.read_after(descriptor, size, size, whole_lines=True).text == ""
        tail = logfiles.read_after(descriptor, size, size - 8, whole_lines=False)
        assert tail.text == whole[-8:] and tail.end == size
        found = logfiles.search(descriptor, size, "LINE 2999")
        # "line 2999" is line 3000; "line 29990" to "line 29999" hold it too.
        assert [m.line for m in found.matches] == [3000, *range(29_991, 30_001)]
        assert found.matches[0].text == "line 2999" and found.complete
        assert whole[found.matches[0].offset :].startswith("line 2999\n")
        many = logfiles.search(descriptor, size, "line")
        assert len(many.matches) == logfiles.SEARCH_MATCHES and not many.complete


def test_a_file_being_written_is_followed_a_whole_line_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "live.log"
    log.write_text("one\ntw")
    with logfiles.opened(str(log), [tmp_path.resolve()]) as (descriptor, size):
        live = logfiles.read_after(descriptor, size, 0, whole_lines=True)
        assert (live.text, live.end) == ("one\n", 4)
        ended = logfiles.read_after(descriptor, size, 4, whole_lines=False)
        assert (ended.text, ended.end) == ("tw", size)
