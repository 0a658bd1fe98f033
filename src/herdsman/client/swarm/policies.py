"""Where a task's resource scales, fallback queues and resources callable come from.

The adjuster asks a :class:`ResourcePolicy` about one task at a time, and only about tasks that
need new resources, so neither policy keeps an object per task:

* :class:`WorkflowResourcePolicy` answers from the client objects of a run built with
  ``WorkflowRun.from_workflow``. Only there do callables and iterators exist (the database keeps
  settings that are plain JSON), so only there are ``compute_resources_callable`` evaluated and
  scales that are functions or iterators applied.
* :class:`StoredResourcePolicy` answers from the ``resource_scales`` and ``fallback_queues``
  columns loaded with the tasks (``from_workflow_id``, a detached swarm): numbers only.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import json
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from herdsman.client.resources import validate_resources
from herdsman.client.scaling import IteratorScale
from herdsman.core.errors import CallableReturnedInvalidObject, InvalidResourceError
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.statuses import TaskStatus

if TYPE_CHECKING:
    from herdsman.client.task import Task
    from herdsman.client.workflow import Workflow

__all__ = ["ResourcePolicy", "StoredResourcePolicy", "WorkflowResourcePolicy"]

logger = structlog.get_logger(__name__)


class ResourcePolicy(Protocol):
    """What the adjuster needs to know about a task to give it new resources."""

    def task_name(self, task_id: int) -> str | None:
        """The task's name for messages, if known."""
        ...

    def scales(self, task_id: int) -> Mapping[str, Any] | None:
        """The task's resource scales; None for the defaults. Iterators keep their place."""
        ...

    def fallback_queues(self, task_id: int) -> Sequence[str]:
        """Queues to move to, in order, when the task's own queue cannot take its request."""
        ...

    def held_task_ids(self) -> Iterable[int]:
        """Tasks whose first resources :meth:`initial_request` computes."""
        ...

    def initial_request(self, task_id: int) -> tuple[ClusterOut, dict[str, Any]]:
        """A held task's cluster and validated request; raises with a message for the user."""
        ...


class StoredResourcePolicy:
    """Settings from the database columns, interned: most tasks share one pair of strings.

    Per task it keeps 12 bytes (the task id and the index of its settings) in two arrays kept
    in task-id order, as the server pages tasks in that order.
    """

    def __init__(self) -> None:
        self._task_ids: array[int] = array("q")
        self._setting_of: array[int] = array("l")
        self._index: dict[tuple[str, str], int] = {}
        self._settings: list[tuple[Mapping[str, Any] | None, tuple[str, ...]]] = []
        self._sorted = True

    def add(self, task_id: int, resource_scales: str, fallback_queues: str) -> None:
        """Record one task's columns as loaded (JSON text, "" when unset)."""
        key = (resource_scales, fallback_queues)
        setting = self._index.get(key)
        if setting is None:
            setting = len(self._settings)
            self._settings.append(_parse_settings(task_id, resource_scales, fallback_queues))
            self._index[key] = setting
        if self._task_ids and task_id <= self._task_ids[-1]:
            self._sorted = False
        self._task_ids.append(task_id)
        self._setting_of.append(setting)

    def task_name(self, task_id: int) -> str | None:
        return None

    def scales(self, task_id: int) -> Mapping[str, Any] | None:
        return self._setting(task_id)[0]

    def fallback_queues(self, task_id: int) -> Sequence[str]:
        return self._setting(task_id)[1]

    def held_task_ids(self) -> Iterable[int]:
        return ()

    def initial_request(self, task_id: int) -> tuple[ClusterOut, dict[str, Any]]:
        raise InvalidResourceError(
            "a compute_resources_callable runs only in a swarm built from the workflow's "
            "objects (WorkflowRun.from_workflow, workflow.run())"
        )

    def _setting(self, task_id: int) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
        if not self._sorted:
            order = sorted(range(len(self._task_ids)), key=self._task_ids.__getitem__)
            self._task_ids = array("q", (self._task_ids[i] for i in order))
            self._setting_of = array("l", (self._setting_of[i] for i in order))
            self._sorted = True
        position = bisect.bisect_left(self._task_ids, task_id)
        if position < len(self._task_ids) and self._task_ids[position] == task_id:
            return self._settings[self._setting_of[position]]
        return None, ()


