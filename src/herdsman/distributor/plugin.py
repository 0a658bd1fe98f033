"""The cluster plugin protocol, and finding plugins by name.

A plugin is what the distributor knows of a cluster: how to submit a batch of instances, which
of its jobs still exist, how to kill them and what became of a lost one. Plugins are found by
the cluster's ``plugin`` name through the ``herdsman.plugins`` entry-point group, so a
site-specific plugin is a separate package that registers itself, e.g.::

    [project.entry-points."herdsman.plugins"]
    slurm = "herdsman_slurm:SlurmPlugin"

The entry point names a factory (usually the class) called as
``factory(requester=..., parameters=...)``; ``parameters`` are the cluster's parameters
from the server (``GET /clusters/{name}``). The factory reads and checks them, raising
:class:`~herdsman.core.errors.ConfigurationError` for a bad one, and does nothing more: no
processes, no network, no cluster commands until :meth:`ClusterPlugin.start`. That lets
:func:`check_parameters` refuse an operator's bad setting when it is made rather than at the
next run's start.

A plugin whose cluster can say what queues it has (Slurm's partitions) also implements
:class:`QueueReader`; ``herdsman server cluster sync-queues`` loads them through
:func:`read_queues`, so the plugin only reads its cluster and the server writes its database.

Threading contract: the distributor calls every method from its main loop's thread, one call
at a time. A plugin may run its own threads or processes between :meth:`ClusterPlugin.start`
and :meth:`ClusterPlugin.stop`; ``stop`` must leave none behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, TypeVar, runtime_checkable

import structlog
from pydantic import BaseModel

from herdsman.core.errors import ConfigurationError, HerdsmanError
from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.client import QueueIn
from herdsman.core.schemas.distributor import ClaimedInstance
from herdsman.core.schemas.worker import Usage
from herdsman.distributor.parameters import distributor_parameters

__all__ = [
    "ENTRY_POINT_GROUP",
    "ClusterPlugin",
    "PendingReasonReader",
    "PluginFactory",
    "PluginRequester",
    "QueueReader",
    "SubmitBatch",
    "SubmitError",
    "available_plugins",
    "check_parameters",
    "load_plugin",
    "read_queues",
]

logger = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "herdsman.plugins"

M = TypeVar("M", bound=BaseModel)


class PluginRequester(Protocol):
    """The part of :class:`~herdsman.core.requester.Requester` the distributor and plugins use.

    ``base_url`` lets a plugin hand the server's address to processes it starts (pool
    processes, cluster jobs), which build requesters of their own.
    """

    base_url: str

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M: ...

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M: ...


class SubmitError(HerdsmanError):
    """The cluster refused a submission; the message is the cluster's own explanation.

    The distributor records the message on every instance of the batch (they go to W) and
    the swarm retries their tasks.
    """


@dataclass(frozen=True)
class SubmitBatch:
    """Instances of one array with identical queue and resources: one cluster submission.

    ``resources`` are the server-validated values of the queue (cores, memory in GiB, runtime
    in seconds, ...), the same for every instance of the batch. The workflow and run ids let
    a plugin that runs commands itself give them their ``HERDSMAN_*`` environment;
    ``array_name`` and ``array_limit`` (the array's ``max_concurrently_running`` when it was
    claimed) let a cluster with job arrays name and throttle the job it submits.
    """

    workflow_id: int
    workflow_run_id: int
    array_id: int
    queue: str
    resources: Mapping[str, Any]
    instances: tuple[ClaimedInstance, ...]
    array_name: str = ""
    array_limit: int | None = None


class ClusterPlugin(Protocol):
    """What the distributor needs from a cluster; job ids are the cluster's own strings."""

    def start(self) -> None:
        """Prepare to submit (start pools, open connections). Called once, before submit."""

    def stop(self) -> None:
        """Release everything :meth:`start` acquired. Local plugins kill what still runs."""

    def submit(self, batch: SubmitBatch) -> list[str]:
        """Submit ``batch``; the job ids, aligned with ``batch.instances``.

        Raises :class:`SubmitError` when the cluster refuses the submission.
        """

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        """Those of ``distributor_ids`` the cluster still has queued or running."""

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        """Kill these jobs (queued ones are dropped). Returns without waiting for them."""

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        """What became of a job whose worker stopped reporting: a status and a message."""

    def remote_usage(self, distributor_id: str) -> Usage | None:
        """What the cluster measured of that job (wall, CPU, max RSS); None without records.

        Asked after :meth:`remote_exit_info` for the same job, so a plugin may answer both
        from one lookup. Local clusters keep no records beyond the worker's own report.
        """

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        """Worker side: the status and message for a command's non-zero exit code."""


