"""A shared server's per-user limits, through a real server: live runs and request rate.

The rate-limited server allows 3 requests in a burst and then one per 100 s, so a test's
fourth request is refused however slow the machine is; the machinery's routes are never
refused, however many they send.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.support.tokens import bearer, run_token, user_token

from herdsman import Tool
from herdsman.core.errors import TooManyRequestsError
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas

if TYPE_CHECKING:
    from tests.conftest import ProcessRegistry

pytestmark = pytest.mark.integration

API = "/api/v1"


def _start(
    processes: ProcessRegistry, database_url: str, state_dir: Path, settings: dict[str, str]
) -> Iterator[str]:
    from tests.conftest import start_server_process

    process, info = start_server_process(
        processes,
        database_url=database_url,
        state_dir=state_dir,
        extra_args=("--no-upgrade",),
        extra_env=settings,
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


@pytest.fixture(scope="module")
def limited_runs_url(
    server: object,
    database_url: str,
    processes: ProcessRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _start(
        processes,
        database_url,
        tmp_path_factory.mktemp("limited-runs"),
        {"HERDSMAN_SERVER__MAX_ACTIVE_RUNS_PER_USER": "1"},
    )


@pytest.fixture(scope="module")
def limited_rate_url(
    server: object,
    database_url: str,
    processes: ProcessRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _start(
        processes,
        database_url,
        tmp_path_factory.mktemp("limited-rate"),
        {
            "HERDSMAN_SERVER__REQUESTS_PER_SECOND_PER_USER": "0.01",
            "HERDSMAN_SERVER__REQUEST_BURST": "3",
        },
    )


def _bound_workflow(requester: Requester, name: str) -> int:
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("dummy")
    template = tool.get_task_template("guard", "true {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=name)
    workflow.add_tasks(template.create_tasks(i=range(3)))
    return workflow.bind()


def test_a_user_over_the_live_run_limit_gets_429_naming_the_setting(
    limited_runs_url: str,
) -> None:
    user = f"runner-{time.time_ns()}"
    with Requester(limited_runs_url, token=user_token(user)) as requester:
        first = _bound_workflow(requester, f"guard-a-{user}")
        second = _bound_workflow(requester, f"guard-b-{user}")
        run = requester.post(
            f"/workflows/{first}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
        )
        with pytest.raises(TooManyRequestsError) as refused:
            requester.post(
                f"/workflows/{second}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
            )
        assert "server.max_active_runs_per_user" in refused.value.message
        assert "1 active workflow run" in refused.value.message
        # Once the first run has ended, the second may start.
        requester.put(
            f"/workflow_runs/{run.workflow_run_id}/status",
            sschemas.RunStatusIn(status="S"),
            sschemas.RunStatusOut,
        )
        requester.post(
            f"/workflows/{second}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
        )
    # Another user's runs are theirs to count.
    with Requester(limited_runs_url, token=user_token(f"other-{user}")) as other:
        third = _bound_workflow(other, f"guard-c-{user}")
        other.post(f"/workflows/{third}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut)


def test_people_over_the_request_rate_get_429_naming_the_setting(limited_rate_url: str) -> None:
    headers = bearer(user_token(f"reader-{time.time_ns()}"))
    statuses = [
        httpx.get(f"{limited_rate_url}{API}/workflow_summaries", headers=headers, timeout=60)
        for _ in range(4)
    ]

    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    body = statuses[-1].json()
    assert body["error"] == "TooManyRequestsError"
    assert "server.requests_per_second_per_user" in body["message"]
    assert body["details"]["limit"] == "server.requests_per_second_per_user"


def test_the_machinery_is_never_rate_limited(
    limited_rate_url: str, server: object, requester: Requester
) -> None:
    """A run bound and started elsewhere; its swarm's and its distributor's routes, called far
    more often than the burst, on the rate-limited server, are all answered."""
    user = f"machine-{time.time_ns()}"
    workflow_id = _bound_workflow(requester, f"guard-m-{user}")
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    swarm_headers = bearer(user_token(user))
    run_headers = bearer(run_token(run.workflow_run_id, workflow_id, user))
    with httpx.Client(base_url=f"{limited_rate_url}{API}", timeout=60) as client:
        for _ in range(10):
            feed = client.get(f"/workflows/{workflow_id}/changes", headers=swarm_headers)
            claim = client.post(
                f"/workflow_runs/{run.workflow_run_id}/claim",
                headers=run_headers,
                content=dschemas.ClaimIn(limit=1).model_dump_json(),
            )
            assert feed.status_code != 429, feed.text
            assert claim.status_code != 429, claim.text
        # The same user's own reads are metered: the burst is spent after three.
        reads = [
            client.get("/workflow_summaries", headers=swarm_headers).status_code for _ in range(4)
        ]
    assert reads == [200, 200, 200, 429]


def test_the_cli_shows_the_refusal_in_one_line(
    limited_rate_url: str, herdsman_executable: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=limited_rate_url,
        HERDSMAN_DATA_DIR=str(tmp_path / "data"),
        HERDSMAN_CONFIG_FILE=str(tmp_path / "config.yaml"),
        HERDSMAN_TOKEN=user_token(f"cli-{time.time_ns()}"),
        COLUMNS="200",
    )
    results = [
        subprocess.run(
            [herdsman_executable, "workflow", "status"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        for _ in range(4)
    ]

    refused = [r for r in results if r.returncode != 0]
    assert refused, [r.stdout + r.stderr for r in results]
    error_lines = [line for line in refused[0].stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, refused[0].stderr
    assert "server.requests_per_second_per_user" in error_lines[0]
    assert "Traceback" not in refused[0].stderr