def _parse_settings(
    task_id: int, resource_scales: str, fallback_queues: str
) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
    """Numbers of the scales and names of the queues; anything else is dropped with a log."""
    scales = _loads(task_id, "resource_scales", resource_scales)
    queues = _loads(task_id, "fallback_queues", fallback_queues)
    numbers = None
    if isinstance(scales, dict):
        numbers = {
            key: value
            for key, value in scales.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    names = tuple(q for q in queues if isinstance(q, str)) if isinstance(queues, list) else ()
    return numbers, names


def _loads(task_id: int, column: str, text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        logger.warning("swarm_setting_unreadable", task_id=task_id, column=column, text=text[:200])
        return None


class WorkflowResourcePolicy:
    """Settings from the Task objects of a bound workflow, resolved as bind resolved them.

    The id -> Task map is built the first time a task needs adjusting, so a run in which no
    task is killed for resources pays nothing. Iterators in scales are shared between tasks
    when set on a template, workflow or tool; each task gets its own copy, started where the
    user's iterator stood, and keeps it across its attempts.
    """

    def __init__(self, workflow: Workflow) -> None:
        self._workflow = workflow
        self._held: dict[int, Task] = {
            task.task_id: task
            for task in workflow.tasks.values()
            if task.task_id is not None
            and task.compute_resources_callable is not None
            and task.status != TaskStatus.DONE
        }
        self._by_id: dict[int, Task] | None = None
        self._iterators: dict[int, dict[str, IteratorScale]] = {}
        # id(user's iterator) -> (the iterator, a tee that never advances: the copies' origin)
        self._origins: dict[int, tuple[Iterator[Any], Iterator[Any]]] = {}

    def task_name(self, task_id: int) -> str | None:
        task = self._find(task_id)
        return None if task is None else task.name

    def scales(self, task_id: int) -> Mapping[str, Any] | None:
        task = self._find(task_id)
        if task is None:
            return None
        scales = self._workflow.resolver().resource_scales(task)
        if not any(isinstance(scale, Iterator) for scale in scales.values()):
            return scales
        own = self._iterators.setdefault(task_id, {})
        for key, scale in scales.items():
            if isinstance(scale, Iterator) and key not in own:
                own[key] = IteratorScale(self._copy_of(scale))
        return {key: own.get(key, scale) for key, scale in scales.items()}

    def fallback_queues(self, task_id: int) -> Sequence[str]:
        task = self._find(task_id)
        return () if task is None or task.fallback_queues is None else task.fallback_queues

    def held_task_ids(self) -> Iterable[int]:
        return list(self._held)

    def initial_request(self, task_id: int) -> tuple[ClusterOut, dict[str, Any]]:
        task = self._held.get(task_id) or self._find(task_id)
        function = None if task is None else task.compute_resources_callable
        if task is None or function is None:
            raise InvalidResourceError("it has no compute_resources_callable")
        # Resolved first: it may read the cluster from the server, which may be unreachable.
        resolved = self._workflow.resolver().resources(task)
        try:
            result = function()
        except Exception as error:
            raise CallableReturnedInvalidObject(
                f"its compute_resources_callable raised {error!r}; fix the function"
            ) from error
        if not isinstance(result, dict):
            raise CallableReturnedInvalidObject(
                f"its compute_resources_callable returned {result!r} "
                f"({type(result).__name__}); it must return a dict of resources such as "
                "{'memory': '8G', 'runtime': '2h'}"
            )
        merged = {**resolved.original, **result}
        validated = validate_resources(resolved.cluster, merged, task_name=task.name)
        self._held.pop(task_id, None)
        return resolved.cluster, validated.requested

    def _find(self, task_id: int) -> Task | None:
        if self._by_id is None:
            self._by_id = {
                task.task_id: task
                for task in self._workflow.tasks.values()
                if task.task_id is not None
            }
        return self._by_id.get(task_id)

    def _copy_of(self, values: Iterator[Any]) -> Iterator[Any]:
        origin = self._origins.get(id(values))
        if origin is None or origin[0] is not values:
            origin = (values, itertools.tee(values, 1)[0])
            self._origins[id(values)] = origin
        return copy.copy(origin[1])
