"""The change feed: every status change of a workflow's tasks, instances and runs, numbered.

Followers (the swarm, the distributor) read "changes after N" and must never miss one. The
danger is commit order: if transaction A takes number 7 and transaction B number 8, and B
commits first, a follower reading at that moment sees 8, moves its cursor past 7, and never
sees 7. So numbers are taken by incrementing ``workflow.change_seq`` as the last statement of
the transaction: the row lock this takes (PostgreSQL, MariaDB; SQLite's single writer lock
does the same) is held until commit, so a second writer of the same workflow waits for the
first to commit before it can take the next number. Numbers therefore become visible in
order, without gaps, on every engine, and the lock is held only for the last few statements.

Waiting followers are woken in-process right after the commit (see :class:`ChangeNotifier`).
Followers served by another server process are woken, on PostgreSQL, by a ``NOTIFY`` sent in
the same transaction (delivered at commit, never before; see
:mod:`herdsman.server.database.listen`); on SQLite and MariaDB they notice at their next
re-read, every ``server.feed_recheck_seconds``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from sqlalchemy.orm import Session

from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.errors import NotFoundError
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, WorkflowRunStatus
from herdsman.server.database import sql
from herdsman.server.database.bulk import insert_rows
from herdsman.server.database.engine import Database
from herdsman.server.database.error_counts import ErrorCountChanges, FirstErrors
from herdsman.server.database.models import StatusChange, utcnow
from herdsman.server.database.task_counts import TaskCountChanges
from herdsman.server.database.usage_totals import add_usage

__all__ = [
    "NOTIFY_CHANNEL",
    "ChangeNotifier",
    "ChangeRecorder",
    "ChangeRow",
    "ChangeRows",
    "FeedWriter",
    "notice",
    "parse_notice",
    "read_changes",
    "sender_id",
]

logger = structlog.get_logger(__name__)

MAX_CHANGES_PER_READ = 10_000

# PostgreSQL's channel for "these workflows changed"; payloads are made by :func:`notice`.
NOTIFY_CHANNEL = "herdsman_changes"
# PostgreSQL refuses payloads of 8,000 bytes or more; a longer notice wakes every waiter.
_MAX_NOTICE_BYTES = 7_000

T = TypeVar("T")


@dataclass
class ChangeRecorder:
    """Collects a transaction's status changes; :meth:`flush` numbers and writes them.

    Task changes also carry the task's array and previous status, so that the flush adds them
    to the workflow's task counts (:mod:`~herdsman.server.database.task_counts`) in the same
    transaction.
    """

    _pending: dict[int, list[tuple[str, int, str, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _counts: TaskCountChanges = field(default_factory=TaskCountChanges)
    _errors: ErrorCountChanges = field(default_factory=ErrorCountChanges)
    _usage: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def record(
        self, workflow_id: int, kind: str, object_id: int, status: str, task_id: int | None = None
    ) -> None:
        self._pending[workflow_id].append((kind, object_id, status, task_id))

    def task(
        self,
        workflow_id: int,
        task_id: int,
        status: TaskStatus,
        *,
        previous: TaskStatus | str,
        array_id: int,
        attempts: int,
        attempts_after: int | None = None,
        counted: bool = True,
    ) -> None:
        """Task ``task_id`` of ``array_id`` went from ``previous`` to ``status``, and from
        ``attempts`` spent to ``attempts_after`` (unchanged when None). ``counted`` is False
        for a task a resume removed from its workflow: the change is on the feed, and not in
        the counts, which left the task when it was removed."""
        self.record(workflow_id, ChangeKind.TASK, task_id, status)
        if not counted:
            return
        self._counts.move(
            workflow_id,
            array_id,
            str(previous),
            str(status),
            attempts=attempts,
            attempts_after=attempts_after,
        )

    def task_attempts(
        self, workflow_id: int, array_id: int, status: TaskStatus | str, attempts: int, after: int
    ) -> None:
        """A task's attempts were reset without a change of status (not on the feed)."""
        self._counts.move(
            workflow_id, array_id, str(status), str(status), attempts=attempts, attempts_after=after
        )

    def task_removed(
        self, workflow_id: int, array_id: int, status: TaskStatus | str, attempts: int
    ) -> None:
        """A task left its workflow (a resume removed it): out of the counts; not on the feed,
        as its status did not change."""
        self._counts.leave(workflow_id, array_id, str(status), attempts=attempts)

    def task_restored(
        self, workflow_id: int, array_id: int, status: TaskStatus | str, attempts: int
    ) -> None:
        """A removed task is back in its workflow: counted again."""
        self._counts.join(workflow_id, array_id, str(status), attempts=attempts)

    def recounted(self, workflow_id: int) -> None:
        """The workflow's counts were just set from its tasks in this transaction: the
        increments recorded so far are in them already."""
        self._counts.forget(workflow_id)

    def errors_recounted(self, workflow_id: int) -> None:
        """The workflow's error counts and usage totals were just set from its log and its
        attempts in this transaction: the increments recorded so far are in them already."""
        self._errors.forget(workflow_id)
        self._usage.pop(workflow_id, None)

    def error(
        self,
        group: tuple[int, int, str, str],
        first: FirstErrors,
        when: dt.datetime,
        log_id: int,
    ) -> None:
        """An error of ``group`` (workflow, array, signature, exit class) was logged, as
        ``log_id``: the flush adds it to the group's kept counts."""
        self._errors.add(group, first, when, log_id)

    def usage(self, workflow_id: int, instance_id: int) -> None:
        """The attempt's usage (its wall time) was recorded: the flush adds it to the
        workflow's usage totals."""
        self._usage[workflow_id].append(instance_id)

    def instance(
        self, workflow_id: int, instance_id: int, status: TaskInstanceStatus, task_id: int
    ) -> None:
        self.record(workflow_id, ChangeKind.INSTANCE, instance_id, status, task_id)

    def run(self, workflow_id: int, run_id: int, status: WorkflowRunStatus) -> None:
        self.record(workflow_id, ChangeKind.RUN, run_id, status)

    def limits(self, workflow_id: int) -> None:
        """The workflow's or one of its arrays' concurrency limit changed."""
        self.record(workflow_id, ChangeKind.LIMIT, workflow_id, "")

    def flush(self, session: Session) -> dict[int, frozenset[tuple[str, str]]]:
        """Number and insert the changes; call last in the transaction.

        Returns, per workflow, the (kind, status) pairs written, for waking followers.
        """
        # A fixed order, so two writers cannot deadlock. A workflow may have count changes
        # and no feed change (attempts given back to tasks already registering).
        workflows = sorted(
            set(self._pending)
            | self._counts.workflows()
            | self._errors.workflows()
            | set(self._usage)
        )
        now = utcnow()
        for workflow_id in workflows:
            changes = self._pending.get(workflow_id, [])
            sql.execute(
                session,
                "UPDATE workflow SET change_seq = change_seq + ? WHERE id = ?",
                (len(changes), workflow_id),
            )
            row = sql.fetch_one(
                session, "SELECT change_seq FROM workflow WHERE id = ?", (workflow_id,)
            )
            if row is None:  # the status changes came from its rows, in this transaction
                raise NotFoundError(
                    f"workflow {workflow_id} vanished while its status changes were recorded",
                    details={"workflow_id": workflow_id},
                )
            first = int(row[0]) - len(changes) + 1
            insert_rows(
                session,
                StatusChange,
                ("workflow_id", "seq", "kind", "object_id", "status", "task_id"),
                [
                    (workflow_id, first + offset, kind, object_id, status, task_id)
                    for offset, (kind, object_id, status, task_id) in enumerate(changes)
                ],
            )
            # After the workflow's row is locked by the number above: see task_counts.
            self._counts.apply(session, workflow_id, now)
            self._errors.apply(session, workflow_id)
            if self._usage.get(workflow_id):
                add_usage(session, workflow_id, self._usage[workflow_id])
        written = {
            workflow_id: frozenset(
                (kind, status) for kind, _, status, _ in self._pending[workflow_id]
            )
            for workflow_id in workflows
            if workflow_id in self._pending
        }
        self._pending.clear()
        self._counts = TaskCountChanges()
        self._errors = ErrorCountChanges()
        self._usage = defaultdict(list)
        if written and session.get_bind().dialect.name == "postgresql":
            # Delivered to the other server processes when this transaction commits (and not
            # at all if it rolls back), so a woken follower always finds the changes.
            sql.execute(session, "SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, notice(written)))
        return written


_sender = secrets.token_hex(6)


def _new_sender() -> None:
    global _sender
    _sender = secrets.token_hex(6)


# A forked server process is a sender of its own.
os.register_at_fork(after_in_child=_new_sender)


def sender_id() -> str:
    """This process's name in its notices: random, so that processes on different hosts with
    the same pid differ."""
    return _sender


def notice(written: dict[int, frozenset[tuple[str, str]]]) -> str:
    """The NOTIFY payload for ``written``: ``sender|workflow:KS,KS;workflow:KS`` (kind and
    status letters), or ``sender|*`` (wake every waiter) when that would be too long for
    PostgreSQL. ``sender`` is :func:`sender_id`."""
    body = ";".join(
        f"{workflow_id}:" + ",".join(sorted(kind + status for kind, status in changes))
        for workflow_id, changes in written.items()
    )
    if len(body) > _MAX_NOTICE_BYTES:
        body = "*"
    return f"{sender_id()}|{body}"


def parse_notice(payload: str) -> tuple[str, dict[int, frozenset[tuple[str, str]]] | None]:
    """The sender and what changed; None for "wake everyone" (see :func:`notice`)."""
    sender, _, body = payload.partition("|")
    if body == "*":
        return sender, None
    written: dict[int, frozenset[tuple[str, str]]] = {}
    for part in filter(None, body.split(";")):
        workflow_id, _, pairs = part.partition(":")
        written[int(workflow_id)] = frozenset(
            (pair[0], pair[1:]) for pair in pairs.split(",") if pair
        )
    return sender, written


def require_workflow(session: Session, workflow_id: int) -> None:
    """Raise NotFoundError for an unknown workflow (checked once per feed request, not per
    re-read: a waiting follower re-reads every fraction of a second)."""
    if sql.fetch_one(session, "SELECT id FROM workflow WHERE id = ?", (workflow_id,)) is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )


