"""The distributor service, one step at a time and as a loop, with a fake server and plugin."""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from herdsman.core.changes import ChangeFilter
from herdsman.core.errors import ServerUnavailableError
from herdsman.core.schemas.distributor import ClaimedInstance, ClaimedOut
from herdsman.core.schemas.worker import Usage
from herdsman.core.statuses import WorkflowRunStatus
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.plugin import ClusterPlugin, SubmitError
from herdsman.distributor.service import (
    DistributorConfig,
    DistributorService,
    ExitReason,
    FeedUpdate,
    LaunchReport,
    group_batches,
)
from herdsman.plugins.dummy import DummyPlugin

if TYPE_CHECKING:
    from .conftest import FakeDistributorServer, RecordingPlugin

RUN_ID = 8
WORKFLOW_ID = 7
CLAIM = f"/workflow_runs/{RUN_ID}/claim"
LAUNCHED = "/task_instances/launched"
SUBMIT_FAILED = "/task_instances/submit_failed"
FEED = f"/workflows/{WORKFLOW_ID}/changes"
QUICK = DistributorConfig(poll_interval=0.05, feed_timeout=0.01, unreachable_pause=0.01)

MakeInstance = Callable[..., ClaimedInstance]


def _service(
    server: FakeDistributorServer, plugin: ClusterPlugin, config: DistributorConfig = QUICK
) -> DistributorService:
    return DistributorService(HttpDistributorGateway(server), RUN_ID, plugin, config=config)


# --- batching ---------------------------------------------------------------------------------


def test_batches_group_by_array_queue_and_resources(make_instance: MakeInstance) -> None:
    instances = [
        make_instance(1, memory=1, cores=2),
        make_instance(2, array_id=2, memory=1, cores=2),
        make_instance(3, cores=2, memory=1),  # same resources as 1, other key order
        make_instance(4, queue="long", memory=1, cores=2),
        make_instance(5, memory=2, cores=2),
    ]

    batches = group_batches(ClaimedOut(workflow_run_id=7, workflow_id=3, instances=instances))

    assert [[i.task_instance_id for i in b.instances] for b in batches] == [[1, 3], [2], [4], [5]]
    assert (batches[0].array_id, batches[0].queue, batches[0].resources) == (
        1,
        "default",
        {"memory": 1, "cores": 2},
    )
    assert {(b.workflow_id, b.workflow_run_id) for b in batches} == {(3, 7)}


# --- launching --------------------------------------------------------------------------------


