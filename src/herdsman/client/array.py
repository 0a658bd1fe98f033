"""Array: tasks of one template made together (Jobmon's ``jobmon.client.array``)."""

from __future__ import annotations

from herdsman.client.task import Array

__all__ = ["Array"]