ChangeRow = tuple[int, str, int, str, int | None]
"""One feed row as read: seq, kind, object id, status, task id."""


@dataclass(frozen=True)
class ChangeRows:
    """A read of the feed: the changes a follower wanted, oldest first, and ``last_seq``, the
    newest change examined (wanted or not), to read after next. The API's
    :class:`~herdsman.core.schemas.swarm.ChangesOut`, as the database's own tuples."""

    last_seq: int
    changes: list[ChangeRow]


def read_changes(
    session: Session, workflow_id: int, after: int, wanted: ChangeFilter
) -> ChangeRows:
    """Wanted changes with seq > ``after``, oldest first, examining at most 10,000.

    The database filters: a swarm wants about one change in ten (tasks that finished, not
    every launch and start of every instance), and turning the other nine into Python rows was
    the largest part of a dummy task's server CPU. The newest examined row comes back whether
    wanted or not, so the cursor still advances over filtered-out changes. Both come from one
    statement, hence one snapshot: a second query for the counter could see commits made after
    the first (each statement has its own snapshot in READ COMMITTED), and only rows this read
    examined may advance the cursor.
    """
    if all(kind in wanted.wanted and wanted.wanted[kind] is None for kind in ChangeKind):
        rows = sql.fetch_all(
            session,
            "SELECT seq, kind, object_id, status, task_id FROM status_change "
            "WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (workflow_id, after, MAX_CHANGES_PER_READ),
        )
    else:
        condition, params = _filter_condition(wanted)
        rows = sql.fetch_all(
            session,
            "WITH examined AS (SELECT seq, kind, object_id, status, task_id FROM status_change "
            "WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?) "
            "SELECT seq, kind, object_id, status, task_id FROM examined "
            f"WHERE {condition} OR seq = (SELECT MAX(seq) FROM examined) ORDER BY seq",
            (workflow_id, after, MAX_CHANGES_PER_READ, *params),
        )
    return ChangeRows(
        last_seq=rows[-1][0] if rows else after,
        changes=[row for row in rows if (row[1], row[3]) in wanted],
    )


