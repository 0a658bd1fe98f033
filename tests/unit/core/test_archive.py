"""Workflow archives: written whole or not at all, read back with their counts checked."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from herdsman.core.archive import ArchiveWriter, archive_name, iter_archive_rows, read_archive
from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas.queries import WorkflowSummaryOut

SUMMARY = WorkflowSummaryOut(
    id=7,
    name="demo",
    status="D",
    user="ana",
    tasks=2,
    pending=0,
    running=0,
    done=2,
    fatal=0,
    retries=0,
    submitted="2026-01-01T00:00:00",
    elapsed_seconds=3.5,
)


def write(path: Path) -> None:
    with ArchiveWriter(path, 7, SUMMARY) as writer:
        writer.write("workflow", {"id": 7, "created_date": dt.datetime(2026, 1, 1, 12)})
        writer.write("task", {"id": 1, "status": "D"})
        writer.write("task", {"id": 2, "status": "D"})


def test_an_archive_reads_back_with_its_summary_and_counts(tmp_path: Path) -> None:
    path = tmp_path / archive_name(7)
    write(path)
    contents = read_archive(path)
    assert contents.summary == SUMMARY
    assert contents.rows == {"workflow": 1, "task": 2}
    assert contents.task_status_counts == {"D": 2}
    rows = list(iter_archive_rows(path))
    assert rows[0] == ("workflow", {"id": 7, "created_date": "2026-01-01T12:00:00"})
    assert not path.with_name(path.name + ".partial").exists()


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / archive_name(7)
    with pytest.raises(RuntimeError), ArchiveWriter(path, 7, SUMMARY) as writer:
        writer.write("task", {"id": 1, "status": "D"})
        raise RuntimeError("the database went away")
    assert list(tmp_path.iterdir()) == []


def test_a_cut_short_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / archive_name(7)
    write(path)
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(lines[:-1])))
    with pytest.raises(InvalidInputError, match="incomplete"):
        read_archive(path)
    with pytest.raises(InvalidInputError, match="incomplete"):
        list(iter_archive_rows(path))


def test_other_files_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\n")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        read_archive(plain)
    other = tmp_path / "other.jsonl.gz"
    other.write_bytes(gzip.compress(b'{"something": "else"}\n'))
    with pytest.raises(InvalidInputError, match="not a herdsman workflow archive"):
        read_archive(other)
