"""The change feed under concurrent writers: a follower sees every change, once, in order,
whether the writers and the follower share one server process or are spread over several."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text
from tests.support.tokens import admin_token

from herdsman import Tool
from herdsman.core.errors import NotFoundError
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas

if TYPE_CHECKING:
    from tests.conftest import ProcessRegistry, RunningServer

pytestmark = pytest.mark.integration

TASKS = 240
WRITERS = 8


def _running_workflow(requester: Requester, name: str) -> tuple[int, int, list[int]]:
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("dummy")
    template = tool.get_task_template("feed", "true {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=name)
    tasks = template.create_tasks(i=range(TASKS))
    workflow.add_tasks(tasks)
    workflow_id = workflow.bind()
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    for status in "IOR":
        requester.put(
            f"/workflow_runs/{run.workflow_run_id}/status",
            sschemas.RunStatusIn(status=status),
            sschemas.RunStatusOut,
        )
    return workflow_id, run.workflow_run_id, [t.task_id for t in tasks if t.task_id]


def _writer(server_url: str, run_id: int, task_ids: list[int], errors: list[BaseException]) -> None:
    """Queue, claim and finish tasks in small random batches, as fast as possible."""
    rng = random.Random(run_id * 1000 + len(task_ids))
    try:
        with Requester(server_url, token=admin_token(), retries=5) as requester:
            pending = list(task_ids)
            rng.shuffle(pending)
            while pending:
                size = rng.randint(1, 6)
                batch, pending = pending[:size], pending[size:]
                requester.post(
                    f"/workflow_runs/{run_id}/queue",
                    sschemas.QueueTasksIn(task_ids=batch),
                    sschemas.TaskStatusesOut,
                )
                claimed = requester.post(
                    f"/workflow_runs/{run_id}/claim",
                    dschemas.ClaimIn(limit=rng.randint(1, 8)),
                    dschemas.ClaimedOut,
                )
                ids = [i.task_instance_id for i in claimed.instances]
                if ids:
                    requester.post(
                        "/task_instances/finish_without_running",
                        dschemas.FinishIn(task_instance_ids=ids),
                        dschemas.TransitionsOut,
                    )
    except BaseException as error:  # reported by the test
        errors.append(error)


def _follow(server_url: str, workflow_id: int, stop: threading.Event, seen: list[Any]) -> None:
    with Requester(server_url) as requester:
        after = 0
        while True:
            stopping = stop.is_set()  # read before the request: later writes are then in it
            reply = requester.get(
                f"/workflows/{workflow_id}/changes",
                sschemas.ChangesOut,
                params={"after": after, "timeout": 0.2},
            )
            seen.extend(reply.changes)
            after = reply.last_seq
            if stopping and not reply.changes:
                return


@pytest.fixture(scope="module")
def other_server(
    server: RunningServer, processes: ProcessRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second server on the same database, itself two processes (``--workers 2``); a long
    re-read interval, so that on PostgreSQL only NOTIFY can wake its long-polls early."""
    from tests.conftest import start_server_process

    recheck = "60" if server.engine == "postgresql" else "0.25"
    process, info = start_server_process(
        processes,
        database_url=server.database_url,
        state_dir=Path(tmp_path_factory.mktemp(f"other-server-{server.engine}")),
        extra_args=("--workers", "2", "--no-upgrade"),
        extra_env={"HERDSMAN_SERVER__FEED_RECHECK_SECONDS": recheck},
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


def test_follower_misses_no_change_under_concurrent_writers(
    server: Any, requester: Requester
) -> None:
    _check_concurrent_writers(server, requester, follower_url=server.url, writer_urls=[server.url])


def test_follower_misses_no_change_from_writers_in_other_server_processes(
    server: Any, other_server: str, requester: Requester
) -> None:
    """Writers on a second server (two processes) and on the first; the follower on the
    second, so most changes it sees were committed by another process than its own."""
    _check_concurrent_writers(
        server, requester, follower_url=other_server, writer_urls=[server.url, other_server]
    )


def _check_concurrent_writers(
    server: Any, requester: Requester, follower_url: str, writer_urls: list[str]
) -> None:
    workflow_id, run_id, task_ids = _running_workflow(
        requester, f"feed-{server.engine}-{time.time()}"
    )
    seen: list[Any] = []
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(follower_url, workflow_id, stop, seen))
    follower.start()
    errors: list[BaseException] = []
    shares = [task_ids[i::WRITERS] for i in range(WRITERS)]
    writers = [
        threading.Thread(
            target=_writer, args=(writer_urls[i % len(writer_urls)], run_id, share, errors)
        )
        for i, share in enumerate(shares)
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    # Whatever a writer left claimed-but-unfinished is finished now, so every task ends D.
    _writer(server.url, run_id, [], errors)
    leftover = requester.post(
        f"/workflow_runs/{run_id}/claim", dschemas.ClaimIn(), dschemas.ClaimedOut
    )
    if leftover.instances:
        requester.post(
            "/task_instances/finish_without_running",
            dschemas.FinishIn(task_instance_ids=[i.task_instance_id for i in leftover.instances]),
            dschemas.TransitionsOut,
        )
    stop.set()
    follower.join(timeout=60)
    assert not errors

    engine = create_engine(server.database_url)
    with engine.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT seq, kind, object_id, status FROM status_change "
                "WHERE workflow_id = :w ORDER BY seq"
            ),
            {"w": workflow_id},
        ).all()
        final = dict(
            connection.execute(
                text("SELECT id, status FROM task WHERE workflow_id = :w"), {"w": workflow_id}
            ).all()
        )
    engine.dispose()

    seqs = [change.seq for change in seen]
    assert seqs == list(range(1, len(stored) + 1)), "the follower saw a gap or a repeat"
    assert [(c.seq, c.kind, c.id, c.status) for c in seen] == [tuple(row) for row in stored]
    last_task_status: dict[int, str] = {}
    for change in seen:
        if change.kind == "T":
            last_task_status[change.id] = change.status
    assert last_task_status == final
    assert set(final.values()) == {"D"}