def _filter_condition(wanted: ChangeFilter) -> tuple[str, list[str]]:
    """A WHERE condition selecting the changes ``wanted`` names, with its parameters."""
    clauses: list[str] = []
    params: list[str] = []
    for kind, statuses in sorted(wanted.wanted.items()):
        if statuses is None:
            clauses.append("kind = ?")
            params.append(kind)
        else:
            clauses.append(f"(kind = ? AND status IN ({', '.join('?' * len(statuses))}))")
            params.extend([kind, *sorted(statuses)])
    return "(" + " OR ".join(clauses or ["1 = 0"]) + ")", params


class ChangeNotifier:
    """Wakes long-poll requests of this server process when a change they want committed.

    ``notify`` is called from worker threads after a commit, with the kinds and statuses that
    were written; waiters are coroutines on the event loop, each with its filter. Only a waiter
    whose filter matches is woken, so a follower that wants finished tasks is not woken (to
    read nothing) by every launch and start. A waiter registers before it reads the feed, so a
    commit between its read and its wait still wakes it.
    """

    def __init__(self, recheck_seconds: float = 0.25) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[int, list[tuple[ChangeFilter, asyncio.Event]]] = defaultdict(list)
        self._recheck_seconds = recheck_seconds
        # Set while a LISTEN connection delivers other processes' commits (PostgreSQL).
        self.listening = False

    @property
    def recheck_seconds(self) -> float | None:
        """How often a waiter re-reads for other processes' commits; None while notifications
        from them arrive (each lost or regained listening connection wakes every waiter)."""
        return None if self.listening else self._recheck_seconds

    def watch(self, workflow_id: int, wanted: ChangeFilter) -> asyncio.Event:
        """Register interest before reading the feed; the event is set by a wanted change."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters[workflow_id].append((wanted, event))
        return event

    def forget(self, workflow_id: int, event: asyncio.Event) -> None:
        """Drop a waiter that stopped waiting (it answered, or its request ended)."""
        waiters = self._waiters.get(workflow_id)
        if waiters is None:
            return
        waiters[:] = [(wanted, other) for wanted, other in waiters if other is not event]
        if not waiters:
            del self._waiters[workflow_id]

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; True when it was set."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def notify(self, written: dict[int, frozenset[tuple[str, str]]]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has waited yet: nobody to wake
        for workflow_id, changes in written.items():
            loop.call_soon_threadsafe(self._fire, workflow_id, changes)

    def _fire(self, workflow_id: int, changes: frozenset[tuple[str, str]]) -> None:
        for wanted, event in self._waiters.get(workflow_id, ()):
            if any(change in wanted for change in changes):
                event.set()

    def wake_from_elsewhere(self, written: dict[int, frozenset[tuple[str, str]]] | None) -> None:
        """Wake the waiters another process's commit concerns (every waiter for None); call on
        the event loop."""
        if written is None:
            self.wake_all()
            return
        for workflow_id, changes in written.items():
            self._fire(workflow_id, changes)

    def wake_all(self) -> None:
        """Wake every waiter, to re-read: notifications may have been missed."""
        for waiters in self._waiters.values():
            for _, event in waiters:
                event.set()


class FeedWriter:
    """Runs a unit of work that changes statuses, then wakes the followers of the feed."""

    def __init__(self, database: Database, notifier: ChangeNotifier) -> None:
        self.database = database
        self.notifier = notifier

    def __call__(self, work: Callable[[Session, ChangeRecorder], T]) -> T:
        def unit(session: Session) -> tuple[T, dict[int, frozenset[tuple[str, str]]]]:
            recorder = ChangeRecorder()  # fresh on every attempt of a retried transaction
            result = work(session, recorder)
            return result, recorder.flush(session)

        result, written = self.database.write(unit)
        # After the commit, never before: a woken follower must find the changes.
        self.notifier.notify(written)
        return result
