"""Attacks on a real server, each refused: nobody acts as someone else.

Every row of the threat list in docs/security.md is tried here against a server process on
SQLite and PostgreSQL (MariaDB shares the code paths): no credentials, another user's token,
a run's token used beyond its run, expired, revoked and forged tokens. The owner and an
admin can still do what they could before, and every refusal lands in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import getpass
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from tests.conftest import RunningServer
from tests.support.tokens import admin_token, key_file, run_token, user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX
from herdsman.server.auth.keys import load_or_create_key
from herdsman.server.auth.tokens import Role, TokenSigner

pytestmark = pytest.mark.integration

OWNER = getpass.getuser()


@dataclass(frozen=True)
class Victim:
    """A bound workflow of the test user with a live run, and one task of it."""

    workflow_id: int
    run_id: int
    task_id: int
    template_version_id: int


@pytest.fixture(scope="module")
def victim(server: RunningServer) -> Victim:
    with Requester(server.url, token=user_token(OWNER)) as owner:
        tool = Tool("attacks-victim", requester=owner)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("work", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"victim-{time.time_ns()}")
        task = template.create_task(n=1)
        workflow.add_tasks([task])
        workflow_id = workflow.bind()
        run = owner.post(f"/workflows/{workflow_id}/runs", {}, _Json)
        assert task.task_id is not None
        return Victim(workflow_id, run.data["workflow_run_id"], task.task_id, 0)


class _Json:
    """Any JSON answer, for requests whose reply the tests do not model."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def model_validate_json(cls, content: bytes) -> _Json:
        import json

        return cls(json.loads(content))


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API_PREFIX, timeout=30) as client:
        yield client


