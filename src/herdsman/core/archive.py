"""A pruned workflow's archive: one gzip-compressed file of JSON lines per workflow.

Retention (``herdsman server prune``) writes one before it removes a finished workflow from the
database, and ``herdsman workflow show --archive FILE`` reads it back. The format is meant to
outlive herdsman's schema, so it is plain and self-describing:

* line 1, the header: ``{"format": "herdsman-workflow-archive", "version": 1, "workflow_id",
  "archived_date", "summary"}``; ``summary`` is the workflow's summary as ``herdsman workflow
  status`` showed it at archive time (:class:`WorkflowSummaryOut`);
* then one line per row: ``{"table": NAME, "row": {COLUMN: VALUE}}``, in the order the tables
  are listed in ``rows`` of the trailer; timestamps are ISO text (UTC);
* last, the trailer: ``{"end": {TABLE: ROW_COUNT}}``. A file without it was cut short (the
  writer renames it into place only once it is complete, so such a file is not herdsman's).

JSON lines compress well (a 100k-task workflow's archive is a few MiB) and read back with
``zcat`` and ``jq`` as well as with herdsman.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas.queries import WorkflowSummaryOut

__all__ = [
    "ARCHIVE_FORMAT",
    "ARCHIVE_VERSION",
    "ArchiveContents",
    "ArchiveWriter",
    "archive_name",
    "iter_archive_rows",
    "read_archive",
]

ARCHIVE_FORMAT = "herdsman-workflow-archive"
ARCHIVE_VERSION = 1
# Level 6 is gzip's default: within a few percent of 9's size at about half its CPU.
_COMPRESS_LEVEL = 6


def archive_name(workflow_id: int) -> str:
    """The file name of a workflow's archive in an archive directory."""
    return f"workflow-{workflow_id}.jsonl.gz"


def _default(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")


class ArchiveWriter:
    """Writes one workflow's archive; rows go out as they come, in constant memory.

    The file is written under a temporary name and renamed into place by :meth:`close` after
    the trailer is written and flushed to disk, so a complete archive exists before anything
    is deleted and a crash leaves no file that looks complete but is not.
    """

    def __init__(self, path: Path, workflow_id: int, summary: WorkflowSummaryOut) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._raw: IO[bytes] = open(self._partial, "wb")  # noqa: SIM115 -- closed in close()
        self._file = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=_COMPRESS_LEVEL)
        self.counts: Counter[str] = Counter()
        header = {
            "format": ARCHIVE_FORMAT,
            "version": ARCHIVE_VERSION,
            "workflow_id": workflow_id,
            "archived_date": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(),
            "summary": summary.model_dump(mode="json"),
        }
        self._file.write(orjson.dumps(header) + b"\n")

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()

    def write(self, table: str, row: Mapping[str, Any]) -> None:
        self._file.write(orjson.dumps({"table": table, "row": dict(row)}, default=_default) + b"\n")
        self.counts[table] += 1

    def close(self) -> None:
        """Write the trailer, flush to disk, and rename the file into place."""
        self._file.write(orjson.dumps({"end": dict(self.counts)}) + b"\n")
        self._file.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._partial, self.path)

    def abandon(self) -> None:
        """Drop the unfinished file (the write failed)."""
        self._file.close()
        self._raw.close()
        self._partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class ArchiveContents:
    """What an archive holds: its workflow's summary and its rows counted by table."""

    path: Path
    workflow_id: int
    archived_date: str
    summary: WorkflowSummaryOut
    rows: dict[str, int]
    task_status_counts: dict[str, int]


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(path, "rb") as file:
            for number, line in enumerate(file, start=1):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    raise InvalidInputError(
                        f"{path}: line {number} is not JSON ({error}); the archive is damaged"
                    ) from None
    except (OSError, EOFError) as error:
        raise InvalidInputError(
            f"{path} cannot be read as a herdsman workflow archive (gzip JSON lines): {error}"
        ) from None


def _header(path: Path, first: dict[str, Any] | None) -> dict[str, Any]:
    if first is None or first.get("format") != ARCHIVE_FORMAT:
        raise InvalidInputError(f"{path} is not a herdsman workflow archive (no header line)")
    if first.get("version") != ARCHIVE_VERSION:
        raise InvalidInputError(
            f"{path} is an archive of format version {first.get('version')}; this herdsman "
            f"reads version {ARCHIVE_VERSION}: read it with the herdsman that wrote it"
        )
    return first


def iter_archive_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The archive's rows as (table, row), in file order; raises if it was cut short."""
    lines = _lines(path)
    _header(path, next(lines, None))
    for line in lines:
        if "end" in line:
            return
        yield line["table"], line["row"]
    raise InvalidInputError(f"{path} ends before its trailer: the archive is incomplete")


def read_archive(path: Path) -> ArchiveContents:
    """Read the whole archive, checking its rows against the trailer's counts."""
    lines = _lines(path)
    header = _header(path, next(lines, None))
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    trailer: dict[str, int] | None = None
    for line in lines:
        if "end" in line:
            trailer = line["end"]
            break
        table = line["table"]
        counts[table] += 1
        if table == "task":
            statuses[line["row"]["status"]] += 1
    if trailer is None:
        raise InvalidInputError(f"{path} ends before its trailer: the archive is incomplete")
    if dict(counts) != trailer:
        raise InvalidInputError(
            f"{path} holds rows {dict(counts)} but its trailer says {trailer}: it is damaged"
        )
    return ArchiveContents(
        path=path,
        workflow_id=int(header["workflow_id"]),
        archived_date=str(header["archived_date"]),
        summary=WorkflowSummaryOut.model_validate(header["summary"]),
        rows=dict(counts),
        task_status_counts=dict(statuses),
    )
