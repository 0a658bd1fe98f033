"""The clusters tasks may run on, and their parameters: what an operator adds and tunes.

A cluster is a plugin name plus parameters (JSON) that its distributor and plugin read when a
run starts, so a change reaches the next run of every workflow without touching workflows.
Each cluster has a queue ``default``: tasks that name no queue go there, and binding checks
their requests against its limits. These functions run on a database session; the
``herdsman server cluster`` commands call them against the server's database, as an operator
with the database's credentials (users change no cluster).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.core.errors import ConflictError, InvalidInputError, NotFoundError
from herdsman.core.schemas import client as schemas
from herdsman.core.schemas.client import DEFAULT_QUEUE, WIDE_QUEUE_LIMITS
from herdsman.server.database import models

__all__ = [
    "ParameterCheck",
    "add_cluster",
    "add_queue",
    "get_cluster",
    "list_clusters",
    "sync_queues",
    "update_parameters",
]

ParameterCheck = Callable[[str, Mapping[str, Any]], None]
"""Called with a cluster's plugin and its new parameters before they are stored; raises to
refuse them (the CLI builds the plugin, which checks its parameters, without starting it)."""


def list_clusters(session: Session) -> list[schemas.ClusterOut]:
    """Every cluster, by name."""
    clusters = session.scalars(select(models.Cluster).order_by(models.Cluster.name)).all()
    return [_record(session, cluster) for cluster in clusters]


def get_cluster(session: Session, name: str) -> schemas.ClusterOut:
    """The cluster called ``name`` with its parameters and queues; NotFoundError naming the
    clusters there are."""
    return _record(session, _cluster(session, name))


def add_cluster(
    session: Session,
    name: str,
    plugin: str,
    parameters: Mapping[str, Any],
    check: ParameterCheck | None = None,
) -> schemas.ClusterOut:
    """A new cluster with its ``default`` queue. ConflictError if the name is taken."""
    if not name.strip():
        raise InvalidInputError("a cluster needs a name")
    taken = session.scalar(select(models.Cluster.id).where(models.Cluster.name == name))
    if taken is not None:
        raise ConflictError(
            f"a cluster named {name!r} exists already; change its parameters with "
            f"`herdsman server cluster set {name} KEY=VALUE`",
            details={"cluster": name},
        )
    if check is not None:
        check(plugin, parameters)
    cluster = models.Cluster(name=name, plugin=plugin, parameters=json.dumps(dict(parameters)))
    session.add(cluster)
    session.flush()
    session.add(
        models.Queue(
            cluster_id=cluster.id,
            name=DEFAULT_QUEUE,
            is_default=True,
            limits=json.dumps(WIDE_QUEUE_LIMITS),
        )
    )
    session.flush()
    return _record(session, cluster)


def update_parameters(
    session: Session,
    name: str,
    values: Mapping[str, Any],
    unset: Iterable[str] = (),
    check: ParameterCheck | None = None,
) -> schemas.ClusterOut:
    """Set ``values`` and remove ``unset`` among the cluster's parameters; the rest stay.

    Removing a parameter the cluster does not have is refused: it is most likely a typo, and
    the operator would otherwise believe a setting gone that never existed under that name.
    """
    cluster = _cluster(session, name)
    parameters = _parameters(cluster)
    missing = sorted(set(unset) - set(parameters))
    if missing:
        have = ", ".join(sorted(parameters)) or "none"
        raise NotFoundError(
            f"cluster {name!r} has no parameter {', '.join(missing)} to remove; it has: {have}",
            details={"cluster": name, "missing": missing},
        )
    for key in unset:
        del parameters[key]
    parameters.update(values)
    if check is not None:
        check(cluster.plugin, parameters)
    cluster.parameters = json.dumps(parameters)
    session.flush()
    return _record(session, cluster)


def add_queue(
    session: Session, name: str, queue: str, limits: Mapping[str, Sequence[float]] | None = None
) -> schemas.ClusterOut:
    """Add ``queue`` to cluster ``name``, or change its limits; the cluster as it is then.

    For clusters whose plugin cannot read queues from the cluster (the local ones): without
    ``limits`` the queue takes the limits of the cluster's default queue; with them, the
    resources named take theirs (``[low, high]``) and the others the default queue's.
    """
    cluster = _cluster(session, name)
    default = session.scalars(
        select(models.Queue).where(
            models.Queue.cluster_id == cluster.id, models.Queue.is_default.is_(True)
        )
    ).first()
    merged = dict(json.loads(default.limits or "{}")) if default is not None else {}
    for key, bounds in (limits or {}).items():
        low, high = (float(value) for value in bounds)
        if low > high:
            raise InvalidInputError(
                f"queue {queue!r}: {key} from {low:g} to {high:g} is empty; give LOW <= HIGH",
                details={"queue": queue, "resource": key},
            )
        merged[key] = [low, high]
    sync_queues(session, name, [schemas.QueueIn(name=queue, limits=merged)])
    return _record(session, cluster)


def sync_queues(session: Session, name: str, queues: Sequence[schemas.QueueIn]) -> dict[str, str]:
    """Add ``queues`` to cluster ``name``, or update their limits; queue name -> ``added``,
    ``updated`` or ``unchanged``.

    Queues the cluster has and ``queues`` lacks stay as they are: tasks refer to them, and a
    partition that is gone for a while (drained, renamed back) must not take their history.
    """
    cluster = _cluster(session, name)
    existing = {
        queue.name: queue
        for queue in session.scalars(
            select(models.Queue).where(models.Queue.cluster_id == cluster.id)
        )
    }
    outcome = {}
    for wanted in sorted(queues, key=lambda queue: queue.name):
        queue = existing.get(wanted.name)
        if queue is None:
            limits = json.dumps(wanted.limits, sort_keys=True)
            session.add(
                models.Queue(
                    cluster_id=cluster.id, name=wanted.name, is_default=False, limits=limits
                )
            )
            outcome[wanted.name] = "added"
        elif json.loads(queue.limits) != wanted.limits:
            queue.limits = json.dumps(wanted.limits, sort_keys=True)
            outcome[wanted.name] = "updated"
        else:
            outcome[wanted.name] = "unchanged"
    session.flush()
    return outcome


def _cluster(session: Session, name: str) -> models.Cluster:
    cluster = session.scalars(select(models.Cluster).where(models.Cluster.name == name)).first()
    if cluster is None:
        known = session.scalars(select(models.Cluster.name).order_by(models.Cluster.name)).all()
        raise NotFoundError(
            f"no cluster is called {name!r}; the clusters are: {', '.join(known) or 'none'}",
            details={"cluster": name},
        )
    return cluster


def _parameters(cluster: models.Cluster) -> dict[str, Any]:
    parameters = json.loads(cluster.parameters or "{}")
    return dict(parameters) if isinstance(parameters, dict) else {}


def _record(session: Session, cluster: models.Cluster) -> schemas.ClusterOut:
    queue = models.Queue
    queues = session.scalars(
        select(queue).where(queue.cluster_id == cluster.id).order_by(queue.id)
    ).all()
    return schemas.ClusterOut(
        id=cluster.id,
        name=cluster.name,
        plugin=cluster.plugin,
        parameters=_parameters(cluster),
        queues=[
            schemas.QueueOut(
                id=q.id, name=q.name, is_default=q.is_default, limits=json.loads(q.limits or "{}")
            )
            for q in queues
        ],
    )
