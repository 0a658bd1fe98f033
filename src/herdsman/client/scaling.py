"""The next resource request of a task the cluster killed for resources, and its queue.

When an attempt is killed for memory or time (task instance status Z), the task is retried
with more. Two steps turn the previous attempt's request into the next one:

1. **Scaling** (:func:`scale_request`), key by key, with the task's ``resource_scales``:

   * a number ``s`` scales a value ``v`` to ``ceil(v * (1 + s))``: memory in whole MiB (stored
     as GiB), runtime in whole seconds, any other number to a whole number. Applied to the
     previous attempt's request, so scales compound: 0.5 gives 1x, 1.5x, 2.25x, ...;
   * a callable gets the previous value and returns the new one;
   * an iterator gives the next value; once exhausted the key keeps the last value it gave
     (wrap it in :class:`IteratorScale` to carry that memory across attempts), or the previous
     value if it never gave one.

   Keys the previous request lacks are left out: there is nothing to scale. Values from
   callables and iterators may use units (``"8G"``, ``"2h"``) and are converted to canonical
   units (memory GiB, runtime seconds, cores a whole number).

2. **Placement** (:func:`place_request`): the request stays on its queue if the queue's limits
   accept it, else it moves to the first of the task's ``fallback_queues`` that accepts it,
   else it is clamped to the limits of the last queue tried (the last fallback, or its own
   queue when it has no fallbacks). Clamping rather than failing gives the task its remaining
   attempts on the biggest request the cluster can run.

Everything here is pure apart from the user's own callables and iterators, so the rules are
unit-tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any, TypeGuard

from herdsman.client.resources import DEFAULT_RESOURCE_SCALES
from herdsman.core.errors import InvalidResourceError
from herdsman.core.schemas.client import LOCAL_PLUGINS, ClusterOut, QueueOut
from herdsman.core.units import parse_memory, parse_runtime

__all__ = [
    "IteratorScale",
    "ScaleSpec",
    "adjust_request",
    "canonical_value",
    "coerce_to_queue",
    "fits_queue",
    "place_request",
    "queue_named",
    "scale_request",
    "scale_value",
]

ScaleSpec = int | float | Callable[[Any], Any] | Iterator[Any]
"""How one resource grows: a fraction to add, a function of the previous value, or values."""

_MIB_PER_GIB = 1024


class IteratorScale:
    """An iterator of values for one resource that remembers the last value it gave.

    A plain iterator forgets: once exhausted there is no way to ask it what it gave last,
    and the previous request may no longer hold that value (it may have been clamped to a
    queue's limits). Keep one of these per task and resource across the task's attempts.
    """

    __slots__ = ("_given", "_last", "_values")

    def __init__(self, values: Iterator[Any]) -> None:
        self._values = values
        self._last: Any = None
        self._given = False

    def next_value(self, previous: Any) -> Any:
        """The iterator's next value; when exhausted its last one, or ``previous`` if none."""
        for value in self._values:
            self._last, self._given = value, True
            break
        return self._last if self._given else previous


# --- scaling --------------------------------------------------------------------------------------


def scale_request(
    previous: Mapping[str, Any], scales: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The request after scaling every key of ``previous`` that ``scales`` names.

    ``scales`` None means :data:`~herdsman.client.resources.DEFAULT_RESOURCE_SCALES`. Keys
    without a scale (queue, project, ...) pass through unchanged.
    """
    if scales is None:
        scales = DEFAULT_RESOURCE_SCALES
    request = dict(previous)
    for key, scale in scales.items():
        if key in request:
            request[key] = scale_value(key, request[key], scale)
    return request


def scale_value(key: str, value: Any, scale: Any) -> Any:
    """One resource's next value; InvalidResourceError if ``scale`` is not a scale."""
    if _is_number(scale):
        return _scale_number(key, value, scale)
    if isinstance(scale, IteratorScale):
        return canonical_value(key, scale.next_value(value))
    if isinstance(scale, Iterator):
        return canonical_value(key, IteratorScale(scale).next_value(value))
    if callable(scale):
        return canonical_value(key, scale(value))
    raise InvalidResourceError(
        f"resource_scales[{key!r}] is {scale!r}; use a number (0.5 adds 50% on each retry), "
        "a function of the previous value, or an iterator of values"
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _exact(number: int | float) -> Fraction:
    """The decimal a person wrote: 0.1 is 1/10, not the binary float next to it.

    Without this, ``ceil(2.5 GiB * 1.2)`` would land one MiB above 3 GiB.
    """
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidResourceError(f"scale or resource value {number!r} is not a finite number")
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


def _scale_number(key: str, value: Any, scale: int | float) -> Any:
    if not _is_number(value):
        return value  # a queue name or a plugin option: a fraction of it means nothing
    grown = _exact(value) * (1 + _exact(scale))
    if key == "memory":
        return math.ceil(grown * _MIB_PER_GIB) / _MIB_PER_GIB
    return math.ceil(grown)


def canonical_value(key: str, value: Any) -> Any:
    """``value`` in the units a stored request uses: memory GiB, runtime seconds, cores int."""
    if key == "memory":
        return parse_memory(value)
    if key == "runtime":
        return parse_runtime(value)
    if key == "cores":
        return _whole_number(key, value)
    return value


def _whole_number(key: str, value: Any) -> int:
    if _is_number(value) and math.isfinite(value) and value == int(value) and value >= 1:
        return int(value)
    raise InvalidResourceError(f"{key} {value!r} must be a whole number of at least 1")


# --- placement ------------------------------------------------------------------------------------


def queue_named(cluster: ClusterOut, name: object) -> QueueOut:
    """The cluster's queue called ``name``, or its default queue when ``name`` is None (or
    names no queue of a local cluster: see :data:`LOCAL_PLUGINS`)."""
    for queue in cluster.queues:
        if queue.is_default if name is None else queue.name == name:
            return queue
    if name is not None and cluster.plugin in LOCAL_PLUGINS:
        return queue_named(cluster, None)
    known = ", ".join(queue.name for queue in cluster.queues) or "none"
    if name is None:
        raise InvalidResourceError(
            f"cluster {cluster.name!r} has no default queue; name one with 'queue' in the "
            f"task's compute resources (its queues: {known})"
        )
    raise InvalidResourceError(
        f"queue {name!r} is not a queue of cluster {cluster.name!r}; its queues: {known}",
        details={"queue": str(name), "cluster": cluster.name},
    )


def fits_queue(queue: QueueOut, request: Mapping[str, Any]) -> bool:
    """True when every limited number in ``request`` lies within the queue's limits."""
    for key, (low, high) in queue.limits.items():
        value = request.get(key)
        if _is_number(value) and not low <= value <= high:
            return False
    return True


def coerce_to_queue(queue: QueueOut, request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` on ``queue`` with each limited number clamped into the queue's limits.

    Whole numbers stay whole: they are clamped to the whole numbers within the limits.
    """
    coerced = dict(request)
    coerced["queue"] = queue.name
    for key, (low, high) in queue.limits.items():
        value = coerced.get(key)
        if not _is_number(value):
            continue
        if isinstance(value, int):
            coerced[key] = min(max(value, math.ceil(low)), math.floor(high))
        else:
            coerced[key] = min(max(float(value), low), high)
    return coerced


def place_request(
    request: Mapping[str, Any], cluster: ClusterOut, fallback_queues: Sequence[str] = ()
) -> dict[str, Any]:
    """``request`` with the queue it will run on; clamped if no queue accepts it as it is.

    The request's own queue (the cluster's default when it names none) is tried first, then
    ``fallback_queues`` in order. InvalidResourceError if a named queue does not exist.
    """
    queue = queue_named(cluster, request.get("queue"))
    if fits_queue(queue, request):
        return {**request, "queue": queue.name}
    for name in fallback_queues:
        queue = queue_named(cluster, name)
        if fits_queue(queue, request):
            return {**request, "queue": queue.name}
    return coerce_to_queue(queue, request)


def adjust_request(
    previous: Mapping[str, Any],
    scales: Mapping[str, Any] | None,
    cluster: ClusterOut,
    fallback_queues: Sequence[str] = (),
) -> dict[str, Any]:
    """The next attempt's request: ``previous`` scaled, then placed on a queue that takes it."""
    return place_request(scale_request(previous, scales), cluster, fallback_queues)
