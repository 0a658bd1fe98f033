"""The swarm's services: each ``tick`` does one unit of work; the orchestrator loops."""

from herdsman.client.swarm.services.adjuster import ResourceAdjuster, ResourceAdjustmentError
from herdsman.client.swarm.services.follower import FeedNews, FollowerService
from herdsman.client.swarm.services.heartbeat import Beat, ConsecutiveFailures, HeartbeatService
from herdsman.client.swarm.services.scheduler import ScheduleResult, SchedulerService
from herdsman.client.swarm.services.synchronizer import SynchronizerService

__all__ = [
    "Beat",
    "ConsecutiveFailures",
    "FeedNews",
    "FollowerService",
    "HeartbeatService",
    "ResourceAdjuster",
    "ResourceAdjustmentError",
    "ScheduleResult",
    "SchedulerService",
    "SynchronizerService",
]
