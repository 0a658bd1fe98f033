"""Signing in with MUNGE: a user gets a token for their own uid, and for no one else's.

MUNGE runs with the Slurm that ``scripts/local-slurm`` starts (it also links the socket to
the place ``munge`` and ``unmunge`` look by default, as on a real cluster). A shared server
with ``auth.munge`` on decodes the credential ``herdsman login`` sends, and hands out a token
for the login name of the uid that made it. The user ``nobody`` signs in the same way and
gets a token that is nobody's: it cannot stop the test user's workflow.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import ProcessRegistry, start_server_process
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX

pytestmark = pytest.mark.skipif(
    shutil.which("munge") is None or shutil.which("unmunge") is None,
    reason="MUNGE is not installed (scripts/local-slurm installs it)",
)

# Run as nobody with the system's Python: get a MUNGE credential, sign in, and try to stop
# another user's workflow with the token the server answered.
AS_NOBODY = r"""
import json, subprocess, sys, urllib.request, urllib.error
url, workflow_id = sys.argv[1], sys.argv[2]
def call(method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
credential = subprocess.run(["munge", "-n"], capture_output=True, text=True, check=True).stdout
status, answer = call("POST", "/api/v1/auth/munge", body={"credential": credential.strip()})
token = answer.get("token")
found = {"login": status, "user": answer.get("user")}
found["whoami"] = call("GET", "/api/v1/auth/whoami", token)[1].get("user")
found["stop"] = call("POST", f"/api/v1/workflows/{workflow_id}/stop", token)[0]
print(json.dumps(found))
"""


@pytest.fixture
def munge_server(
    fresh_database_url: str, processes: ProcessRegistry, tmp_path: Path
) -> Iterator[str]:
    """A shared server that signs users in with MUNGE; its URL."""
    process, info = start_server_process(
        processes,
        database_url=fresh_database_url,
        state_dir=tmp_path / "server",
        extra_env={"HERDSMAN_AUTH__MUNGE": "true"},
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


def munge_credential() -> str:
    result = subprocess.run(["munge", "-n"], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        pytest.fail(f"munge -n failed (is munged running? scripts/local-slurm start): {result}")
    return result.stdout.strip()


def cli_environment(url: str, token_file: Path) -> dict[str, str]:
    """The user's shell: a shared server configured, no token yet but the token file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=url,
        HERDSMAN_TOKEN_FILE=str(token_file),
        HERDSMAN_CONFIG_FILE=str(token_file.parent / "no-config.yaml"),
        HERDSMAN_DATA_DIR=str(token_file.parent / "data"),
    )
    return env


def test_login_keeps_a_token_for_the_callers_own_uid(
    munge_server: str, herdsman_executable: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "config" / "token"
    env = cli_environment(munge_server, token_file)

    login = subprocess.run(
        [herdsman_executable, "login"], env=env, capture_output=True, text=True, timeout=60
    )
    assert login.returncode == 0, login.stderr
    assert f"as {getpass.getuser()} until" in login.stdout
    assert token_file.stat().st_mode & 0o777 == 0o600

    whoami = subprocess.run(
        [herdsman_executable, "whoami"], env=env, capture_output=True, text=True, timeout=60
    )
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.startswith(f"{getpass.getuser()} (user) on {munge_server}")


def test_a_replayed_or_made_up_credential_gets_no_token(munge_server: str) -> None:
    credential = munge_credential()
    with httpx.Client(base_url=munge_server + API_PREFIX, timeout=30) as http:
        first = http.post("/auth/munge", json={"credential": credential})
        replayed = http.post("/auth/munge", json={"credential": credential})
        made_up = http.post("/auth/munge", json={"credential": "MUNGE:AAAAnotacredential:"})
    assert first.status_code == 200, first.text
    assert first.json()["user"] == getpass.getuser()
    assert replayed.status_code == 401
    assert "replayed" in replayed.json()["message"].lower()
    assert made_up.status_code == 401


def test_a_server_without_munge_login_refuses_it(server_without_munge: str) -> None:
    answer = httpx.post(
        f"{server_without_munge}{API_PREFIX}/auth/munge",
        json={"credential": munge_credential()},
        timeout=30,
    )
    assert answer.status_code == 403
    assert "ask its operator for a token" in answer.json()["message"]


@pytest.fixture
def server_without_munge(
    fresh_database_url: str, processes: ProcessRegistry, tmp_path: Path
) -> Iterator[str]:
    process, info = start_server_process(
        processes, database_url=fresh_database_url, state_dir=tmp_path / "server"
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3 to act as another user",
)
def test_another_user_signs_in_as_themselves_and_cannot_act_as_the_owner(
    munge_server: str,
) -> None:
    with Requester(munge_server, token=user_token(getpass.getuser())) as owner:
        tool = Tool("munge-owner", requester=owner)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("work", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"owned-{time.time_ns()}")
        workflow.add_tasks([template.create_task(n=1)])
        workflow_id = workflow.bind()

    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            AS_NOBODY,
            munge_server,
            str(workflow_id),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "login": 200,
        "user": "nobody",
        "whoami": "nobody",
        "stop": 403,
    }
