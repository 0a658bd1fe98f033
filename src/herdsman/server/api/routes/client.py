"""Routes the client calls to bind a workflow: bulk, idempotent get-or-create."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from herdsman import __version__
from herdsman.core.schemas import client as schemas
from herdsman.core.schemas.types import CatalogueId, Id
from herdsman.server.api import input_limits
from herdsman.server.api.access import CallerDep
from herdsman.server.api.deps import (
    DatabaseDep,
    FeedWriterDep,
    LimitsDep,
    json_body,
    parse_json_body,
)
from herdsman.server.api.responses import METERED_ERRORS, PUBLIC_ERRORS, errors
from herdsman.server.domain import binding as bind
from herdsman.server.domain import clusters, reuse

__all__ = ["public_router", "router"]

# Routes anyone may call, without credentials.
public_router = APIRouter(tags=["client"], responses=PUBLIC_ERRORS)
router = APIRouter(tags=["client"], responses=METERED_ERRORS)


@public_router.get("/health")
def health(db: DatabaseDep, limits: LimitsDep) -> schemas.HealthOut:
    """The server is up; its version, its database engine and the input limits it enforces."""
    return schemas.HealthOut(status="ok", version=__version__, database=db.dialect, limits=limits)


@router.get("/clusters/{name}", responses=errors(404))
def get_cluster(name: str, db: DatabaseDep) -> schemas.ClusterOut:
    return db.read(lambda s: clusters.get_cluster(s, name))


@router.put("/tools", responses=errors(409))
def put_tool(request: schemas.ToolIn, db: DatabaseDep) -> schemas.ToolOut:
    return db.write(lambda s: bind.get_or_create_tool(s, request.name))


@router.post("/tools/{tool_id}/versions", responses=errors(404, 409))
def post_tool_version(
    tool_id: CatalogueId, db: DatabaseDep, request: schemas.ToolVersionIn | None = None
) -> schemas.IdOut:
    key = request.request_key if request is not None else None
    return schemas.IdOut(id=db.write(lambda s: bind.new_tool_version(s, tool_id, key)))


@router.put("/task_templates", responses=errors(404, 409))
def put_task_template(request: schemas.TaskTemplateIn, db: DatabaseDep) -> schemas.IdOut:
    return schemas.IdOut(id=db.write(lambda s: bind.get_or_create_template(s, request)))


@router.put("/task_template_versions", responses=errors(404, 409))
def put_task_template_version(
    request: schemas.TaskTemplateVersionIn, db: DatabaseDep, limits: LimitsDep
) -> schemas.TaskTemplateVersionOut:
    input_limits.check_template_version(limits, request)
    return db.write(lambda s: bind.get_or_create_template_version(s, request))


@router.put("/nodes", openapi_extra=json_body(schemas.NodesIn), responses=errors(404, 409))
async def put_nodes(request: Request, db: DatabaseDep, limits: LimitsDep) -> schemas.IdsOut:
    body = await parse_json_body(request, schemas.NodesIn)
    input_limits.check_nodes(limits, body)
    ids = await run_in_threadpool(db.write, lambda s: bind.bind_nodes(s, body))
    return schemas.IdsOut(ids=ids)


@router.put("/dags", responses=errors(409))
def put_dag(request: schemas.DagIn, db: DatabaseDep, caller: CallerDep) -> schemas.DagOut:
    return db.write(lambda s: bind.get_or_create_dag(s, request.hash, caller.user))


@router.put(
    "/dags/{dag_id}/edges", openapi_extra=json_body(schemas.EdgesIn), responses=errors(404, 409)
)
async def put_edges(dag_id: Id, request: Request, db: DatabaseDep) -> schemas.CountOut:
    body = await parse_json_body(request, schemas.EdgesIn)
    count = await run_in_threadpool(db.write, lambda s: bind.bind_edges(s, dag_id, body))
    return schemas.CountOut(count=count)


@router.post("/dags/{dag_id}/complete", responses=errors(404))
def post_dag_complete(dag_id: Id, db: DatabaseDep) -> schemas.DagOut:
    return db.write(lambda s: bind.complete_dag(s, dag_id))


@router.put("/workflows", responses=errors(404, 409))
def put_workflow(
    request: schemas.WorkflowIn, db: DatabaseDep, limits: LimitsDep, caller: CallerDep
) -> schemas.WorkflowOut:
    input_limits.check_workflow(limits, request)
    return db.write(
        lambda s: bind.get_or_create_workflow(s, request, caller.user, admin=caller.is_admin)
    )


@router.put("/workflows/{workflow_id}/arrays", responses=errors(404, 409))
def put_arrays(workflow_id: Id, request: schemas.ArraysIn, db: DatabaseDep) -> schemas.IdsOut:
    return schemas.IdsOut(ids=db.write(lambda s: bind.bind_arrays(s, workflow_id, request.arrays)))


@router.put("/task_resources", responses=errors(404, 409))
def put_task_resources(request: schemas.ResourcesIn, db: DatabaseDep) -> schemas.IdsOut:
    return schemas.IdsOut(ids=db.write(lambda s: bind.bind_resources(s, request.items)))


@router.put(
    "/workflows/{workflow_id}/tasks",
    openapi_extra=json_body(schemas.TasksIn),
    responses=errors(404, 409),
)
async def put_tasks(
    workflow_id: Id, request: Request, write: FeedWriterDep, limits: LimitsDep
) -> schemas.TasksOut:
    body = await parse_json_body(request, schemas.TasksIn)
    input_limits.check_tasks(limits, body)
    return await run_in_threadpool(
        write, lambda s, changes: bind.bind_tasks(s, workflow_id, body, changes)
    )


@router.post("/workflows/{workflow_id}/bound", responses=errors(404, 409))
def post_workflow_bound(
    workflow_id: Id, write: FeedWriterDep, resume: bool = False
) -> schemas.WorkflowBoundOut:
    """Mark the workflow bound; with ``resume``, done tasks downstream of tasks that run are
    sent back to run again."""
    return write(
        lambda s, changes: bind.finish_workflow_bind(s, workflow_id, changes, resume=resume)
    )


@router.post("/workflow_plans")
def post_workflow_plan(
    request: schemas.PlanIn, db: DatabaseDep, limits: LimitsDep, caller: CallerDep
) -> schemas.PlanOut:
    """What binding these tasks with ``resume`` would do to their workflow; writes nothing."""
    input_limits.check_plan(limits, request)
    return db.read(lambda s: reuse.plan(s, request, caller.user, admin=caller.is_admin))
