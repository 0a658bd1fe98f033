"""The distributor: claims a workflow run's queued task instances and submits them to a cluster.

:mod:`~herdsman.distributor.plugin` defines what a cluster plugin is and finds plugins by name,
:mod:`~herdsman.distributor.service` is the loop, :mod:`~herdsman.distributor.process` starts
and stops a distributor process for the client.
"""

__all__: list[str] = []
