"""The ``dummy`` cluster: runs nothing, finishes everything.

It exercises the whole distributor path (claim, batch, submit, launch records) without a
single process, so the swarm's scheduling and the server's bookkeeping can be tested and
benchmarked on their own. :meth:`DummyPlugin.submit` tells the server, in one request per
batch, that the batch's instances finished (``POST /task_instances/finish_without_running``:
I -> R -> D); the distributor then records the job ids, which the server accepts as a late
launch report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.parameters import ClusterParameters
from herdsman.distributor.plugin import PluginRequester, SubmitBatch
from herdsman.plugins._local import LocalPlugin

__all__ = ["DummyParameters", "DummyPlugin"]

logger = structlog.get_logger(__name__)


class DummyParameters(ClusterParameters):
    """The ``dummy`` cluster's parameters: the distributor's only, since nothing runs."""


class DummyPlugin(LocalPlugin):
    """A :class:`~herdsman.distributor.plugin.ClusterPlugin` whose jobs end as they start."""

    def __init__(self, *, requester: PluginRequester, parameters: Mapping[str, Any]) -> None:
        DummyParameters.parse(parameters, plugin="dummy")  # refuses what it would not read
        self._gateway = HttpDistributorGateway(requester)

    def start(self) -> None:
        logger.debug("dummy_plugin_started")

    def stop(self) -> None:
        logger.debug("dummy_plugin_stopped")

    def submit(self, batch: SubmitBatch) -> list[str]:
        ids = [instance.task_instance_id for instance in batch.instances]
        self._gateway.finish_without_running(ids)
        logger.debug("dummy_batch_finished", array_id=batch.array_id, count=len(ids))
        return [f"dummy-{task_instance_id}" for task_instance_id in ids]

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        return set()  # every job ended when it was submitted

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        pass  # nothing runs

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        return (
            TaskInstanceStatus.UNKNOWN_ERROR,
            f"the dummy cluster runs nothing; job {distributor_id} had no process",
        )
