"""Who owns what a request names: the facts the access policy needs, cached.

A workflow's owner, a run's or task's workflow and an instance's run never change once
written, so each process keeps what it has looked up; the cache is bounded, and a miss costs
one indexed read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.core.errors import NotFoundError
from herdsman.server.database import models, sql
from herdsman.server.database.engine import Database

__all__ = ["Ownership", "OwnershipCache"]

CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Ownership:
    """The workflow a row belongs to, its owner, and the run where the row is a run's."""

    workflow_id: int | None
    owner: str
    workflow_run_id: int | None = None


class OwnershipCache:
    """Ownership of workflows, runs, tasks, instances and DAGs by id, read once each."""

    def __init__(self, database: Database, size: int = CACHE_SIZE) -> None:
        self._database = database
        self._size = size
        self._known: OrderedDict[tuple[str, int], Ownership] = OrderedDict()

    def cached(self, kind: str, row_id: int) -> Ownership | None:
        return self._known.get((kind, row_id))

    def lookup(self, kind: str, row_id: int) -> Ownership:
        """The ownership of row ``row_id`` of ``kind`` (a path parameter's name)."""
        key = (kind, row_id)
        found = self._known.get(key)
        if found is None:
            found = self._database.read(lambda s: _READERS[kind](s, row_id))
            self._known[key] = found
            if len(self._known) > self._size:
                self._known.popitem(last=False)
        return found


def _workflow(session: Session, workflow_id: int) -> Ownership:
    owner = session.scalar(select(models.Workflow.user).where(models.Workflow.id == workflow_id))
    if owner is None:
        raise NotFoundError(f"workflow {workflow_id} does not exist")
    return Ownership(workflow_id, owner)


def _run(session: Session, run_id: int) -> Ownership:
    row = session.execute(
        select(models.WorkflowRun.workflow_id, models.Workflow.user)
        .join(models.Workflow, models.Workflow.id == models.WorkflowRun.workflow_id)
        .where(models.WorkflowRun.id == run_id)
    ).first()
    if row is None:
        raise NotFoundError(f"workflow run {run_id} does not exist")
    return Ownership(row.workflow_id, row.user, run_id)


def _task(session: Session, task_id: int) -> Ownership:
    row = session.execute(
        select(models.Task.workflow_id, models.Workflow.user)
        .join(models.Workflow, models.Workflow.id == models.Task.workflow_id)
        .where(models.Task.id == task_id)
    ).first()
    if row is None:
        raise NotFoundError(f"task {task_id} does not exist")
    return Ownership(row.workflow_id, row.user)


def _instance(session: Session, instance_id: int) -> Ownership:
    row = session.execute(
        select(models.TaskInstance.workflow_run_id, models.WorkflowRun.workflow_id)
        .join(models.WorkflowRun, models.WorkflowRun.id == models.TaskInstance.workflow_run_id)
        .where(models.TaskInstance.id == instance_id)
    ).first()
    if row is None:
        raise NotFoundError(f"task instance {instance_id} does not exist")
    return Ownership(row.workflow_id, "", row.workflow_run_id)


def _dag(session: Session, dag_id: int) -> Ownership:
    owner = session.scalar(select(models.Dag.user).where(models.Dag.id == dag_id))
    if owner is None:
        raise NotFoundError(f"DAG {dag_id} does not exist")
    return Ownership(None, owner)


_READERS: dict[str, Callable[[Session, int], Ownership]] = {
    "workflow_id": _workflow,
    "run_id": _run,
    "task_id": _task,
    "instance_id": _instance,
    "dag_id": _dag,
}

PATH_PARAMETERS = frozenset(_READERS)


def instance_runs(session: Session, instance_ids: list[int]) -> set[int]:
    """The runs the given task instances belong to (ids that do not exist are left out)."""
    if not instance_ids:
        return set()
    runs: set[int] = set()
    unique = sorted(set(instance_ids))
    for start in range(0, len(unique), _IDS_PER_READ):
        condition, params = sql.id_in(session, "id", unique[start : start + _IDS_PER_READ])
        rows = sql.fetch_all(
            session, f"SELECT DISTINCT workflow_run_id FROM task_instance WHERE {condition}", params
        )
        runs.update(row[0] for row in rows)
    return runs


# Ids per statement: far below every engine's limit on bound parameters (SQLite's 32,766).
_IDS_PER_READ = 1000
