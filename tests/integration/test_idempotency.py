"""Every state-changing route can be sent twice, as a client does after a lost answer.

Each test drives a workflow to the point where a route matters, sends that route's request,
takes a snapshot of the rows it could touch (the workflow's runs, tasks with their statuses and
attempts, task instances, error logs and change feed), sends the identical request again and
checks that the snapshot did not change and that the second answer is the first one: a 2xx with
the same statuses or, for a move the state machines refuse, a 409 naming the current status.
Never a 500.

Statuses are driven by calling the routes directly, as the swarm, the distributor and the
worker would, so no background process is needed besides the server.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine, func, select, update
from tests.support.tokens import admin_token, bearer

from herdsman import Tool, __version__
from herdsman.core.errors import HerdsmanError
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX
from herdsman.server.database import models

pytestmark = pytest.mark.integration

M = TypeVar("M", bound=BaseModel)

LONG_REPORT_SECONDS = 600.0
NUMBER = re.compile(r"/\d+")


# --- snapshots ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowRows:
    """What a replay must leave as it found it: the workflow's rows, without heartbeat times."""

    workflow: tuple[Any, ...]
    runs: tuple[tuple[Any, ...], ...]
    arrays: tuple[tuple[Any, ...], ...]
    tasks: tuple[tuple[Any, ...], ...]
    instances: tuple[tuple[Any, ...], ...]
    error_logs: tuple[tuple[Any, ...], ...]
    changes: tuple[tuple[Any, ...], ...]
    task_resources: int


def snapshot(db: Engine, workflow_id: int) -> WorkflowRows:
    w, run, array, task = models.Workflow, models.WorkflowRun, models.Array, models.Task
    ti, log, change = models.TaskInstance, models.TaskInstanceErrorLog, models.StatusChange
    of_workflow = select(task.id).where(task.workflow_id == workflow_id)
    with db.connect() as connection:

        def rows(query: Any) -> tuple[tuple[Any, ...], ...]:
            return tuple(tuple(row) for row in connection.execute(query).all())

        return WorkflowRows(
            workflow=rows(
                select(w.status, w.status_date, w.change_seq, w.max_concurrently_running).where(
                    w.id == workflow_id
                )
            )[0],
            runs=rows(
                select(run.id, run.status, run.status_date)
                .where(run.workflow_id == workflow_id)
                .order_by(run.id)
            ),
            arrays=rows(
                select(array.id, array.max_concurrently_running)
                .where(array.workflow_id == workflow_id)
                .order_by(array.id)
            ),
            tasks=rows(
                select(task.id, task.status, task.status_date, task.num_attempts)
                .add_columns(task.task_resources_id)
                .where(task.workflow_id == workflow_id)
                .order_by(task.id)
            ),
            instances=rows(
                select(ti.id, ti.task_id, ti.workflow_run_id, ti.status, ti.status_date)
                .add_columns(ti.task_resources_id, ti.claim_id, ti.distributor_id, ti.exit_code)
                .where(ti.task_id.in_(of_workflow))
                .order_by(ti.id)
            ),
            error_logs=rows(
                select(log.id, log.task_instance_id, log.description)
                .where(log.task_instance_id.in_(select(ti.id).where(ti.task_id.in_(of_workflow))))
                .order_by(log.id)
            ),
            changes=rows(
                select(change.seq, change.kind, change.object_id, change.status)
                .where(change.workflow_id == workflow_id)
                .order_by(change.seq)
            ),
            task_resources=int(
                connection.execute(select(func.count()).select_from(models.TaskResources)).scalar()
                or 0
            ),
        )


# --- replaying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """A request sent twice, with the workflow's rows after each sending."""

    first: httpx.Response
    second: httpx.Response
    before: WorkflowRows
    after: WorkflowRows

    def answers(self) -> tuple[Any, Any]:
        return self.first.json(), self.second.json()


