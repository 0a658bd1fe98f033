"""Routes the distributor calls: claim, record launches and failures, triage, kill."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from herdsman.core.schemas import distributor as schemas
from herdsman.server.api.access import CallerDep, require_run_instances
from herdsman.server.api.deps import FeedWriterDep
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain import kills, launching, queueing, runs, triage

__all__ = ["router"]

router = APIRouter(tags=["distributor"])


@router.post("/workflow_runs/{run_id}/claim")
def post_claim(run_id: int, request: schemas.ClaimIn, write: FeedWriterDep) -> schemas.ClaimedOut:
    return write(lambda s, changes: queueing.claim(s, run_id, request, changes))


@router.post("/task_instances/launched")
def post_launched(
    request: schemas.LaunchedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    ids = [item.task_instance_id for item in request.items]

    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, ids)
        return launching.launched(session, request, changes)

    return write(record)


@router.post("/task_instances/submit_failed")
def post_submit_failed(
    request: schemas.SubmitFailedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        return launching.submit_failed(session, request, changes)

    return write(record)


@router.post("/task_instances/finish_without_running")
def post_finish_without_running(
    request: schemas.FinishIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        return launching.finish_without_running(session, request, changes)

    return write(record)


@router.post("/workflow_runs/{run_id}/triage")
def post_triage(
    run_id: int, write: FeedWriterDep, request: schemas.TriageIn | None = None
) -> schemas.TriageOut:
    judge_silence = request is None or request.judge_silence
    return write(
        lambda s, changes: triage.triage_scan(s, run_id, changes, judge_silence=judge_silence)
    )


@router.post("/task_instances/triaged")
def post_triaged(
    request: schemas.TriagedIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    ids = [item.task_instance_id for item in request.items]

    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, ids)
        return triage.triaged(session, request, changes)

    return write(record)


@router.post("/task_instances/killed")
def post_killed(
    request: schemas.KilledIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.TransitionsOut:
    def record(session: Session, changes: ChangeRecorder) -> schemas.TransitionsOut:
        require_run_instances(session, caller, request.task_instance_ids)
        reply, run_ids = kills.kills_done(session, request, changes)
        runs.release_settled(session, run_ids, changes)
        return reply

    return write(record)
