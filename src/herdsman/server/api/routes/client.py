"""Routes the client calls to bind a workflow: bulk, idempotent get-or-create."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from herdsman import __version__
from herdsman.core.schemas import client as schemas
from herdsman.server.api.access import CallerDep
from herdsman.server.api.deps import DatabaseDep, json_body, parse_json_body
from herdsman.server.domain import binding as bind
from herdsman.server.domain import clusters

__all__ = ["router"]

router = APIRouter(tags=["client"])


@router.get("/health")
def health(db: DatabaseDep) -> schemas.HealthOut:
    return schemas.HealthOut(status="ok", version=__version__, database=db.dialect)


@router.get("/clusters/{name}")
def get_cluster(name: str, db: DatabaseDep) -> schemas.ClusterOut:
    return db.read(lambda s: clusters.get_cluster(s, name))


@router.put("/tools")
def put_tool(request: schemas.ToolIn, db: DatabaseDep) -> schemas.ToolOut:
    return db.write(lambda s: bind.get_or_create_tool(s, request.name))


@router.post("/tools/{tool_id}/versions")
def post_tool_version(
    tool_id: int, db: DatabaseDep, request: schemas.ToolVersionIn | None = None
) -> schemas.IdOut:
    key = request.request_key if request is not None else None
    return schemas.IdOut(id=db.write(lambda s: bind.new_tool_version(s, tool_id, key)))


@router.put("/task_templates")
def put_task_template(request: schemas.TaskTemplateIn, db: DatabaseDep) -> schemas.IdOut:
    return schemas.IdOut(id=db.write(lambda s: bind.get_or_create_template(s, request)))


@router.put("/task_template_versions")
def put_task_template_version(
    request: schemas.TaskTemplateVersionIn, db: DatabaseDep
) -> schemas.TaskTemplateVersionOut:
    return db.write(lambda s: bind.get_or_create_template_version(s, request))


@router.put("/nodes", openapi_extra=json_body(schemas.NodesIn))
async def put_nodes(request: Request, db: DatabaseDep) -> schemas.IdsOut:
    body = await parse_json_body(request, schemas.NodesIn)
    ids = await run_in_threadpool(db.write, lambda s: bind.bind_nodes(s, body))
    return schemas.IdsOut(ids=ids)


@router.put("/dags")
def put_dag(request: schemas.DagIn, db: DatabaseDep, caller: CallerDep) -> schemas.DagOut:
    return db.write(lambda s: bind.get_or_create_dag(s, request.hash, caller.user))


@router.put("/dags/{dag_id}/edges", openapi_extra=json_body(schemas.EdgesIn))
async def put_edges(dag_id: int, request: Request, db: DatabaseDep) -> schemas.CountOut:
    body = await parse_json_body(request, schemas.EdgesIn)
    count = await run_in_threadpool(db.write, lambda s: bind.bind_edges(s, dag_id, body))
    return schemas.CountOut(count=count)


@router.post("/dags/{dag_id}/complete")
def post_dag_complete(dag_id: int, db: DatabaseDep) -> schemas.DagOut:
    return db.write(lambda s: bind.complete_dag(s, dag_id))


@router.put("/workflows")
def put_workflow(
    request: schemas.WorkflowIn, db: DatabaseDep, caller: CallerDep
) -> schemas.WorkflowOut:
    return db.write(
        lambda s: bind.get_or_create_workflow(s, request, caller.user, admin=caller.is_admin)
    )


@router.put("/workflows/{workflow_id}/arrays")
def put_arrays(workflow_id: int, request: schemas.ArraysIn, db: DatabaseDep) -> schemas.IdsOut:
    return schemas.IdsOut(ids=db.write(lambda s: bind.bind_arrays(s, workflow_id, request.arrays)))


@router.put("/task_resources")
def put_task_resources(request: schemas.ResourcesIn, db: DatabaseDep) -> schemas.IdsOut:
    return schemas.IdsOut(ids=db.write(lambda s: bind.bind_resources(s, request.items)))


@router.put("/workflows/{workflow_id}/tasks", openapi_extra=json_body(schemas.TasksIn))
async def put_tasks(workflow_id: int, request: Request, db: DatabaseDep) -> schemas.TasksOut:
    body = await parse_json_body(request, schemas.TasksIn)
    return await run_in_threadpool(db.write, lambda s: bind.bind_tasks(s, workflow_id, body))


@router.post("/workflows/{workflow_id}/bound")
def post_workflow_bound(workflow_id: int, db: DatabaseDep) -> schemas.WorkflowBoundOut:
    return db.write(lambda s: bind.finish_workflow_bind(s, workflow_id))
