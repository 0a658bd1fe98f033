"""Errors grouped by signature, through real commands, a real server and the real CLI.

Failures that differ only in numbers and paths share a group; different failures do not; each
group has its exit class, counts, first and last times and its newest error with the stderr
the command left, in the route's JSON, the CLI's table and its ``--json`` (issue 14).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import RunningServer
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas.queries import ErrorGroupsOut, TaskAttemptsOut

pytestmark = pytest.mark.integration

_RAISE = (
    f"{sys.executable} -c "
    '\'import sys; sys.stderr.write("loading /data/{n}/input.csv\\n"); '
    'raise ValueError("bad value {n}")\''
)
_ALLOCATE = f"{sys.executable} -c 'import time; b = b\"x\" * (300 << 20); time.sleep({{n}})'"


def _herdsman(server: RunningServer, tmp_path: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=server.url,
        HERDSMAN_DATA_DIR=str(tmp_path / "data"),
        HERDSMAN_CONFIG_FILE=str(tmp_path / "config.yaml"),
        HERDSMAN_TOKEN=user_token(),
    )
    executable = Path(sys.executable).with_name("herdsman")
    done = subprocess.run(
        [str(executable), *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def failed(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, dict[str, int]]]:
    """A workflow whose tasks fail in three ways, two of them twice with other numbers and
    paths, and one that outgrows its memory request."""
    with Requester(server.url, timeout=60, retries=3) as requester:
        yield _run_failing_workflow(requester, tmp_path_factory.mktemp("error-groups"))


def _run_failing_workflow(requester: Requester, tmp_path: Path) -> tuple[int, dict[str, int]]:
    tool = Tool(f"error-groups-{time.time()}", requester=requester)
    tool.set_default_cluster_name("sequential")
    missing = tool.get_task_template("missing", "python3 {script}", node_args=["script"])
    raising = tool.get_task_template("raising", _RAISE, node_args=["n"])
    listing = tool.get_task_template("listing", "ls {path}", node_args=["path"])
    hungry = tool.get_task_template("hungry", _ALLOCATE, node_args=["n"])
    tasks = {
        "missing-1": missing.create_task(
            script=str(tmp_path / "run_1" / "reduce_typo.py"), max_attempts=1
        ),
        "missing-2": missing.create_task(script="/scratch/b/run_22/other.py", max_attempts=1),
        "raising-3": raising.create_task(n=3, max_attempts=1),
        "raising-45": raising.create_task(n=45, max_attempts=1),
        "listing": listing.create_task(path="/nonexistent/dir", max_attempts=1),
        "hungry": hungry.create_task(n=1, max_attempts=1, compute_resources={"memory": "100M"}),
    }
    workflow = tool.create_workflow(workflow_args=tool.name)
    workflow.add_tasks(list(tasks.values()))
    assert workflow.run() == "E"
    assert workflow.workflow_id is not None
    return workflow.workflow_id, {name: task.task_id for name, task in tasks.items()}


def test_errors_differing_in_numbers_and_paths_share_a_group(
    failed: tuple[int, dict[str, int]], requester: Requester
) -> None:
    workflow_id, ids = failed
    found = requester.get(f"/workflows/{workflow_id}/error_groups", ErrorGroupsOut)

    assert (found.count, found.tasks, found.group_count) == (6, 6, 4)
    by_tasks = {tuple(group.task_ids): group for group in found.groups}
    assert set(by_tasks) == {
        tuple(sorted((ids["missing-1"], ids["missing-2"]))),
        tuple(sorted((ids["raising-3"], ids["raising-45"]))),
        (ids["listing"],),
        (ids["hungry"],),
    }
    assert [group.count for group in found.groups] == [2, 2, 1, 1]  # largest first
    missing = by_tasks[tuple(sorted((ids["missing-1"], ids["missing-2"])))]
    assert missing.exit_class == "command error"
    assert missing.pattern == (
        "exit code 2 | <path>: can't open file '<path>': [Errno <n>] No such file or directory"
    )
    newest_path = (
        "/scratch/b/run_22/other.py"
        if missing.newest.task_id == ids["missing-2"]
        else ("reduce_typo.py")
    )
    assert newest_path in missing.newest.stderr_tail
    assert missing.first_seen <= missing.last_seen
    raising = by_tasks[tuple(sorted((ids["raising-3"], ids["raising-45"])))]
    assert raising.pattern.endswith("ValueError: bad value <n>")
    assert raising.newest.stderr_tail.startswith("loading /data/")
    hungry = by_tasks[(ids["hungry"],)]
    assert hungry.exit_class == "out of memory"
    assert "memory request" in hungry.sample

    fewer = requester.get(
        f"/workflows/{workflow_id}/error_groups",
        ErrorGroupsOut,
        params={"limit": 1, "tail_lines": 1},
    )
    assert fewer.group_count == 4 and len(fewer.groups) == 1
    assert fewer.groups[0].newest.stderr_tail.count("\n") == 1


def test_cli_shows_groups_with_their_stderr(
    failed: tuple[int, dict[str, int]], server: RunningServer, tmp_path: Path
) -> None:
    workflow_id, _ = failed
    as_json: dict[str, Any] = json.loads(
        _herdsman(server, tmp_path, "workflow", "errors", "-w", str(workflow_id), "--json")
    )
    assert as_json["count"] == 6 and as_json["group_count"] == 4
    assert {group["exit_class"] for group in as_json["groups"]} == {
        "command error",
        "out of memory",
    }
    table = _herdsman(server, tmp_path, "workflow", "errors", "-w", str(workflow_id))
    assert table.splitlines()[0].split() == ["COUNT", "TASKS", "LATEST", "SAMPLE"]
    assert "group 1: command error, 2 errors of 2 tasks" in table
    assert "ValueError: bad value " in table
    assert "No such file or directory" in table
    assert table.splitlines()[-1] == "6 errors in 4 groups"


def test_task_status_shows_output_tails_and_requested_vs_used(
    failed: tuple[int, dict[str, int]],
    requester: Requester,
    server: RunningServer,
    tmp_path: Path,
) -> None:
    _, ids = failed
    attempts = requester.get(f"/tasks/{ids['raising-3']}/attempts", TaskAttemptsOut)
    (attempt,) = attempts.attempts
    assert attempt.stderr_tail.startswith("loading /data/3/input.csv\nTraceback")
    assert attempt.stderr_tail.endswith("ValueError: bad value 3\n")
    assert attempt.exit_class == "command error"
    last = requester.get(
        f"/tasks/{ids['raising-3']}/attempts", TaskAttemptsOut, params={"tail_lines": 1}
    )
    assert last.attempts[0].stderr_tail == "ValueError: bad value 3\n"

    (hungry,) = requester.get(f"/tasks/{ids['hungry']}/attempts", TaskAttemptsOut).attempts
    assert hungry.requested_memory == 100 << 20
    assert hungry.max_rss is not None and hungry.max_rss > 100 << 20

    table = _herdsman(server, tmp_path, "task", "status", "-t", str(ids["raising-3"]))
    assert "command error: exit code 1" in table
    assert table.rstrip().endswith("ValueError: bad value 3")
    full = _herdsman(
        server, tmp_path, "task", "status", "-t", str(ids["raising-3"]), "--lines", "1"
    )
    assert "loading /data" not in full and "ValueError: bad value 3" in full
    hungry_table = _herdsman(server, tmp_path, "task", "status", "-t", str(ids["hungry"]))
    assert "/ 100.0 MiB" in hungry_table
    assert "out of memory: the command used" in hungry_table