@runtime_checkable
class QueueReader(Protocol):
    """A plugin that can read its cluster's queues and their limits."""

    def read_queues(self) -> list[QueueIn]:
        """The cluster's queues as the cluster defines them, the queue ``default`` among them
        where the cluster has a default. Called on a plugin that was built, not started; it
        may run the cluster's commands, and raises a HerdsmanError saying why it cannot."""
        ...


@runtime_checkable
class PendingReasonReader(Protocol):
    """A plugin that can say why the cluster has yet to start queued jobs."""

    @property
    def scheduler_name(self) -> str:
        """Whose words the reasons are, as people name it (``Slurm``)."""
        ...

    def pending_reasons(self, distributor_ids: Iterable[str]) -> dict[str, str]:
        """Job id -> the cluster's reason it still waits, for those of ``distributor_ids``
        that wait with one, from the plugin's last look at the queue (no new query)."""
        ...


PluginFactory = Callable[..., ClusterPlugin]
"""Called as ``factory(requester=..., parameters=...)``."""


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in found:
            logger.warning(
                "plugin_registered_twice", plugin=entry_point.name, ignored=entry_point.value
            )
            continue
        found[entry_point.name] = entry_point
    return found


def available_plugins() -> list[str]:
    """Names of the installed plugins, sorted."""
    return sorted(_entry_points())


def load_plugin(
    name: str, *, requester: PluginRequester, parameters: Mapping[str, Any]
) -> ClusterPlugin:
    """Build the plugin registered as ``name``.

    Raises :class:`ConfigurationError` naming the installed plugins when ``name`` is not one
    of them, or when its entry point cannot be imported.
    """
    registered = _entry_points()
    entry_point = registered.get(name)
    if entry_point is None:
        raise ConfigurationError(
            f"no herdsman cluster plugin named {name!r} is installed; available: "
            f"{', '.join(sorted(registered)) or 'none'} (plugins register in the "
            f"{ENTRY_POINT_GROUP!r} entry-point group)",
            details={"plugin": name, "available": sorted(registered)},
        )
    try:
        factory: PluginFactory = entry_point.load()
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"the herdsman cluster plugin {name!r} ({entry_point.value}) cannot be loaded: {error}",
            details={"plugin": name},
        ) from error
    logger.debug("plugin_loaded", plugin=name, factory=entry_point.value)
    return factory(requester=requester, parameters=dict(parameters))


class _NoServer:
    """The requester of a plugin built only to check its parameters: it is never called."""

    base_url = "http://parameters-check.invalid"

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        raise AssertionError("a plugin built to check its parameters must not call the server")

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        raise AssertionError("a plugin built to check its parameters must not call the server")


def check_parameters(name: str, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` if plugin ``name`` would refuse ``parameters``.

    Builds the plugin without starting it (factories only read their parameters), and checks
    the distributor's own parameters (:class:`~herdsman.distributor.parameters.ClusterParameters`)
    likewise, for a plugin whose own model does not include them.
    """
    distributor_parameters(parameters)
    load_plugin(name, requester=_NoServer(), parameters=parameters)


def read_queues(name: str, parameters: Mapping[str, Any]) -> list[QueueIn]:
    """The queues plugin ``name`` reads from its cluster, configured by ``parameters``.

    Raises :class:`ConfigurationError` when the plugin cannot read queues (a local cluster has
    only the queue it was given) or refuses ``parameters``.
    """
    plugin = load_plugin(name, requester=_NoServer(), parameters=parameters)
    if not isinstance(plugin, QueueReader):
        raise ConfigurationError(
            f"the {name} plugin cannot read queues from its cluster; its clusters keep the "
            "queues they were created with",
            details={"plugin": name},
        )
    return plugin.read_queues()
