"""Routes the worker wrapper calls from the compute node: running, heartbeat, done, error.

``/task_instances/reports`` takes the same reports in batches, for local pools whose
distributor reports for all of its processes (:mod:`herdsman.server.domain.worker_reports`).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from herdsman.core.schemas import worker as schemas
from herdsman.core.schemas.types import Id
from herdsman.server.api.access import CallerDep, require_run_instances
from herdsman.server.api.deps import DatabaseDep, FeedWriterDep
from herdsman.server.api.responses import CALLER_ERRORS, errors
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain import worker_reports

__all__ = ["router"]

router = APIRouter(tags=["worker"], responses=CALLER_ERRORS)


@router.post("/task_instances/reports", responses=errors(409))
def post_reports(
    request: schemas.InstanceReportsIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.InstanceReportsOut:
    ids = [report.task_instance_id for report in request.reports]

    def record(session: Session, changes: ChangeRecorder) -> schemas.InstanceReportsOut:
        require_run_instances(session, caller, ids)
        return worker_reports.apply_reports(session, request, changes)

    return write(record)


@router.post("/task_instances/{instance_id}/running", responses=errors(404, 409))
def post_running(
    instance_id: Id, request: schemas.InstanceRunningIn, write: FeedWriterDep
) -> schemas.InstanceRunningOut:
    return write(
        lambda s, changes: worker_reports.instance_running(s, instance_id, request, changes)
    )


@router.post("/task_instances/{instance_id}/heartbeat", responses=errors(404, 409))
def post_heartbeat(
    instance_id: Id, request: schemas.InstanceHeartbeatIn, db: DatabaseDep
) -> schemas.InstanceStatusOut:
    return db.write(lambda s: worker_reports.instance_heartbeat(s, instance_id, request))


@router.post("/task_instances/{instance_id}/done", responses=errors(404, 409))
def post_done(
    instance_id: Id, request: schemas.InstanceDoneIn, write: FeedWriterDep
) -> schemas.InstanceStatusOut:
    return write(lambda s, changes: worker_reports.instance_done(s, instance_id, request, changes))


@router.post("/task_instances/{instance_id}/error", responses=errors(404, 409))
def post_error(
    instance_id: Id, request: schemas.InstanceErrorIn, write: FeedWriterDep
) -> schemas.InstanceStatusOut:
    return write(lambda s, changes: worker_reports.instance_error(s, instance_id, request, changes))
