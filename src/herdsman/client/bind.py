"""Binding: writing a validated workflow to the server in chunks.

The order follows the references between rows: tool version, templates, nodes, the DAG and its
edges, the workflow, its arrays, resources, tasks, and finally the mark that the workflow is
complete. Each step is a bulk get-or-create, so a bind interrupted anywhere (a crash, a lost
connection) is finished by binding again, and binding an unchanged workflow writes nothing.

Only one chunk's request exists at a time: tasks are walked in chunks of ``bind.chunk_size``
and each request is built, sent and dropped before the next. What stays in memory is one node
id and one task id per task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import structlog

from herdsman.client.identity import SetHash, hash_text, hash_values
from herdsman.client.resolution import ResolvedResources
from herdsman.client.task import Task
from herdsman.client.task_template import TaskTemplateVersion
from herdsman.client.workflow import Workflow
from herdsman.core.config import Settings
from herdsman.core.schemas import client as schemas

__all__ = ["Binder"]

logger = structlog.get_logger(__name__)


def _chunks(tasks: Sequence[Task], size: int) -> Iterator[Sequence[Task]]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


class Binder:
    """Writes one workflow; create, call :meth:`bind` once."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.requester = workflow.requester
        self.resolver = workflow.resolver()
        self.chunk_size = workflow.chunk_size or Settings().bind.chunk_size
        self.tasks: list[Task] = list(workflow.tasks.values())
        self._task_args_hashes: dict[tuple[str, ...], str] = {}
        self._resource_ids: dict[str, tuple[int, int]] = {}
        self._json_cache: dict[int, str] = {}

    def bind(self) -> int:
        tool_version_id = self.workflow.tool.active_tool_version_id
        versions = self._bind_templates(tool_version_id)
        task_hash = self._bind_nodes()
        dag_id = self._bind_dag()
        workflow = self.requester.put(
            "/workflows",
            schemas.WorkflowIn(
                tool_version_id=tool_version_id,
                dag_id=dag_id,
                workflow_args=self.workflow.workflow_args,
                workflow_args_hash=hash_text(self.workflow.workflow_args),
                task_hash=task_hash,
                name=self.workflow.name,
                description=self.workflow.description,
                user=self.workflow.user,
                max_concurrently_running=self.workflow.max_concurrently_running,
                num_tasks=len(self.tasks),
                attributes=self.workflow.workflow_attributes,
            ),
            schemas.WorkflowOut,
        )
        array_ids = self._bind_arrays(workflow.id, versions)
        self._bind_tasks(workflow.id, array_ids)
        bound = self.requester.post(
            f"/workflows/{workflow.id}/bound", None, schemas.WorkflowBoundOut
        )
        logger.info("workflow_bound", workflow_id=workflow.id, tasks=bound.num_tasks)
        return workflow.id

    # --- templates ----------------------------------------------------------------------------

    def _bind_templates(self, tool_version_id: int) -> list[TaskTemplateVersion]:
        versions = list(dict.fromkeys(task.template_version for task in self.tasks))
        for version in versions:
            template = version.template
            template.id = self.requester.put(
                "/task_templates",
                schemas.TaskTemplateIn(tool_version_id=tool_version_id, name=template.name),
                schemas.IdOut,
            ).id
            reply = self.requester.put(
                "/task_template_versions",
                schemas.TaskTemplateVersionIn(
                    task_template_id=template.id,
                    command_template=version.command_template,
                    node_args=list(version.node_args),
                    task_args=list(version.task_args),
                    op_args=list(version.op_args),
                ),
                schemas.TaskTemplateVersionOut,
            )
            version.id = reply.id
            version.arg_ids = reply.arg_ids
        return versions

    # --- nodes and the DAG --------------------------------------------------------------------

    def _bind_nodes(self) -> str:
        """Give every task its node id; return the hash of the workflow's set of tasks."""
        task_hash = SetHash()
        for chunk in _chunks(self.tasks, self.chunk_size):
            by_version: dict[TaskTemplateVersion, list[Task]] = {}
            for task in chunk:
                by_version.setdefault(task.template_version, []).append(task)
            for version, tasks in by_version.items():
                reply = self.requester.put(
                    "/nodes",
                    {
                        "task_template_version_id": version.id,
                        "arg_ids": [version.arg_ids[name] for name in version.node_args],
                        "nodes": [
                            {"node_args_hash": hash_values(t.node_values), "values": t.node_values}
                            for t in tasks
                        ],
                    },
                    schemas.IdsOut,
                )
                for task, node_id in zip(tasks, reply.ids, strict=True):
                    task.node_id = node_id
                    task_hash.add(f"{node_id}:{self._task_args_hash(task)}")
        return task_hash.hexdigest()

    def _task_args_hash(self, task: Task) -> str:
        found = self._task_args_hashes.get(task.task_values)
        if found is None:
            found = hash_values(task.task_values)
            self._task_args_hashes[task.task_values] = found
        return found

    def _edges(self) -> Iterator[tuple[int, int]]:
        for task in self.tasks:
            down = task.node_id
            assert down is not None
            for upstream in task.iter_upstream():
                assert upstream.node_id is not None
                yield upstream.node_id, down

    def _bind_dag(self) -> int:
        dag_hash = SetHash()
        for task in self.tasks:
            dag_hash.add(f"n{task.node_id}")
        for up, down in self._edges():
            dag_hash.add(f"e{up}:{down}")
        dag = self.requester.put("/dags", schemas.DagIn(hash=dag_hash.hexdigest()), schemas.DagOut)
        if not dag.complete:
            batch: list[tuple[int, int]] = []
            for edge in self._edges():
                batch.append(edge)
                if len(batch) >= self.chunk_size:
                    self._send_edges(dag.id, batch)
                    batch = []
            self._send_edges(dag.id, batch)
            self.requester.post(f"/dags/{dag.id}/complete", None, schemas.DagOut)
        return dag.id

    def _send_edges(self, dag_id: int, edges: list[tuple[int, int]]) -> None:
        if edges:
            self.requester.put(f"/dags/{dag_id}/edges", {"edges": edges}, schemas.CountOut)

    # --- arrays, resources, tasks -------------------------------------------------------------

    def _bind_arrays(
        self, workflow_id: int, versions: list[TaskTemplateVersion]
    ) -> dict[TaskTemplateVersion, int]:
        reply = self.requester.put(
            f"/workflows/{workflow_id}/arrays",
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
            schemas.IdsOut,
        )
        return dict(zip(versions, reply.ids, strict=True))

    def _bind_tasks(self, workflow_id: int, array_ids: dict[TaskTemplateVersion, int]) -> None:
        task_arg_ids = {
            array_ids[version]: [version.arg_ids[name] for name in version.task_args]
            for version in array_ids
        }
        for chunk in _chunks(self.tasks, self.chunk_size):
            resolved = [self.resolver.resources(task) for task in chunk]
            self._bind_resources(resolved)
            payload = [
                self._task_payload(task, resources, array_ids[task.template_version])
                for task, resources in zip(chunk, resolved, strict=True)
            ]
            reply = self.requester.put(
                f"/workflows/{workflow_id}/tasks",
                {"task_arg_ids": task_arg_ids, "tasks": payload},
                schemas.TasksOut,
            )
            for task, task_id, status in zip(chunk, reply.ids, reply.statuses, strict=True):
                task.task_id = task_id
                task.status = status

    def _bind_resources(self, resolved: list[ResolvedResources]) -> None:
        new = list({r.key: r for r in resolved if r.key not in self._resource_ids}.values())
        if not new:
            return
        items = []
        for resources in new:
            queue_id = resources.validated.queue.id
            items.append(
                {"kind": "original", "queue_id": queue_id, "requested": resources.original}
            )
            items.append(
                {
                    "kind": "validated",
                    "queue_id": queue_id,
                    "requested": resources.validated.requested,
                }
            )
        reply = self.requester.put("/task_resources", {"items": items}, schemas.IdsOut)
        for index, resources in enumerate(new):
            self._resource_ids[resources.key] = (reply.ids[2 * index], reply.ids[2 * index + 1])

    def _task_payload(
        self, task: Task, resources: ResolvedResources, array_id: int
    ) -> dict[str, Any]:
        original_id, validated_id = self._resource_ids[resources.key]
        payload: dict[str, Any] = {
            "node_id": task.node_id,
            "array_id": array_id,
            "name": task.name,
            "command": task.command,
            "task_args_hash": self._task_args_hash(task),
            "task_arg_values": task.task_values,
            "cluster_id": resources.cluster.id,
            "original_resources_id": original_id,
            "task_resources_id": validated_id,
            "max_attempts": self.resolver.max_attempts(task),
            "resource_scales": self._as_json(self.resolver.resource_scales(task)),
            "fallback_queues": self._as_json(task.fallback_queues),
        }
        if task.task_attributes:
            payload["attributes"] = task.task_attributes
        return payload

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
                found = json.dumps(value, sort_keys=True)
            except TypeError:
                found = ""
            self._json_cache[id(value)] = found
        return found