def call(
    http: httpx.Client, method: str, path: str, token: str | None, body: Any = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return http.request(method, path, json=body, headers=headers)


def owner_changes(victim: Victim) -> list[tuple[str, str, Any]]:
    """The state-changing requests of the threat list, aimed at the victim's workflow."""
    w, r = victim.workflow_id, victim.run_id
    return [
        ("PUT", f"/workflow_runs/{r}/status", {"status": "S"}),
        ("POST", f"/workflows/{w}/stop", None),
        ("PUT", f"/workflows/{w}/max_concurrently_running", {"max_concurrently_running": 0}),
        (
            "PUT",
            f"/workflows/{w}/task_templates/work/max_concurrently_running",
            {"max_concurrently_running": 0},
        ),
        ("POST", f"/workflows/{w}/runs", {"resume": True}),
        ("POST", f"/workflows/{w}/reset", {"partial": False}),
        ("POST", f"/workflows/{w}/task_updates", {"task_ids": [victim.task_id], "status": "D"}),
        ("POST", f"/workflow_runs/{r}/queue", {"task_ids": [victim.task_id]}),
        ("POST", f"/workflow_runs/{r}/token", None),
        ("POST", f"/workflow_runs/{r}/heartbeat", {"next_report_seconds": 60}),
        ("PUT", f"/workflows/{w}/tasks", {}),
        ("POST", f"/workflows/{w}/bound", None),
    ]


def test_no_credentials_are_refused_everywhere_but_health(
    http: httpx.Client, victim: Victim
) -> None:
    assert call(http, "GET", "/health", None).status_code == 200
    for method, path, body in owner_changes(victim):
        answer = call(http, method, path, None, body)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["error"] == "AuthenticationError"
    assert call(http, "GET", f"/workflows/{victim.workflow_id}", None).status_code == 401
    assert call(http, "POST", "/task_instances/1/done", None, {}).status_code == 401


def test_another_users_token_cannot_change_the_workflow(http: httpx.Client, victim: Victim) -> None:
    intruder = user_token("intruder")
    for method, path, body in owner_changes(victim):
        answer = call(http, method, path, intruder, body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"] == "PermissionDeniedError"
    # but reading is open to any signed-in user (auth.readers = signed_in)
    assert call(http, "GET", f"/workflows/{victim.workflow_id}", intruder).status_code == 200


def test_another_user_cannot_inject_a_task_into_the_workflow(
    server: RunningServer, victim: Victim
) -> None:
    """The attack seen: bind a task with a command into someone's workflow, then queue it."""
    with Requester(server.url, token=user_token("intruder")) as intruder:
        tool = Tool("attacks-victim", requester=intruder)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("work", "echo {n}; touch /tmp/pwned", node_args=["n"])
        workflow = tool.create_workflow(workflow_args="injected")
        workflow.add_tasks([template.create_task(n=2)])
        workflow.bind()  # their own workflow: fine
        body = {
            "task_args_hashes": [],
            "node_ids": [],
            "array_ids": [],
            "names": [],
            "commands": [],
            "max_attempts": [],
            "task_resources_ids": [],
            "task_args": [],
        }
        with httpx.Client(base_url=server.url + API_PREFIX) as http:
            answer = call(
                http, "PUT", f"/workflows/{victim.workflow_id}/tasks", user_token("intruder"), body
            )
        assert answer.status_code == 403


def test_a_run_token_acts_for_its_own_run_only(
    http: httpx.Client, victim: Victim, server: RunningServer
) -> None:
    own = run_token(victim.run_id, victim.workflow_id)
    other_run = run_token(victim.run_id + 1000, victim.workflow_id + 1000)
    # its own run's machinery routes and its own workflow's reads are open to it
    nothing = {"limit": 1, "cluster_name": "no-such-cluster"}  # claims nothing, but is allowed
    claim = call(http, "POST", f"/workflow_runs/{victim.run_id}/claim", own, nothing)
    assert claim.status_code == 200, claim.text
    assert call(http, "GET", f"/workflows/{victim.workflow_id}", own).status_code == 200
    # another run's token may not claim here, nor report on this run's instances
    claim = call(http, "POST", f"/workflow_runs/{victim.run_id}/claim", other_run, nothing)
    assert claim.status_code == 403
    assert call(http, "GET", f"/workflows/{victim.workflow_id}", other_run).status_code == 403
    # a run token is no user: it cannot bind, steer, or mint tokens
    for method, path, body in owner_changes(victim):
        assert call(http, method, path, own, body).status_code == 403, (method, path)
    assert call(http, "PUT", "/tools", own, {"name": "x"}).status_code == 403
    # and a user (not admin) cannot use the machinery routes
    mine = user_token(OWNER)
    claim = call(http, "POST", f"/workflow_runs/{victim.run_id}/claim", mine, nothing)
    assert claim.status_code == 403


def test_a_run_token_cannot_report_on_instances_of_another_run(
    http: httpx.Client, victim: Victim, requester: Requester
) -> None:
    other = run_token(victim.run_id + 1000, victim.workflow_id)
    queued = call(
        http,
        "POST",
        f"/workflow_runs/{victim.run_id}/queue",
        user_token(OWNER),
        {"task_ids": [victim.task_id]},
    )
    assert queued.status_code == 200, queued.text
    own = run_token(victim.run_id, victim.workflow_id)
    claimed = call(http, "POST", f"/workflow_runs/{victim.run_id}/claim", own, {"limit": 10})
    instances = [item["task_instance_id"] for item in claimed.json()["instances"]]
    assert instances, claimed.text
    refused = call(
        http,
        "POST",
        "/task_instances/submit_failed",
        other,
        {"task_instance_ids": instances, "message": "refused"},
    )
    assert refused.status_code == 403
    report = {"host": "h", "pid": 1, "herdsman_version": "0", "next_report_seconds": 60}
    running = call(http, "POST", f"/task_instances/{instances[0]}/running", other, report)
    assert running.status_code == 403


def test_expired_forged_and_unsigned_tokens_are_refused(http: httpx.Client) -> None:
    key = load_or_create_key(key_file())
    expired, _ = TokenSigner(key).issue_user_token(OWNER, Role.ADMIN, dt.timedelta(minutes=-5))
    forged, _ = TokenSigner(b"f" * 32).issue_user_token(OWNER, Role.ADMIN, dt.timedelta(days=1))
    payload = {"iss": "herdsman", "sub": OWNER, "role": "admin", "jti": "x", "exp": 4_000_000_000}
    unsigned = jwt.encode(payload, None, algorithm="none")
    for token in (expired, forged, unsigned, "garbage"):
        answer = call(http, "GET", "/auth/whoami", token)
        assert answer.status_code == 401, (token, answer.text)


def test_a_revoked_token_stops_working_within_seconds(
    http: httpx.Client, server: RunningServer
) -> None:
    token = user_token("leaver")
    assert call(http, "GET", "/auth/whoami", token).json()["user"] == "leaver"
    revoked = subprocess.run(
        [
            str(Path(sys.executable).parent / "herdsman"),
            "server",
            "token",
            "revoke",
            token,
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        text=True,
        env=_operator_env(),
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 30
    while call(http, "GET", "/auth/whoami", token).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.5)
    assert call(http, "GET", "/auth/whoami", token).json()["error"] == "AuthenticationError"


def _operator_env() -> dict[str, str]:
    import os

    return {**os.environ, "HERDSMAN_AUTH__KEY_FILE": str(key_file())}


def test_owner_and_admin_may_act_and_every_refusal_is_audited(
    http: httpx.Client, victim: Victim
) -> None:
    w = victim.workflow_id
    limit = {"max_concurrently_running": 5}
    path = f"/workflows/{w}/max_concurrently_running"
    assert call(http, "PUT", path, user_token(OWNER), limit).status_code == 200
    assert call(http, "PUT", path, admin_token("operator"), limit).status_code == 200
    assert call(http, "PUT", path, user_token("mallory"), limit).status_code == 403
    expected = {(OWNER, "PUT", 200), ("operator", "PUT", 200), ("mallory", "PUT", 403)}
    # The audit row is written just after the answer is sent: wait for it.
    deadline = time.monotonic() + 30
    while True:
        history = call(http, "GET", f"/workflows/{w}/history", user_token(OWNER)).json()["entries"]
        seen = {
            (e["user"], e["method"], e["status_code"])
            for e in history
            if e["path"].endswith("/max_concurrently_running")
        }
        if expected <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert expected <= seen
    refused = [e for e in history if e["user"] == "mallory"]
    assert "only the owner" in refused[-1]["message"]


def test_whoami_names_the_token_holder(http: httpx.Client) -> None:
    me = call(http, "GET", "/auth/whoami", admin_token("operator")).json()
    assert (me["user"], me["role"], me["kind"]) == ("operator", "admin", "user")
