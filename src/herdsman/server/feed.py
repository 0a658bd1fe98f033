"""The change feed: every status change of a workflow's tasks, instances and runs, numbered.

Followers (the swarm, the distributor) read "changes after N" and must never miss one. The
danger is commit order: if transaction A takes number 7 and transaction B number 8, and B
commits first, a follower reading at that moment sees 8, moves its cursor past 7, and never
sees 7. So numbers are taken by incrementing ``workflow.change_seq`` as the last statement of
the transaction: the row lock this takes (PostgreSQL, MariaDB; SQLite's single writer lock
does the same) is held until commit, so a second writer of the same workflow waits for the
first to commit before it can take the next number. Numbers therefore become visible in
order, without gaps, on every engine, and the lock is held only for the last few statements.

Waiting followers are woken in-process right after the commit (see :class:`ChangeNotifier`);
followers served by another server process notice at their next short re-read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman.core.errors import NotFoundError
from herdsman.core.schemas.swarm import ChangeOut, ChangesOut
from herdsman.server import models
from herdsman.server.bulk import insert_ignore

__all__ = ["ChangeNotifier", "ChangeRecorder", "read_changes"]

logger = structlog.get_logger(__name__)

MAX_CHANGES_PER_READ = 10_000


@dataclass
class ChangeRecorder:
    """Collects a transaction's status changes; :meth:`flush` numbers and writes them."""

    _pending: dict[int, list[tuple[str, int, str, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def record(
        self, workflow_id: int, kind: str, object_id: int, status: str, task_id: int | None = None
    ) -> None:
        self._pending[workflow_id].append((kind, object_id, status, task_id))

    def task(self, workflow_id: int, task_id: int, status: str) -> None:
        self.record(workflow_id, "T", task_id, status)

    def instance(self, workflow_id: int, instance_id: int, status: str, task_id: int) -> None:
        self.record(workflow_id, "I", instance_id, status, task_id)

    def run(self, workflow_id: int, run_id: int, status: str) -> None:
        self.record(workflow_id, "R", run_id, status)

    def flush(self, session: Session) -> list[int]:
        """Number and insert the changes; call last in the transaction. Returns workflow ids."""
        workflows = sorted(self._pending)  # a fixed order, so two writers cannot deadlock
        for workflow_id in workflows:
            changes = self._pending[workflow_id]
            session.execute(
                update(models.Workflow)
                .where(models.Workflow.id == workflow_id)
                .values(change_seq=models.Workflow.change_seq + len(changes))
            )
            last = session.scalars(
                select(models.Workflow.change_seq).where(models.Workflow.id == workflow_id)
            ).one()
            first = last - len(changes) + 1
            insert_ignore(
                session,
                models.StatusChange,
                ("workflow_id", "seq", "kind", "object_id", "status", "task_id"),
                [
                    (workflow_id, first + offset, kind, object_id, status, task_id)
                    for offset, (kind, object_id, status, task_id) in enumerate(changes)
                ],
            )
        self._pending.clear()
        return workflows


def read_changes(session: Session, workflow_id: int, after: int, kinds: str) -> ChangesOut:
    """Changes of ``kinds`` with seq > ``after``, oldest first, at most 10,000."""
    change = models.StatusChange
    query = (
        select(change.seq, change.kind, change.object_id, change.status, change.task_id)
        .where(change.workflow_id == workflow_id, change.seq > after)
        .order_by(change.seq)
        .limit(MAX_CHANGES_PER_READ)
    )
    rows = session.execute(query).tuples().all()
    if not rows and session.get(models.Workflow, workflow_id) is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
    # Only rows this read returned may advance the cursor: a second query for the counter could
    # see commits made after the first (each statement has its own snapshot in READ COMMITTED).
    return ChangesOut(
        last_seq=rows[-1][0] if rows else after,
        changes=[
            ChangeOut(seq=seq, kind=kind, id=object_id, status=status, task_id=task_id)
            for seq, kind, object_id, status, task_id in rows
            if kind in kinds
        ],
    )


class ChangeNotifier:
    """Wakes long-poll requests of this server process when their workflow changed.

    ``notify`` is called from worker threads after a commit; waiters are coroutines on the
    event loop. Each workflow has one event, replaced when it fires, so a waiter can never
    miss a notification that happened after it started waiting.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[int, asyncio.Event] = {}

    def watch(self, workflow_id: int) -> asyncio.Event:
        """The event the next change of the workflow sets; take it *before* reading changes,
        so a commit between the read and the wait still wakes the waiter. Call on the loop."""
        self._loop = asyncio.get_running_loop()
        event = self._events.get(workflow_id)
        if event is None:
            event = self._events[workflow_id] = asyncio.Event()
        return event

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; True when it was set."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def notify(self, workflow_ids: Iterable[int]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has waited yet: nobody to wake
        for workflow_id in workflow_ids:
            loop.call_soon_threadsafe(self._fire, workflow_id)

    def _fire(self, workflow_id: int) -> None:
        event = self._events.pop(workflow_id, None)
        if event is not None:
            event.set()