def replay(
    api: httpx.Client,
    db: Engine,
    workflow_id: int,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> Replay:
    first = api.request(method, path, json=body)
    before = snapshot(db, workflow_id)
    second = api.request(method, path, json=body)
    return Replay(first, second, before, snapshot(db, workflow_id))


def assert_replay_is_harmless(result: Replay) -> Any:
    """The first answer was a success, the replay answered alike and wrote nothing."""
    assert result.first.is_success, result.first.text
    assert result.second.status_code == result.first.status_code, result.second.text
    assert result.second.json() == result.first.json()
    assert result.after == result.before
    return result.first.json()


def assert_refused_alike(result: Replay, current_status: str) -> dict[str, Any]:
    """Both sendings were refused with a 409 naming the current status; nothing was written."""
    for response in (result.first, result.second):
        assert response.status_code == 409, response.text
        assert response.json()["details"]["status"] == current_status
    assert result.after == result.before
    body: dict[str, Any] = result.second.json()
    return body


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def api(server: Any) -> Iterator[httpx.Client]:
    """A plain HTTP client: it shows every status code and never retries on its own."""
    headers = bearer(admin_token())  # the machinery's routes: a run's token or an admin's
    with httpx.Client(base_url=server.url + API_PREFIX, timeout=60, headers=headers) as client:
        yield client


@pytest.fixture
def db(server: Any) -> Iterator[Engine]:
    engine = create_engine(server.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class Scenario:
    """A bound workflow of independent tasks on the dummy cluster, and a run of it."""

    api: httpx.Client
    workflow_id: int
    run_id: int
    task_ids: list[int]
    template_name: str = "step"
    claims: int = 0

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.api.post(path, json=body)
        assert response.is_success, response.text
        return response.json()

    def put(self, path: str, body: dict[str, Any]) -> Any:
        response = self.api.put(path, json=body)
        assert response.is_success, response.text
        return response.json()

    def queue(self, task_ids: list[int], resources_ids: list[int] | None = None) -> None:
        body = {"task_ids": task_ids, "task_resources_ids": resources_ids}
        self.post(f"/workflow_runs/{self.run_id}/queue", body)

    def claim(self, count: int = 1) -> list[int]:
        """Queue the first ``count`` tasks and claim their instances (I)."""
        self.queue(self.task_ids[:count])
        self.claims += 1
        body = {"limit": count, "claim_id": f"setup-{self.claims}"}
        claimed = self.post(f"/workflow_runs/{self.run_id}/claim", body)
        return [item["task_instance_id"] for item in claimed["instances"]]

    def launch(self, count: int = 1) -> list[int]:
        ids = self.claim(count)
        self.post("/task_instances/launched", launched_body(ids))
        return ids

    def start(self, count: int = 1) -> list[int]:
        ids = self.launch(count)
        for instance_id in ids:
            self.post(f"/task_instances/{instance_id}/running", running_body())
        return ids


def launched_body(instance_ids: list[int]) -> dict[str, Any]:
    return {
        "items": [
            {"task_instance_id": i, "distributor_id": f"job-{i}", "array_batch_num": 1}
            for i in instance_ids
        ]
    }


def running_body() -> dict[str, Any]:
    return {
        "host": "node-1",
        "pid": 4242,
        "herdsman_version": __version__,
        "next_report_seconds": LONG_REPORT_SECONDS,
    }


def bind_workflow(
    requester: Requester, name: str, tasks: int, max_attempts: int
) -> tuple[int, list[int]]:
    """Bind ``tasks`` independent tasks through the public API; the workflow and task ids."""
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("dummy")
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=name)
    workflow.add_tasks(template.create_tasks(i=range(tasks), max_attempts=max_attempts))
    workflow_id = workflow.bind()
    return workflow_id, sorted(task.task_id for task in workflow.tasks.values() if task.task_id)


def new_scenario(
    requester: Requester,
    api: httpx.Client,
    name: str,
    *,
    tasks: int = 2,
    run_to: str = "IOR",
    max_attempts: int = 3,
) -> Scenario:
    workflow_id, task_ids = bind_workflow(requester, name, tasks, max_attempts)
    run = api.post(f"/workflows/{workflow_id}/runs", json={})
    assert run.is_success, run.text
    scenario = Scenario(api, workflow_id, run.json()["workflow_run_id"], task_ids)
    for status in run_to:
        scenario.put(f"/workflow_runs/{scenario.run_id}/status", {"status": status})
    return scenario


@pytest.fixture
def scenario(requester: Requester, api: httpx.Client, request: pytest.FixtureRequest) -> Scenario:
    """A running run (R) of a two-task workflow."""
    return new_scenario(requester, api, f"replay-{request.node.name}")


def make_overdue(db: Engine, instance_id: int) -> None:
    """The worker's promised report time has passed (as if its node went silent long ago)."""
    with db.begin() as connection:
        connection.execute(
            update(models.TaskInstance)
            .where(models.TaskInstance.id == instance_id)
            .values(report_by_date=dt.datetime(2000, 1, 1))
        )


def instance_statuses(rows: WorkflowRows) -> list[str]:
    return [row[3] for row in rows.instances]


def task_statuses_and_attempts(rows: WorkflowRows) -> list[tuple[str, int]]:
    return [(row[1], row[3]) for row in rows.tasks]


# --- client: binding ------------------------------------------------------------------------------


BIND_ROUTES = {
    "PUT /tools",
    "PUT /task_templates",
    "PUT /task_template_versions",
    "PUT /nodes",
    "PUT /dags",
    "PUT /dags/{id}/edges",
    "POST /dags/{id}/complete",
    "PUT /workflows",
    "PUT /workflows/{id}/arrays",
    "PUT /task_resources",
    "PUT /workflows/{id}/tasks",
    "POST /workflows/{id}/bound",
}

BIND_TABLES: tuple[type[models.Base], ...] = (
    models.Tool,
    models.ToolVersion,
    models.TaskTemplate,
    models.TaskTemplateVersion,
    models.Arg,
    models.TaskTemplateArg,
    models.Node,
    models.NodeArg,
    models.Dag,
    models.Edge,
    models.Workflow,
    models.WorkflowAttribute,
    models.Array,
    models.TaskResources,
    models.Task,
    models.TaskArg,
    models.TaskAttribute,
)


def bind_table_counts(db: Engine) -> dict[str, int]:
    with db.connect() as connection:
        return {
            table.__tablename__: int(
                connection.execute(select(func.count()).select_from(table)).scalar() or 0
            )
            for table in BIND_TABLES
        }


@dataclass(frozen=True)
class BindReplay:
    route: str
    first: dict[str, Any]
    second: dict[str, Any] | str
    before: dict[str, int]
    after: dict[str, int]


class ReplayingRequester(Requester):
    """Sends every PUT and POST twice in a row, as after a lost answer, and records both.

    The binder sends some requests from several threads; a lock keeps each request, its
    replay and the counts taken between them together.
    """

    def __init__(self, base_url: str, counts: Callable[[], dict[str, int]]) -> None:
        super().__init__(base_url, timeout=60, retries=3)
        self._counts = counts
        self._lock = threading.Lock()
        self.replays: list[BindReplay] = []

    def put(self, path: str, body: BaseModel | dict[str, Any], reply: type[M]) -> M:
        return self._twice("PUT", path, lambda: Requester.put(self, path, body, reply))

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        return self._twice("POST", path, lambda: Requester.post(self, path, body, reply))

    def _twice(self, method: str, path: str, send: Callable[[], M]) -> M:
        with self._lock:
            first = send()
            before = self._counts()
            second: dict[str, Any] | str
            try:
                second = send().model_dump()
            except HerdsmanError as error:
                second = f"{type(error).__name__}: {error}"
            route = f"{method} {NUMBER.sub('/{id}', path)}"
            self.replays.append(
                BindReplay(route, first.model_dump(), second, before, self._counts())
            )
            return first


def bind_problems(replays: list[BindReplay]) -> list[str]:
    problems = []
    for item in replays:
        second = item.second
        if item.route == "PUT /workflows" and isinstance(second, dict):
            # "created" says whether this very request created the workflow: only the first did.
            assert (item.first["created"], second["created"]) == (True, False)
            second = {**second, "created": True}
        if second != item.first:
            problems.append(f"{item.route}: answered {item.first}, then {second}")
        grown = {t: item.after[t] - n for t, n in item.before.items() if item.after[t] != n}
        if grown:
            problems.append(f"{item.route}: the replay added rows {grown}")
    return problems


def test_every_bind_request_can_be_replayed(
    server: Any, db: Engine, request: pytest.FixtureRequest
) -> None:
    replaying = ReplayingRequester(server.url, lambda: bind_table_counts(db))
    with replaying:
        tool = Tool(f"bind-replay-{request.node.name}", requester=replaying)
        tool.set_default_cluster_name("dummy")
        prepare = tool.get_task_template(
            "prepare", "prep {where} {release}", node_args=["where"], task_args=["release"]
        )
        fit = tool.get_task_template("fit", "fit {where}", node_args=["where"])
        workflow = tool.create_workflow(
            workflow_args=f"bind-replay-{request.node.name}", workflow_attributes={"lab": "x"}
        )
        prepared = prepare.create_tasks(where=["a", "b"], release=3, task_attributes={"k": "v"})
        fits = [fit.create_task(where=t.node_args["where"], upstream_tasks=[t]) for t in prepared]
        workflow.add_tasks([*prepared, *fits])
        workflow.bind()

    assert {item.route for item in replaying.replays} == BIND_ROUTES
    assert bind_problems(replaying.replays) == []


def test_new_tool_version_replay_creates_no_second_version(
    requester: Requester, api: httpx.Client, db: Engine, request: pytest.FixtureRequest
) -> None:
    tool = Tool(f"version-replay-{request.node.name}", requester=requester)
    version = models.ToolVersion
    count = select(func.count()).select_from(version).where(version.tool_id == tool.id)
    body = {"request_key": f"key-{request.node.name}"[:36]}
    first = api.post(f"/tools/{tool.id}/versions", json=body)
    with db.connect() as connection:
        before = connection.execute(count).scalar()
    second = api.post(f"/tools/{tool.id}/versions", json=body)
    with db.connect() as connection:
        after = connection.execute(count).scalar()
    assert first.is_success and second.is_success
    assert (second.json(), after) == (first.json(), before)


# --- swarm: runs ----------------------------------------------------------------------------------


def test_replayed_run_creation_is_refused_as_already_existing(
    requester: Requester, api: httpx.Client, db: Engine, request: pytest.FixtureRequest
) -> None:
    workflow_id, _ = bind_workflow(requester, f"create-{request.node.name}", 2, max_attempts=3)
    result = replay(api, db, workflow_id, "POST", f"/workflows/{workflow_id}/runs", {})

    assert result.first.status_code == 200, result.first.text
    assert result.second.status_code == 409, result.second.text
    refusal = result.second.json()
    assert refusal["error"] == "WorkflowAlreadyExists"
    assert refusal["details"]["workflow_run_id"] == result.first.json()["workflow_run_id"]
    assert result.after == result.before
    assert [run[1] for run in result.after.runs] == ["B"]


@pytest.mark.parametrize("status", ["I", "O", "R"])
def test_run_status_replay_is_ignored(
    requester: Requester,
    api: httpx.Client,
    db: Engine,
    request: pytest.FixtureRequest,
    status: str,
) -> None:
    path_to = {"I": "", "O": "I", "R": "IO"}[status]
    s = new_scenario(requester, api, f"status-{request.node.name}", run_to=path_to)
    result = replay(
        api, db, s.workflow_id, "PUT", f"/workflow_runs/{s.run_id}/status", {"status": status}
    )
    assert assert_replay_is_harmless(result)["status"] == status


def test_stop_replay_requests_no_second_kill(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    scenario.launch(1)
    path = f"/workflow_runs/{scenario.run_id}/status"
    result = replay(api, db, scenario.workflow_id, "PUT", path, {"status": "S"})
    assert assert_replay_is_harmless(result)["status"] == "S"
    assert instance_statuses(result.after) == ["K"]


def test_refused_run_status_replay_answers_409_with_the_current_status(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = f"/workflow_runs/{scenario.run_id}/status"
    result = replay(api, db, scenario.workflow_id, "PUT", path, {"status": "L"})
    assert assert_refused_alike(result, "R")["error"] == "TransitionRefused"


def test_run_heartbeat_replay_changes_nothing(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = f"/workflow_runs/{scenario.run_id}/heartbeat"
    body = {"next_report_seconds": LONG_REPORT_SECONDS}
    result = replay(api, db, scenario.workflow_id, "POST", path, body)
    assert assert_replay_is_harmless(result)["status"] == "R"


# --- swarm: queueing ------------------------------------------------------------------------------


def test_queue_replay_creates_no_second_instance(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = f"/workflow_runs/{scenario.run_id}/queue"
    result = replay(api, db, scenario.workflow_id, "POST", path, {"task_ids": scenario.task_ids})
    assert assert_replay_is_harmless(result)["statuses"] == ["Q", "Q"]
    assert instance_statuses(result.after) == ["Q", "Q"]
    assert task_statuses_and_attempts(result.after) == [("Q", 1), ("Q", 1)]


def test_queue_replay_with_new_resources_creates_one_instance(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    error = {"status": "Z", "exit_code": 137, "message": "out of memory"}
    scenario.post(f"/task_instances/{instance_id}/error", error)
    task_id = scenario.task_ids[0]
    requested = {"queue": "default", "memory": 4.0, "runtime": 600}
    adjusted = scenario.post(
        f"/workflows/{scenario.workflow_id}/adjusted_resources",
        {"items": [{"task_id": task_id, "requested": requested}]},
    )
    [resources_id] = adjusted["task_resources_ids"]

    body = {"task_ids": [task_id], "task_resources_ids": [resources_id]}
    result = replay(
        api, db, scenario.workflow_id, "POST", f"/workflow_runs/{scenario.run_id}/queue", body
    )
    assert assert_replay_is_harmless(result)["statuses"] == ["Q"]
    assert [(row[3], row[5]) for row in result.after.instances][1:] == [("Q", resources_id)]


# --- swarm: resuming (link, force_release) --------------------------------------------------------


def resume_while_a_kill_is_pending(scenario: Scenario) -> tuple[int, int]:
    """Claim a task, then resume: the first run must let go (C) and waits for the kill (K).

    Returns the new run's id (still G, waiting) and the instance waiting for its kill.
    """
    [instance_id] = scenario.claim(1)
    body = {"resume": True, "reset_running_jobs": True}
    new_run = scenario.post(f"/workflows/{scenario.workflow_id}/runs", body)
    assert (new_run["status"], new_run["waiting_on"]) == ("G", [scenario.run_id])
    return new_run["workflow_run_id"], instance_id


def test_link_replay_while_held_is_refused_alike(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    new_run_id, _ = resume_while_a_kill_is_pending(scenario)
    result = replay(api, db, scenario.workflow_id, "POST", f"/workflow_runs/{new_run_id}/link")
    for response in (result.first, result.second):
        assert response.status_code == 409, response.text
        assert response.json()["details"] == {"workflow_run_ids": [scenario.run_id]}
    assert result.after == result.before


def link_after_the_kill(scenario: Scenario, api: httpx.Client, db: Engine) -> Replay:
    new_run_id, instance_id = resume_while_a_kill_is_pending(scenario)
    scenario.post("/task_instances/killed", {"task_instance_ids": [instance_id]})
    return replay(api, db, scenario.workflow_id, "POST", f"/workflow_runs/{new_run_id}/link")


def test_link_replay_writes_nothing(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    result = link_after_the_kill(scenario, api, db)
    first, second = result.answers()
    assert result.first.is_success and result.second.is_success, result.second.text
    assert (first["status"], second["status"]) == ("B", "B")
    assert second["workflow_run_id"] == first["workflow_run_id"]
    assert [run[1] for run in result.after.runs] == ["T", "B"]
    assert result.after == result.before


def test_link_replay_answers_the_same_feed_position(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    result = link_after_the_kill(scenario, api, db)
    first, second = result.answers()
    assert second["last_seq"] == first["last_seq"]


def test_force_release_replay_settles_kills_once(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    resume_while_a_kill_is_pending(scenario)
    path = f"/workflow_runs/{scenario.run_id}/force_release"
    result = replay(api, db, scenario.workflow_id, "POST", path)
    assert assert_replay_is_harmless(result)["status"] == "T"
    assert instance_statuses(result.after) == ["F"]
    assert len(result.after.error_logs) == 1


# --- distributor ----------------------------------------------------------------------------------


def test_claim_replay_with_the_same_claim_id_claims_nothing_more(
    requester: Requester, api: httpx.Client, db: Engine, request: pytest.FixtureRequest
) -> None:
    s = new_scenario(requester, api, f"claim-{request.node.name}", tasks=4)
    s.queue(s.task_ids)
    path = f"/workflow_runs/{s.run_id}/claim"
    result = replay(api, db, s.workflow_id, "POST", path, {"limit": 2, "claim_id": "claim-1"})
    claimed = assert_replay_is_harmless(result)["instances"]
    assert [item["task_id"] for item in claimed] == s.task_ids[:2]
    assert instance_statuses(result.after) == ["I", "I", "Q", "Q"]


def test_launched_replay_changes_nothing(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    ids = scenario.claim(2)
    result = replay(
        api, db, scenario.workflow_id, "POST", "/task_instances/launched", launched_body(ids)
    )
    assert assert_replay_is_harmless(result)["statuses"] == ["O", "O"]


def test_submit_failed_replay_logs_one_error(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.claim(1)
    body = {"task_instance_ids": [instance_id], "message": "sbatch: invalid partition"}
    result = replay(api, db, scenario.workflow_id, "POST", "/task_instances/submit_failed", body)
    assert assert_replay_is_harmless(result)["statuses"] == ["W"]
    assert len(result.after.error_logs) == 1
    assert task_statuses_and_attempts(result.after)[0] == ("G", 1)


def test_finish_without_running_replay_changes_nothing(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    ids = scenario.claim(2)
    body = {"task_instance_ids": ids}
    result = replay(
        api, db, scenario.workflow_id, "POST", "/task_instances/finish_without_running", body
    )
    assert assert_replay_is_harmless(result)["statuses"] == ["D", "D"]
    assert task_statuses_and_attempts(result.after) == [("D", 1), ("D", 1)]


def test_triage_replay_moves_an_overdue_instance_once(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    make_overdue(db, instance_id)
    result = replay(
        api, db, scenario.workflow_id, "POST", f"/workflow_runs/{scenario.run_id}/triage"
    )
    answer = assert_replay_is_harmless(result)
    assert [item["task_instance_id"] for item in answer["triaging"]] == [instance_id]
    assert instance_statuses(result.after) == ["T"]


def test_triage_without_judging_silence_leaves_an_overdue_instance_running(
    scenario: Scenario, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    make_overdue(db, instance_id)

    answer = scenario.post(f"/workflow_runs/{scenario.run_id}/triage", {"judge_silence": False})

    assert answer["triaging"] == []
    assert answer["live"] == 1
    assert instance_statuses(snapshot(db, scenario.workflow_id)) == ["R"]


def test_triaged_replay_logs_one_error(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    [instance_id] = scenario.start(1)
    make_overdue(db, instance_id)
    scenario.post(f"/workflow_runs/{scenario.run_id}/triage")
    item = {"task_instance_id": instance_id, "status": "Z", "message": "OUT_OF_MEMORY"}
    result = replay(
        api, db, scenario.workflow_id, "POST", "/task_instances/triaged", {"items": [item]}
    )
    assert assert_replay_is_harmless(result)["statuses"] == ["Z"]
    assert len(result.after.error_logs) == 1
    assert task_statuses_and_attempts(result.after)[0] == ("A", 1)


def test_triaged_usage_from_the_cluster_is_recorded_on_the_instance(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    make_overdue(db, instance_id)
    scenario.post(f"/workflow_runs/{scenario.run_id}/triage")
    usage = {"wall_time": 8.0, "cpu_time": 1.5, "max_rss": 110_000_000}
    item = {"task_instance_id": instance_id, "status": "Z", "message": "OOM", "usage": usage}
    scenario.post("/task_instances/triaged", {"items": [item]})
    columns = (models.TaskInstance.wall_time, models.TaskInstance.cpu_time)
    with db.connect() as connection:
        row = connection.execute(
            select(*columns, models.TaskInstance.max_rss).where(
                models.TaskInstance.id == instance_id
            )
        ).one()
    assert tuple(row) == (8.0, 1.5, 110_000_000)
    # The cluster's measure also raises the task's peaks and adds to the workflow's totals.
    with db.connect() as connection:
        peaks = connection.execute(
            select(models.Task.peak_wall_time, models.Task.peak_rss)
            .join(models.TaskInstance, models.TaskInstance.task_id == models.Task.id)
            .where(models.TaskInstance.id == instance_id)
        ).one()
        totals = connection.execute(
            select(models.UsageTotal.attempts, models.UsageTotal.cpu_seconds).where(
                models.UsageTotal.workflow_id == scenario.workflow_id
            )
        ).all()
    assert tuple(peaks) == (8.0, 110_000_000)
    assert [tuple(total) for total in totals] == [(1, 1.5)]


def test_triaged_replay_of_a_vanished_job_logs_one_error(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.launch(1)
    item = {"task_instance_id": instance_id, "status": "E", "message": "job not found"}
    result = replay(
        api, db, scenario.workflow_id, "POST", "/task_instances/triaged", {"items": [item]}
    )
    assert assert_replay_is_harmless(result)["statuses"] == ["E"]
    assert len(result.after.error_logs) == 1
    assert task_statuses_and_attempts(result.after)[0] == ("G", 1)


def test_killed_replay_changes_nothing(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    ids = scenario.launch(2)
    scenario.put(f"/workflow_runs/{scenario.run_id}/status", {"status": "S"})
    body = {"task_instance_ids": ids}
    result = replay(api, db, scenario.workflow_id, "POST", "/task_instances/killed", body)
    assert assert_replay_is_harmless(result)["statuses"] == ["F", "F"]
    # A kill is not the task's failure: its task waits (G) for a resume, and the log says why.
    statuses = {row[0]: row[1] for row in result.after.tasks}
    assert [statuses[task_id] for task_id in scenario.task_ids[:2]] == ["G", "G"]
    assert [log[1] for log in result.after.error_logs] == ids
    assert all(log[2].startswith("killed on request") for log in result.after.error_logs)


def test_killed_replay_of_a_letting_go_run_releases_it_once(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    _, instance_id = resume_while_a_kill_is_pending(scenario)
    body = {"task_instance_ids": [instance_id]}
    result = replay(api, db, scenario.workflow_id, "POST", "/task_instances/killed", body)
    assert assert_replay_is_harmless(result)["statuses"] == ["F"]
    assert [run[1] for run in result.after.runs] == ["T", "G"]


# --- worker ---------------------------------------------------------------------------------------


def test_running_replay_changes_nothing(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    [instance_id] = scenario.launch(1)
    path = f"/task_instances/{instance_id}/running"
    result = replay(api, db, scenario.workflow_id, "POST", path, running_body())
    assert assert_replay_is_harmless(result)["status"] == "R"
    assert task_statuses_and_attempts(result.after)[0] == ("R", 1)


def test_running_for_a_finished_instance_answers_its_status_alike(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    scenario.post(f"/task_instances/{instance_id}/done", {"exit_code": 0})
    path = f"/task_instances/{instance_id}/running"
    result = replay(api, db, scenario.workflow_id, "POST", path, running_body())
    assert assert_replay_is_harmless(result)["status"] == "D"


def test_instance_heartbeat_replay_changes_nothing(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    path = f"/task_instances/{instance_id}/heartbeat"
    body = {"next_report_seconds": LONG_REPORT_SECONDS, "stdout_tail": "step 3 of 9"}
    result = replay(api, db, scenario.workflow_id, "POST", path, body)
    assert assert_replay_is_harmless(result)["status"] == "R"


def test_done_replay_changes_nothing(scenario: Scenario, api: httpx.Client, db: Engine) -> None:
    [instance_id] = scenario.start(1)
    body = {"exit_code": 0, "stdout_tail": "ok", "usage": {"wall_time": 1.5}}
    result = replay(
        api, db, scenario.workflow_id, "POST", f"/task_instances/{instance_id}/done", body
    )
    assert assert_replay_is_harmless(result)["status"] == "D"
    assert task_statuses_and_attempts(result.after)[0] == ("D", 1)


ERROR_REPORT = {"status": "E", "exit_code": 3, "message": "boom", "stderr_tail": "boom"}


def test_error_replay_logs_one_error_and_retries_once(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    path = f"/task_instances/{instance_id}/error"
    result = replay(api, db, scenario.workflow_id, "POST", path, ERROR_REPORT)
    assert assert_replay_is_harmless(result)["status"] == "E"
    assert len(result.after.error_logs) == 1
    assert task_statuses_and_attempts(result.after)[0] == ("G", 1)


def test_late_error_replay_leaves_the_retried_task_alone(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    [instance_id] = scenario.start(1)
    path = f"/task_instances/{instance_id}/error"
    first = api.post(path, json=ERROR_REPORT)
    scenario.queue(scenario.task_ids[:1])  # the swarm retried the task meanwhile
    before = snapshot(db, scenario.workflow_id)
    second = api.post(path, json=ERROR_REPORT)
    after = snapshot(db, scenario.workflow_id)

    assert first.is_success and second.is_success, second.text
    assert second.json() == first.json() == {"task_instance_id": instance_id, "status": "E"}
    assert after == before
    assert task_statuses_and_attempts(after)[0] == ("Q", 2)


# --- resources and limits -------------------------------------------------------------------------


def adjusted_resources_replay(scenario: Scenario, api: httpx.Client, db: Engine) -> Replay:
    task_id = scenario.task_ids[0]
    requested = {"queue": "default", "memory": 8.0, "runtime": 900}
    body = {"items": [{"task_id": task_id, "requested": requested}]}
    path = f"/workflows/{scenario.workflow_id}/adjusted_resources"
    return replay(api, db, scenario.workflow_id, "POST", path, body)


def test_adjusted_resources_replay_changes_no_task(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    result = adjusted_resources_replay(scenario, api, db)
    assert result.first.is_success and result.second.is_success, result.second.text
    assert replace(result.after, task_resources=0) == replace(result.before, task_resources=0)


def test_adjusted_resources_replay_stores_no_second_row(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    assert_replay_is_harmless(adjusted_resources_replay(scenario, api, db))


def test_workflow_limit_replay_changes_nothing(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = f"/workflows/{scenario.workflow_id}/max_concurrently_running"
    result = replay(api, db, scenario.workflow_id, "PUT", path, {"max_concurrently_running": 7})
    assert assert_replay_is_harmless(result)["max_concurrently_running"] == 7


def test_template_limit_replay_changes_nothing(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = (
        f"/workflows/{scenario.workflow_id}/task_templates/{scenario.template_name}"
        "/max_concurrently_running"
    )
    result = replay(api, db, scenario.workflow_id, "PUT", path, {"max_concurrently_running": 2})
    assert list(assert_replay_is_harmless(result)["array_limits"].values()) == [2]


# --- control: stop, owner updates -----------------------------------------------------------------


def test_stop_replay_answers_the_stopped_run_alike(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    path = f"/workflows/{scenario.workflow_id}/stop"
    result = replay(api, db, scenario.workflow_id, "POST", path, None)
    assert assert_replay_is_harmless(result)["status"] == "S"


def test_task_update_replay_changes_nothing_more(
    scenario: Scenario, api: httpx.Client, db: Engine
) -> None:
    api.post(f"/workflows/{scenario.workflow_id}/stop", json=None).raise_for_status()
    path = f"/workflows/{scenario.workflow_id}/task_updates"
    body = {"task_ids": scenario.task_ids[:1], "status": "D"}
    result = replay(api, db, scenario.workflow_id, "POST", path, body)
    assert result.first.is_success, result.first.text
    assert result.first.json()["changed_task_ids"] == scenario.task_ids[:1]
    # The replay finds the task done already: it answers success and changes nothing.
    assert result.second.status_code == 200, result.second.text
    assert result.second.json()["changed_task_ids"] == []
    assert result.after == result.before