def test_launch_claims_submits_and_records_job_ids(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    fake_server.queued = [make_instance(1), make_instance(2), make_instance(3, array_id=2)]

    report = _service(fake_server, plugin).launch_queued()

    assert report == LaunchReport(claimed=3, launched=3, failed=0)
    assert [len(b.instances) for b in plugin.batches] == [2, 1]
    (launched,) = fake_server.bodies(LAUNCHED)  # one request for everything claimed
    assert launched["items"] == [
        {
            "task_instance_id": 1,
            "distributor_id": "job-1",
            "array_batch_num": 1,
            "array_step_id": 0,
        },
        {
            "task_instance_id": 2,
            "distributor_id": "job-2",
            "array_batch_num": 1,
            "array_step_id": 1,
        },
        {
            "task_instance_id": 3,
            "distributor_id": "job-3",
            "array_batch_num": 1,
            "array_step_id": 0,
        },
    ]


def test_batch_numbers_count_up_per_array(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    service = _service(fake_server, plugin)
    fake_server.queued = [make_instance(1)]
    service.launch_queued()
    fake_server.queued = [make_instance(2)]
    service.launch_queued()

    numbers = [body["items"][0]["array_batch_num"] for body in fake_server.bodies(LAUNCHED)]
    assert numbers == [1, 2]


def test_a_full_claim_is_followed_by_another(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    fake_server.queued = [make_instance(i) for i in range(1, 6)]
    config = DistributorConfig(claim_limit=2)

    report = _service(fake_server, plugin, config).launch_queued()

    assert report.claimed == 5
    assert fake_server.paths("POST").count(CLAIM) == 3


def test_nothing_queued_sends_one_claim_and_no_reports(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    assert _service(fake_server, plugin).launch_queued() == LaunchReport()

    assert fake_server.paths() == [CLAIM]


@pytest.mark.parametrize(
    ("refusal", "wrong_count", "message"),
    [
        (
            SubmitError("sbatch: error: invalid partition"),
            False,
            "sbatch: error: invalid partition",
        ),
        (RuntimeError("bug"), False, "the cluster plugin failed: RuntimeError('bug')"),
        (None, True, "the plugin returned 1 job ids for 2 instances"),
    ],
)
def test_a_refused_submission_is_reported_as_failed(
    fake_server: FakeDistributorServer,
    plugin: RecordingPlugin,
    make_instance: MakeInstance,
    refusal: Exception | None,
    wrong_count: bool,
    message: str,
) -> None:
    fake_server.queued = [make_instance(1), make_instance(2)]
    plugin.refuse, plugin.wrong_count = refusal, wrong_count

    report = _service(fake_server, plugin).launch_queued()

    assert report == LaunchReport(claimed=2, launched=0, failed=2)
    assert fake_server.bodies(SUBMIT_FAILED) == [{"task_instance_ids": [1, 2], "message": message}]
    assert fake_server.bodies(LAUNCHED) == []


def test_undelivered_launch_reports_are_sent_next_time(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    service = _service(fake_server, plugin)
    fake_server.queued = [make_instance(1)]
    fake_server.fail(LAUNCHED, ServerUnavailableError("down"))

    with pytest.raises(ServerUnavailableError):
        service.launch_queued()
    service.launch_queued()

    bodies = fake_server.bodies(LAUNCHED)
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert len(plugin.batches) == 1  # submitted once


def test_a_claim_whose_answer_was_lost_is_asked_again_by_the_same_name(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    service = _service(fake_server, plugin)
    fake_server.queued = [make_instance(1)]
    fake_server.fail(CLAIM, ServerUnavailableError("down"))

    with pytest.raises(ServerUnavailableError):
        service.launch_queued()
    service.launch_queued()
    service.launch_queued()

    names = [body["claim_id"] for body in fake_server.bodies(CLAIM)]
    # The failed claim and its next try share a name; a claim that was answered does not.
    assert names[0] == names[1] and names[2] != names[1]


def test_the_dummy_plugin_finishes_what_is_claimed(
    fake_server: FakeDistributorServer, make_instance: MakeInstance
) -> None:
    fake_server.queued = [make_instance(1), make_instance(2)]
    dummy = DummyPlugin(requester=fake_server, parameters={})

    report = _service(fake_server, dummy).launch_queued()

    assert report == LaunchReport(claimed=2, launched=2, failed=0)
    assert fake_server.bodies("/task_instances/finish_without_running") == [
        {"task_instance_ids": [1, 2]}
    ]
    ids = [item["distributor_id"] for item in fake_server.bodies(LAUNCHED)[0]["items"]]
    assert ids == ["dummy-1", "dummy-2"]


# --- the change feed --------------------------------------------------------------------------


def test_the_feed_reports_queued_instances_and_the_run_status(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.changes.append(
        {
            "last_seq": 42,
            "changes": [
                {"seq": 40, "kind": "I", "id": 5, "status": "Q", "task_id": 9},
                {"seq": 41, "kind": "R", "id": RUN_ID + 1, "status": "D"},  # another run
                {"seq": 42, "kind": "R", "id": RUN_ID, "status": "S"},
            ],
        }
    )
    service = _service(fake_server, plugin)
    service.after_seq = 17

    update = service.follow_changes(3.0)

    assert update == FeedUpdate(queued=True, run_status=WorkflowRunStatus.STOPPED)
    assert service.after_seq == 42
    feed_call = next(c for c in fake_server.calls if c.path == FEED)
    kinds = ChangeFilter.parse(feed_call.params.pop("kinds"))
    assert kinds == ChangeFilter.parse("I:QK,R")
    assert feed_call.params == {"after": 17, "timeout": 3.0}


def test_feed_changes_without_news_are_quiet(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.changes.append(
        {"last_seq": 3, "changes": [{"seq": 3, "kind": "I", "id": 5, "status": "R", "task_id": 9}]}
    )

    update = _service(fake_server, plugin).follow_changes(99.0)

    assert update == FeedUpdate(queued=False, run_status=None)
    assert next(c for c in fake_server.calls if c.path == FEED).params["timeout"] == 30.0


# --- the loop ---------------------------------------------------------------------------------


def test_the_loop_ends_when_the_run_is_final(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    fake_server.run_statuses.extend(["R", "R", "D"])
    fake_server.queued = [make_instance(1)]
    ready: list[bool] = []

    result = _service(fake_server, plugin).run(on_ready=lambda: ready.append(True))

    assert result.reason is ExitReason.RUN_FINISHED
    assert result.run_status is WorkflowRunStatus.DONE
    assert (result.claimed, result.launched) == (1, 1)
    assert ready == [True]
    assert plugin.events == ["start", "stop"]


def test_a_queued_change_triggers_a_claim_at_once(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin, make_instance: MakeInstance
) -> None:
    slow = DistributorConfig(poll_interval=60.0, feed_timeout=0.01)

    def queue_then_stop() -> None:
        feed_reads = fake_server.paths().count(FEED)
        if feed_reads == 1:
            fake_server.queued = [make_instance(1)]
            fake_server.changes.append(
                {"last_seq": 1, "changes": [{"seq": 1, "kind": "I", "id": 1, "status": "Q"}]}
            )
        elif feed_reads == 2:
            fake_server.changes.append(
                {"last_seq": 2, "changes": [{"seq": 2, "kind": "R", "id": RUN_ID, "status": "E"}]}
            )

    fake_server.on_feed_wait = queue_then_stop

    result = _service(fake_server, plugin, slow).run()

    assert result.reason is ExitReason.RUN_FINISHED
    assert result.run_status is WorkflowRunStatus.ERROR
    assert result.launched == 1
    # Only one run check: the claim came from the feed, not from the minute-long poll.
    assert fake_server.paths("GET").count(f"/workflow_runs/{RUN_ID}") == 1


def test_a_stop_request_ends_the_loop(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    service = _service(fake_server, plugin)
    fake_server.on_feed_wait = service.request_stop

    result = service.run()

    assert result.reason is ExitReason.STOP_REQUESTED
    assert plugin.events == ["start", "stop"]


def test_a_signal_abandons_the_long_poll(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    service = _service(fake_server, plugin)
    # As if SIGTERM arrived while the feed request waits for the server's answer.
    fake_server.on_feed_wait = lambda: service.handle_signal(signal.SIGTERM)

    result = service.run()

    assert result.reason is ExitReason.STOP_REQUESTED
    assert fake_server.paths().count(FEED) == 1


def test_the_loop_rides_out_a_short_outage(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.fail(CLAIM, ServerUnavailableError("down"), ServerUnavailableError("down"))
    fake_server.run_statuses.extend(["R", "R", "R", "D"])

    result = _service(fake_server, plugin).run()

    assert result.reason is ExitReason.RUN_FINISHED
    assert fake_server.paths().count(CLAIM) >= 3


def test_the_loop_gives_up_on_a_server_that_stays_away(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.fail(f"/workflow_runs/{RUN_ID}", *[ServerUnavailableError("down")] * 1000)
    config = DistributorConfig(unreachable_pause=0.01, max_unreachable_seconds=0.1)

    result = _service(fake_server, plugin, config).run()

    assert result.reason is ExitReason.SERVER_UNREACHABLE
    assert plugin.events == ["start", "stop"]


def test_request_stop_is_thread_safe(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    service = _service(fake_server, plugin, DistributorConfig(poll_interval=0.01))
    timer = threading.Timer(0.2, service.request_stop)
    timer.start()

    result = service.run()

    timer.join()
    assert result.reason is ExitReason.STOP_REQUESTED


# --- triage and kills ------------------------------------------------------------------------

TRIAGE = f"/workflow_runs/{RUN_ID}/triage"
TRIAGED = "/task_instances/triaged"
KILLED = "/task_instances/killed"


def _ref(instance_id: int, status: str, job: str | None = None) -> dict[str, object]:
    return {"task_instance_id": instance_id, "distributor_id": job, "status": status}


def test_a_launched_job_the_cluster_lost_is_reported_as_never_started(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    plugin.alive = {"job-1"}
    fake_server.triage_replies.append(
        {"launched": [_ref(1, "O", "job-1"), _ref(2, "O", "job-2")], "live": 2}
    )

    report = _service(fake_server, plugin).triage()

    (body,) = fake_server.bodies(TRIAGED)
    (item,) = body["items"]
    assert (item["task_instance_id"], item["status"]) == (2, "E")
    assert "job-2" in item["message"] and "never reported running" in item["message"]
    assert (report.live, report.lost, report.killed) == (2, 1, 0)


def test_a_silent_instance_gets_the_clusters_verdict(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    plugin.exit_info = {"job-3": ("Z", "OUT_OF_MEMORY")}
    plugin.usage = {"job-3": Usage(wall_time=8.0, cpu_time=1.5, max_rss=110_000_000)}
    plugin.alive = {"job-4"}
    fake_server.triage_replies.append(
        {"triaging": [_ref(3, "T", "job-3"), _ref(4, "T", "job-4")], "live": 2}
    )

    _service(fake_server, plugin).triage()

    items = {i["task_instance_id"]: i for i in fake_server.bodies(TRIAGED)[0]["items"]}
    assert items[3]["status"] == "Z" and "OUT_OF_MEMORY" in items[3]["message"]
    # The worker could not report its usage; the cluster's accounting stands in for it.
    assert items[3]["usage"] == {"wall_time": 8.0, "cpu_time": 1.5, "max_rss": 110_000_000}
    # Still running but silent: killed, so that its task can be retried.
    assert items[4]["status"] == "U" and "killed" in items[4]["message"]
    assert items[4]["usage"] is None
    assert plugin.terminated == ["job-4"]


def test_one_triage_pass_asks_the_cluster_once(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    plugin.alive = {"job-1", "job-3"}
    fake_server.triage_replies.append(
        {
            "launched": [_ref(1, "O", "job-1"), _ref(2, "O", "job-2")],
            "triaging": [_ref(3, "T", "job-3"), _ref(4, "T", "job-4")],
            "live": 4,
        }
    )

    _service(fake_server, plugin).triage()

    assert plugin.queries == 1
    items = {i["task_instance_id"]: i["status"] for i in fake_server.bodies(TRIAGED)[0]["items"]}
    assert items == {2: "E", 3: "U", 4: "U"}  # 1 is still queued on the cluster: left alone


def test_kill_requests_are_carried_out_and_confirmed(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.triage_replies.append({"kill": [_ref(5, "K", "job-5"), _ref(6, "K")], "live": 2})

    report = _service(fake_server, plugin).triage()

    assert plugin.terminated == ["job-5"]
    assert fake_server.bodies(KILLED) == [{"task_instance_ids": [5, 6]}]
    assert report.killed == 2


def test_an_ended_run_keeps_its_distributor_while_instances_live(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    fake_server.run_statuses = deque(["H"])
    fake_server.triage_replies.extend([{"live": 1}, {"live": 1}, {"live": 0}])
    config = DistributorConfig(poll_interval=60.0, feed_timeout=0.01, triage_interval=0.01)

    result = _service(fake_server, plugin, config).run()

    assert result.reason is ExitReason.RUN_FINISHED
    # Nothing is claimed for a run that ended; it left after the pass that found nothing live.
    assert f"/workflow_runs/{RUN_ID}/claim" not in fake_server.paths()
    assert fake_server.paths().count(TRIAGE) >= 3 + 1  # three passes, and one after the stop


def test_a_run_that_ends_is_triaged_again_before_its_distributor_leaves(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    # The first triage, while the run still ran, found nothing live; the job launched since
    # must still be watched once a hot resume ends the run.
    fake_server.triage_replies.extend([{"live": 0}, {"live": 1}, {"live": 0}])
    config = DistributorConfig(poll_interval=60.0, feed_timeout=0.01, triage_interval=0.01)

    def end_the_run() -> None:
        if fake_server.paths().count(FEED) == 1:
            fake_server.run_statuses = deque(["H"])
            fake_server.changes.append(
                {"last_seq": 1, "changes": [{"seq": 1, "kind": "R", "id": RUN_ID, "status": "H"}]}
            )

    fake_server.on_feed_wait = end_the_run

    result = _service(fake_server, plugin, config).run()

    assert result.reason is ExitReason.RUN_FINISHED
    # One pass before the run ended, the one that found the job, the one that found nothing
    # live, and one after the stop.
    assert fake_server.paths().count(TRIAGE) == 4


def test_silence_is_not_judged_for_a_grace_after_the_server_was_unreachable(
    fake_server: FakeDistributorServer, plugin: RecordingPlugin
) -> None:
    config = DistributorConfig(
        poll_interval=60.0,
        feed_timeout=0.01,
        triage_interval=0.01,
        unreachable_pause=0.01,
        silence_grace=60.0,
    )
    fake_server.fail(FEED, ServerUnavailableError("the server restarts"))
    service = _service(fake_server, plugin, config)

    def stop_after_some_triages() -> None:
        if fake_server.paths().count(TRIAGE) >= 4:
            service.request_stop()

    fake_server.on_feed_wait = stop_after_some_triages

    service.run()

    judged = [body["judge_silence"] for body in fake_server.bodies(TRIAGE)]
    # The start's triage judges; after the outage none does within the grace, except the
    # one after the plugin stopped, which settles what is left.
    assert judged[0] is True
    assert judged[1:-1] and not any(judged[1:-1])
    assert judged[-1] is True
