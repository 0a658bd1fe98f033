"""Routes the distributor calls: claim, record launches and failures, triage, kill."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core.errors import PermissionDeniedError
from herdsman.core.schemas import distributor as schemas
from herdsman.core.schemas.types import Id
from herdsman.server.api.access import CallerDep, require_run_instances
from herdsman.server.api.deps import DatabaseDep, FeedWriterDep
from herdsman.server.api.responses import CALLER_ERRORS, errors
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain import abandoned, kills, launching, queueing, runs, triage
from herdsman.server.domain.pending_reasons import PendingReasons
from herdsman.server.queries.owners import instance_runs

__all__ = ["router"]

router = APIRouter(tags=["distributor"], responses=CALLER_ERRORS)


@router.post("/workflow_runs/{run_id}/claim", responses=errors(404, 409))
def post_claim(run_id: Id, request: schemas.ClaimIn, write: FeedWriterDep) -> schemas.ClaimedOut:
    return write(lambda s, changes: queueing.claim(s, run_id, request, changes))


@router.post("/task_instances/launched", responses=errors(404, 409))
def post_launched(
    request: schemas.LaunchedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    ids = [item.task_instance_id for item in request.items]

    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, ids)
        return launching.launched(session, request, changes)

    return write(record)


@router.post("/task_instances/submit_failed", responses=errors(404, 409))
def post_submit_failed(
    request: schemas.SubmitFailedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        return launching.submit_failed(session, request, changes)

    return write(record)


@router.post("/task_instances/finish_without_running", responses=errors(404, 409))
def post_finish_without_running(
    request: schemas.FinishIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        return launching.finish_without_running(session, request, changes)

    return write(record)


@router.post("/workflow_runs/{run_id}/triage", responses=errors(404, 409))
def post_triage(
    run_id: Id, write: FeedWriterDep, db: DatabaseDep, request: schemas.TriageIn | None = None
) -> schemas.TriageOut:
    judge_silence = request is None or request.judge_silence
    reply = write(
        lambda s, changes: triage.triage_scan(s, run_id, changes, judge_silence=judge_silence)
    )
    # The run is attended: the reaper leaves its live attempts to this distributor.
    db.write(lambda s: abandoned.record_triage(s, run_id))
    return reply


@router.post("/task_instances/triaged", responses=errors(404, 409))
def post_triaged(
    request: schemas.TriagedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    ids = [item.task_instance_id for item in request.items]

    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, ids)
        return triage.triaged(session, request, changes)

    return write(record)


@router.post("/task_instances/killed", responses=errors(404, 409))
def post_killed(
    request: schemas.KilledIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        reply, run_ids = kills.kills_done(session, request, changes)
        runs.release_settled(session, run_ids, changes)
        return reply

    return write(record)


@router.post("/workflow_runs/{run_id}/pending_reasons", responses=errors(404))
async def post_pending_reasons(
    run_id: Id, body: schemas.PendingReasonsIn, db: DatabaseDep, request: Request
) -> schemas.PendingReasonsOut:
    """Why the cluster has yet to start the run's launched instances, at the distributor's
    last poll; kept in this server's memory (see :mod:`~herdsman.server.domain.pending_reasons`
    for why that is enough)."""
    reasons = {item.task_instance_id: item.reason for item in body.items}
    if reasons:
        found = await run_in_threadpool(db.read, lambda s: instance_runs(s, list(reasons)))
        if found - {run_id}:
            raise PermissionDeniedError(
                f"workflow run {run_id} may report only on its own task instances",
                details={"workflow_run_ids": sorted(found - {run_id})},
            )
    store: PendingReasons = request.app.state.pending_reasons
    store.report(run_id, body.scheduler, reasons)
    return schemas.PendingReasonsOut(recorded=len(reasons))
