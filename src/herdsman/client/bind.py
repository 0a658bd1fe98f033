"""Binding: writing a validated workflow to the server in chunks.

The order follows the references between rows: tool version, templates, nodes, the DAG and its
edges, the workflow, its arrays, resources, tasks, and finally the mark that the workflow is
complete. Each step is a bulk get-or-create, so a bind interrupted anywhere (a crash, a lost
connection) is finished by binding again, and binding an unchanged workflow writes nothing.

Tasks are walked in chunks of ``bind.chunk_size``; each chunk's request is built, sent and
dropped, and at most :data:`IN_FLIGHT` requests exist at once. A chunk over the server's limit
on request bodies is sent in several requests (see :mod:`herdsman.client.bind_requests`).
Requests go out from a helper thread, so the client builds chunk k+1 while the server writes
chunk k. What stays in memory is one node id and one task id per task.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pydantic import BaseModel

from herdsman.client import bind_requests
from herdsman.client.identity import SetHash, hash_text, hash_values63
from herdsman.client.resolution import ResolvedResources
from herdsman.client.resources import DEFAULT_RESOURCE_SCALES
from herdsman.client.task import Task
from herdsman.client.task_template import TaskTemplateVersion
from herdsman.core.config import load_settings
from herdsman.core.schemas import client as schemas

if TYPE_CHECKING:
    from herdsman.client.workflow import Workflow

__all__ = ["IN_FLIGHT", "Binder"]

logger = structlog.get_logger(__name__)

# Requests sent but not yet answered. Two keep both processes busy; more only hold memory.
IN_FLIGHT = 2

R = TypeVar("R", bound=BaseModel)

# Scales equal to the defaults are stored as "", which every reader takes for the defaults
# (herdsman.client.scaling.adjust_request): 31 bytes less in each of a million task rows.
_DEFAULT_SCALES_JSON = json.dumps(dict(DEFAULT_RESOURCE_SCALES), sort_keys=True)

# A node's member in the DAG hash is (node id, _NODE_MARK); edges are (upstream, downstream)
# with positive ids, so the two kinds of member cannot coincide.
_NODE_MARK = -1


def _chunks(tasks: Sequence[Task], size: int) -> Iterator[Sequence[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


class _Pipeline:
    """Sends requests in order from one helper thread and hands each reply to its callback.

    Callbacks run in the caller's thread, in submission order, so they need no locks.
    """

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herdsman-bind")
        self._pending: deque[tuple[Future[Any], Callable[[Any], None]]] = deque()

    def submit(self, send: Callable[[], R], on_reply: Callable[[R], None]) -> None:
        self._pending.append((self._executor.submit(send), on_reply))
        while len(self._pending) > IN_FLIGHT:
            self._complete_oldest()

    def drain(self) -> None:
        while self._pending:
            self._complete_oldest()

    def close(self) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._executor.shutdown(wait=True)

    def _complete_oldest(self) -> None:
        future, on_reply = self._pending.popleft()
        on_reply(future.result())


class Binder:
    """Writes one workflow; create, call :meth:`bind` once."""

    def __init__(self, workflow: Workflow, *, resume: bool = False) -> None:
        self.workflow = workflow
        # A resume may change the tasks of a workflow that exists (herdsman.server.domain.reuse)
        self.resume = resume
        # How many stored tasks the bind removed: a resume's script no longer had them.
        self.removed = 0
        self.requester = workflow.requester
        self.resolver = workflow.resolver()
        self.chunk_size = workflow.chunk_size or load_settings().bind.chunk_size
        # Bulk requests are split further where a chunk would be over the server's body limit.
        self.max_request_bytes = workflow.limits().max_request_bytes
        # In creation order, so that new task ids follow the script (a near-sorted list: the
        # sort costs a pass over it).
        self.tasks: list[Task] = sorted(workflow.tasks.values(), key=attrgetter("creation_index"))
        self._task_args_hashes: dict[tuple[str, ...], int] = {}
        self._resource_ids: dict[str, tuple[int, int]] = {}
        self._json_cache: dict[int, str] = {}
        self._pipeline = _Pipeline()

    def bind(self) -> int:
        try:
            return self._bind()
        finally:
            self._pipeline.close()

    def _bind(self) -> int:
        tool_version_id = self.workflow.tool.active_tool_version_id
        versions = self._bind_templates(tool_version_id)
        task_hash, dag_hash = self._bind_nodes()
        dag_id = self._bind_dag(dag_hash)
        workflow = bind_requests.put_workflow(
            self.requester,
            schemas.WorkflowIn(
                tool_version_id=tool_version_id,
                dag_id=dag_id,
                workflow_args=self.workflow.workflow_args,
                workflow_args_hash=hash_text(self.workflow.workflow_args),
                task_hash=task_hash.hexdigest(),
                name=self.workflow.name,
                description=self.workflow.description,
                max_concurrently_running=self.workflow.max_concurrently_running,
                num_tasks=len(self.tasks),
                attributes=self.workflow.workflow_attributes,
                resume=self.resume,
            ),
        )
        array_ids = self._bind_arrays(workflow.id, versions)
        self._bind_tasks(workflow.id, array_ids)
        bound = bind_requests.mark_bound(self.requester, workflow.id, resume=self.resume)
        self.removed = bound.removed
        logger.info(
            "workflow_bound", workflow_id=workflow.id, tasks=bound.num_tasks, removed=bound.removed
        )
        return workflow.id

    # --- templates ----------------------------------------------------------------------------

    def _bind_templates(self, tool_version_id: int) -> list[TaskTemplateVersion]:
        versions = list(dict.fromkeys(task.template_version for task in self.tasks))
        for version in versions:
            template = version.template
            template.id = bind_requests.put_task_template(
                self.requester,
                schemas.TaskTemplateIn(tool_version_id=tool_version_id, name=template.name),
            ).id
            reply = bind_requests.put_task_template_version(
                self.requester,
                schemas.TaskTemplateVersionIn(
                    task_template_id=template.id,
                    command_template=version.command_template,
                    node_args=list(version.node_args),
                    task_args=list(version.task_args),
                    op_args=list(version.op_args),
                ),
            )
            version.id = reply.id
            version.arg_ids = reply.arg_ids
        return versions

    # --- nodes and the DAG --------------------------------------------------------------------

    def _bind_nodes(self) -> tuple[SetHash, SetHash]:
        """Give every task its node id; hash the set of tasks and the DAG's nodes."""
        task_hash, dag_hash = SetHash(), SetHash()

        def assign(tasks: list[Task]) -> Callable[[schemas.IdsOut], None]:
            def on_reply(reply: schemas.IdsOut) -> None:
                for task, node_id in zip(tasks, reply.ids, strict=True):
                    task.node_id = node_id
                    task_hash.add_pair(node_id, self._task_args_hash(task))
                    dag_hash.add_pair(node_id, _NODE_MARK)

            return on_reply

        for chunk in _chunks(self.tasks, self.chunk_size):
            by_version: dict[TaskTemplateVersion, list[Task]] = {}
            for task in chunk:
                by_version.setdefault(task.template_version, []).append(task)
            for version, tasks in by_version.items():
                body = schemas.NodesIn.model_construct(
                    task_template_version_id=version.id or 0,  # set by _bind_templates
                    arg_ids=[version.arg_ids[name] for name in version.node_args],
                    node_args_hashes=[hash_values63(t.node_values) for t in tasks],
                    # The tasks' own tuples: JSON arrays on the wire (see bind_requests).
                    values=[t.node_values for t in tasks],  # type: ignore[misc]
                )
                self._pipeline.submit(
                    partial(bind_requests.put_nodes, self.requester, body, self.max_request_bytes),
                    assign(tasks),
                )
        self._pipeline.drain()
        return task_hash, dag_hash

    def _task_args_hash(self, task: Task) -> int:
        found = self._task_args_hashes.get(task.task_values)
        if found is None:
            found = hash_values63(task.task_values)
            self._task_args_hashes[task.task_values] = found
        return found

    def _edge_chunks(self) -> Iterator[tuple[list[int], list[int]]]:
        upstream: list[int] = []
        downstream: list[int] = []
        for task in self.tasks:
            for up in task.iter_upstream():
                upstream.append(up.node_id)  # type: ignore[arg-type]
                downstream.append(task.node_id)  # type: ignore[arg-type]
            if len(upstream) >= self.chunk_size:
                yield upstream, downstream
                upstream, downstream = [], []
        if upstream:
            yield upstream, downstream

    def _bind_dag(self, dag_hash: SetHash) -> int:
        for upstream, downstream in self._edge_chunks():
            for up, down in zip(upstream, downstream, strict=True):
                dag_hash.add_pair(up, down)
        dag = bind_requests.put_dag(self.requester, schemas.DagIn(hash=dag_hash.hexdigest()))
        if not dag.complete:
            for upstream, downstream in self._edge_chunks():
                body = schemas.EdgesIn.model_construct(upstream=upstream, downstream=downstream)
                send = partial(
                    bind_requests.put_edges, self.requester, dag.id, body, self.max_request_bytes
                )
                self._pipeline.submit(send, lambda _: None)
            self._pipeline.drain()
            bind_requests.complete_dag(self.requester, dag.id)
        return dag.id

    # --- arrays, resources, tasks -------------------------------------------------------------

    def _bind_arrays(
        self, workflow_id: int, versions: list[TaskTemplateVersion]
    ) -> dict[TaskTemplateVersion, int]:
        reply = bind_requests.put_arrays(
            self.requester,
            workflow_id,
            schemas.ArraysIn(
                arrays=[
                    schemas.ArrayIn(
                        task_template_version_id=version.id or 0,
                        name=version.template.name,
                        max_concurrently_running=self.workflow.array_limit(version),
                    )
                    for version in versions
                ]
            ),
        )
        return dict(zip(versions, reply.ids, strict=True))

    def _bind_tasks(self, workflow_id: int, array_ids: dict[TaskTemplateVersion, int]) -> None:
        task_arg_ids = {
            array_ids[version]: [version.arg_ids[name] for name in version.task_args]
            for version in array_ids
        }

        def assign(tasks: Sequence[Task]) -> Callable[[schemas.TasksOut], None]:
            def on_reply(reply: schemas.TasksOut) -> None:
                for task, task_id, status in zip(tasks, reply.ids, reply.statuses, strict=True):
                    task.task_id = task_id
                    task.status = status
                    task.array_id = array_ids[task.template_version]

            return on_reply

        for chunk in _chunks(self.tasks, self.chunk_size):
            resolved = [self.resolver.resources(task) for task in chunk]
            self._bind_resources(resolved)
            body = self._tasks_body(chunk, resolved, array_ids, task_arg_ids)
            send = partial(
                bind_requests.put_tasks, self.requester, workflow_id, body, self.max_request_bytes
            )
            self._pipeline.submit(send, assign(chunk))
        self._pipeline.drain()

    def _bind_resources(self, resolved: list[ResolvedResources]) -> None:
        new = list({r.key: r for r in resolved if r.key not in self._resource_ids}.values())
        if not new:
            return
        items = []
        for resources in new:
            queue_id = resources.validated.queue.id
            items.append(
                schemas.ResourcesItemIn(
                    kind="original", queue_id=queue_id, requested=resources.original
                )
            )
            items.append(
                schemas.ResourcesItemIn(
                    kind="validated", queue_id=queue_id, requested=resources.validated.requested
                )
            )
        reply = bind_requests.put_resources(self.requester, schemas.ResourcesIn(items=items))
        for index, resources in enumerate(new):
            self._resource_ids[resources.key] = (reply.ids[2 * index], reply.ids[2 * index + 1])

    def _tasks_body(
        self,
        tasks: Sequence[Task],
        resolved: list[ResolvedResources],
        array_ids: dict[TaskTemplateVersion, int],
        task_arg_ids: dict[int, list[int]],
    ) -> schemas.TasksIn:
        resource_ids = [self._resource_ids[r.key] for r in resolved]
        resolver = self.resolver
        return schemas.TasksIn.model_construct(
            task_arg_ids=task_arg_ids,
            node_ids=[task.node_id for task in tasks],  # type: ignore[misc]  # set by _bind_nodes
            array_ids=[array_ids[task.template_version] for task in tasks],
            names=[task.name for task in tasks],
            commands=[task.command for task in tasks],
            task_args_hashes=[self._task_args_hash(task) for task in tasks],
            task_arg_values=[task.task_values for task in tasks],  # type: ignore[misc]  # as nodes
            cluster_ids=[r.cluster.id for r in resolved],
            original_resources_ids=[ids[0] for ids in resource_ids],
            task_resources_ids=[ids[1] for ids in resource_ids],
            max_attempts=[resolver.max_attempts(task) for task in tasks],
            resource_scales=[self._scales_json(resolver.resource_scales(task)) for task in tasks],
            fallback_queues=[self._as_json(task.fallback_queues) for task in tasks],
            attributes={
                index: task.task_attributes
                for index, task in enumerate(tasks)
                if task.task_attributes
            },
            resume=self.resume,
        )

    def _scales_json(self, value: Any) -> str:
        found = self._as_json(value)
        return "" if found == _DEFAULT_SCALES_JSON else found

    def _as_json(self, value: Any) -> str:
        """JSON of a per-task setting; settings shared between tasks are encoded once.

        Callables and iterators (resource scales that compute the next value) stay on the
        client, which applies them when it adjusts resources; they are stored as "".
        """
        if value is None:
            return ""
        found = self._json_cache.get(id(value))
        if found is None:
            try:
                plain = dict(value) if isinstance(value, Mapping) else value
                found = json.dumps(plain, sort_keys=True)
            except TypeError:
                found = ""
            self._json_cache[id(value)] = found
        return found
