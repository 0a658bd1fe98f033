"""Routes the distributor calls: claim queued instances, record launches and failures."""

from __future__ import annotations

from fastapi import APIRouter

from herdsman.core.schemas import distributor as schemas
from herdsman.server import instances
from herdsman.server.deps import FeedWriterDep

__all__ = ["router"]

router = APIRouter(tags=["distributor"])


@router.post("/workflow_runs/{run_id}/claim")
def post_claim(run_id: int, request: schemas.ClaimIn, write: FeedWriterDep) -> schemas.ClaimedOut:
    return write(lambda s, changes: instances.claim(s, run_id, request.limit, changes))


@router.post("/task_instances/launched")
def post_launched(request: schemas.LaunchedIn, write: FeedWriterDep) -> schemas.TransitionsOut:
    return write(lambda s, changes: instances.launched(s, request, changes))


@router.post("/task_instances/submit_failed")
def post_submit_failed(
    request: schemas.SubmitFailedIn, write: FeedWriterDep
) -> schemas.TransitionsOut:
    return write(lambda s, changes: instances.submit_failed(s, request, changes))


@router.post("/task_instances/finish_without_running")
def post_finish_without_running(
    request: schemas.FinishIn, write: FeedWriterDep
) -> schemas.TransitionsOut:
    return write(lambda s, changes: instances.finish_without_running(s, request, changes))