def test_long_poll_wakes_within_the_timeout(server: Any, requester: Requester) -> None:
    workflow_id, run_id, task_ids = _running_workflow(
        requester, f"wake-{server.engine}-{time.time()}"
    )
    start = requester.get(f"/workflows/{workflow_id}/changes", sschemas.ChangesOut)

    def queue_later() -> None:
        time.sleep(0.5)
        with Requester(server.url) as other:
            other.post(
                f"/workflow_runs/{run_id}/queue",
                sschemas.QueueTasksIn(task_ids=task_ids[:1]),
                sschemas.TaskStatusesOut,
            )

    thread = threading.Thread(target=queue_later)
    thread.start()
    reply = requester.get(
        f"/workflows/{workflow_id}/changes",
        sschemas.ChangesOut,
        params={"after": start.last_seq, "timeout": 20, "kinds": "I"},
    )
    thread.join()
    assert [(c.kind, c.status, c.task_id) for c in reply.changes] == [("I", "Q", task_ids[0])]


def test_long_poll_is_woken_by_a_commit_in_another_server_process(
    server: Any, other_server: str, requester: Requester
) -> None:
    """On PostgreSQL the other server re-reads only every 60 s, so an answer well within the
    30 s wait was a NOTIFY's doing; elsewhere its 0.25 s re-read finds the change."""
    workflow_id, run_id, task_ids = _running_workflow(
        requester, f"wake-across-{server.engine}-{time.time()}"
    )
    start = requester.get(f"/workflows/{workflow_id}/changes", sschemas.ChangesOut)

    def queue_later() -> None:
        time.sleep(0.5)
        with Requester(server.url, token=admin_token()) as other:
            other.post(
                f"/workflow_runs/{run_id}/queue",
                sschemas.QueueTasksIn(task_ids=task_ids[:1]),
                sschemas.TaskStatusesOut,
            )

    thread = threading.Thread(target=queue_later)
    thread.start()
    began = time.monotonic()
    with Requester(other_server, token=admin_token(), timeout=60) as follower:
        reply = follower.get(
            f"/workflows/{workflow_id}/changes",
            sschemas.ChangesOut,
            params={"after": start.last_seq, "timeout": 30, "kinds": "I"},
        )
    waited = time.monotonic() - began
    thread.join()
    assert [(c.kind, c.status, c.task_id) for c in reply.changes] == [("I", "Q", task_ids[0])]
    assert waited < 25, "the long-poll was not woken by the other process's commit"


def test_the_feed_of_an_unknown_workflow_is_not_found(requester: Requester) -> None:
    with pytest.raises(NotFoundError, match="workflow 999999 does not exist"):
        requester.get("/workflows/999999/changes", sschemas.ChangesOut, params={"timeout": 5})


def test_a_filtered_read_returns_only_wanted_changes_and_passes_the_others(
    server: Any, requester: Requester
) -> None:
    workflow_id, run_id, task_ids = _running_workflow(
        requester, f"filter-{server.engine}-{time.time()}"
    )
    requester.post(
        f"/workflow_runs/{run_id}/queue",
        sschemas.QueueTasksIn(task_ids=task_ids[:3]),
        sschemas.TaskStatusesOut,
    )
    everything = requester.get(f"/workflows/{workflow_id}/changes", sschemas.ChangesOut)

    def read(kinds: str) -> sschemas.ChangesOut:
        return requester.get(
            f"/workflows/{workflow_id}/changes", sschemas.ChangesOut, params={"kinds": kinds}
        )

    nothing = read("T:D")
    queued = read("T:Q,R:X")
    instances = read("I")

    assert nothing.changes == []
    assert nothing.last_seq == queued.last_seq == instances.last_seq == everything.last_seq
    assert [c.id for c in queued.changes] == task_ids[:3]
    assert {(c.kind, c.status) for c in queued.changes} == {("T", "Q")}
    assert instances.changes == [c for c in everything.changes if c.kind == "I"]
