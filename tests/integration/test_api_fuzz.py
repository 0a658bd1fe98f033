"""The API fuzzed: every operation of the OpenAPI document, with an admin's token and without.

Schemathesis reads the server's own document and sends requests drawn from it: its examples,
the boundaries of each field (the coverage phase), random valid and invalid values, and
sequences that feed one answer's ids into the next call. Whatever it sends, the server must
never fail (no 5xx), and every answer must be one the document declares, with that status,
content type and body schema. A workflow with a run is bound first, so that small ids lead
to real rows and the routes behind the 404s are reached too.

The number of examples per operation is bounded so the run fits CI; the seed is fixed, so a
failure reproduces with the command printed in the failure message.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import RunningServer
from tests.support.tokens import admin_token, user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX
from herdsman.core.schemas.swarm import WorkflowRunIn, WorkflowRunOut

pytestmark = pytest.mark.integration

FUZZED_ENGINES = ("sqlite", "postgresql")
MAX_EXAMPLES = 10
SEED = 20261205
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)
HOOKS = Path(__file__).parents[1] / "support" / "fuzz_hooks.py"


def bind_workflow_with_run(server: RunningServer) -> None:
    with Requester(server.url, token=user_token(getpass.getuser())) as owner:
        tool = Tool("fuzzed", requester=owner)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("step", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"fuzzed-{time.time_ns()}")
        first = template.create_task(n=1)
        second = template.create_task(n=2, upstream_tasks=[first])
        workflow.add_tasks([first, second])
        workflow_id = workflow.bind()
        owner.post(f"/workflows/{workflow_id}/runs", WorkflowRunIn(), WorkflowRunOut)


def schemathesis_command(server: RunningServer, token: str | None) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}{API_PREFIX}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "30",
        "--warnings",
        "off",
    ]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    return command


def summary(output: str) -> str:
    """The figures of a run: operations tested, cases generated, seconds taken."""
    operations = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    seconds = re.search(r" in ([\d.]+)s", output)
    found = [m.group(1) if m else "?" for m in (operations, cases, seconds)]
    return f"{found[0]} operations, {found[1]} cases, {found[2]} s"


@pytest.mark.parametrize("credentials", ["admin", "none"])
def test_every_operation_answers_as_documented(
    server: RunningServer, credentials: str, tmp_path: Path
) -> None:
    if server.engine not in FUZZED_ENGINES:
        pytest.skip("fuzzed on SQLite and PostgreSQL; MariaDB runs the same routes")
    bind_workflow_with_run(server)
    token = admin_token() if credentials == "admin" else None
    command = schemathesis_command(server, token)
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HOOKS), NO_COLOR="1")
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800
    )
    output = result.stdout + result.stderr
    print(f"schemathesis, {credentials} credentials, {server.engine}: {summary(output)}")
    assert result.returncode == 0, output[-12000:]
    assert re.search(r"Tested: [1-9]\d+", output), output[-4000:]
