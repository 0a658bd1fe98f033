"""Jobmon's published examples, written afresh in Jobmon's import style
(``tests/e2e/jobmon_examples``), run with only their imports changed: by the sed line that
docs/jobmon.md gives, read from the page itself so the docs cannot drift from what works.

Each runs as the user's script would, in a process of its own against the server, on a local
cluster, and must end done with what it promises.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import RunningServer

from herdsman.client import queries
from herdsman.core.requester import Requester

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).with_name("jobmon_examples")
DOC = Path(__file__).resolve().parents[2] / "docs" / "jobmon.md"


def sed_line() -> list[str]:
    """The documented sed command, without the file name it ends with."""
    found = re.search(r"```sh\n\s*(sed -i .*?) my_workflow\.py\n", DOC.read_text())
    assert found is not None, "docs/jobmon.md shows no `sed -i ... my_workflow.py` line"
    return shlex.split(found.group(1))


def rewritten(tmp_path: Path, *names: str) -> Path:
    """The examples copied to ``tmp_path`` with the documented sed line applied to the .py."""
    for name in names:
        copy = tmp_path / name
        shutil.copy(EXAMPLES / name, copy)
        if name.endswith(".py"):
            subprocess.run([*sed_line(), str(copy)], check=True)
            imports = [
                line
                for line in copy.read_text().splitlines()
                if line.startswith(("import ", "from "))
            ]
            assert not [line for line in imports if "jobmon" in line], imports
            assert any("herdsman" in line for line in imports), imports
    return tmp_path / names[0]


def run(script: Path, server: RunningServer, *args: str) -> tuple[str, int]:
    """Run the script to its end; its output and the workflow id it printed."""
    env = {**os.environ, "HERDSMAN_SERVER_URL": server.url}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    found = re.search(r"^workflow_id=(\d+)$", done.stdout, re.MULTILINE)
    assert found is not None, output
    return done.stdout, int(found.group(1))


def task_statuses(requester: Requester, workflow_id: int) -> dict[str, str]:
    page = queries.workflow_tasks(requester, workflow_id, [], 100)
    return {task.name: task.status for task in page.tasks}


def test_the_quickstart(server: RunningServer, requester: Requester, tmp_path: Path) -> None:
    script = rewritten(tmp_path, "quickstart.py")
    stdout, workflow_id = run(script, server)
    assert "Workflow completed with status: D" in stdout
    assert task_statuses(requester, workflow_id) == {"say_hello": "D", "say_goodbye": "D"}
    page = queries.workflow_tasks(requester, workflow_id, [], 100)
    said = {
        task.name: queries.task_attempts(requester, task.id, 1).attempts[-1].stdout_tail.strip()
        for task in page.tasks
    }
    assert said == {
        "say_hello": "Hello from the quickstart",
        "say_goodbye": "Goodbye from the quickstart",
    }


def test_the_six_job_test(server: RunningServer, requester: Requester, tmp_path: Path) -> None:
    script = rewritten(tmp_path, "six_job_test.py", "six_job_test_resources.yaml")
    stdout, workflow_id = run(script, server, "multiprocess", str(tmp_path / "wf_id"))
    assert "six jobs done" in stdout
    assert (tmp_path / "wf_id").read_text() == str(workflow_id)
    assert task_statuses(requester, workflow_id) == {f"t{i}": "D" for i in range(1, 7)}
    # The YAML's resources reached the tasks: the template's runtime over the tool's.
    page = queries.workflow_tasks(requester, workflow_id, [], 100)
    runtimes = {
        task.name: queries.task_attempts(requester, task.id).attempts[-1].requested_runtime
        for task in page.tasks
    }
    assert runtimes == {"t1": 3600, "t2": 1200, "t3": 1200, "t4": 1200, "t5": 1200, "t6": 300}


def test_a_task_generator_example(
    server: RunningServer, requester: Requester, tmp_path: Path, fast_cluster: str
) -> None:
    script = rewritten(tmp_path, "task_generator_example.py")
    out = tmp_path / "out"
    out.mkdir()
    _, workflow_id = run(script, server, fast_cluster, str(out))

    statuses = task_statuses(requester, workflow_id)
    assert set(statuses.values()) == {"D"}
    assert len(statuses) == 4
    assert {"summarize:region=east:year=2020", "combine"} <= set(statuses)
    files = {path.name: path.read_text().strip() for path in out.iterdir()}
    assert files == {
        "east-2020.txt": "3.5",
        "north-2021.txt": "6.0",
        "south-2021.txt": "6.0",
        "combined.txt": "15.5",
    }
    # Each task printed what its function returned.
    page = queries.workflow_tasks(requester, workflow_id, [], 100)
    printed = {
        task.name: queries.task_attempts(requester, task.id, 1).attempts[-1].stdout_tail.strip()
        for task in page.tasks
    }
    assert printed["summarize:region=east:year=2020"] == "3.5"
    assert printed["combine"] == "15.5"


def test_the_health_example_with_task_scripts(
    server: RunningServer, requester: Requester, tmp_path: Path, fast_cluster: str
) -> None:
    """Data preparation, one task per location, a summary: scripts that write files."""
    script = rewritten(tmp_path, "health_example.py")
    shutil.copytree(EXAMPLES / "health_tasks", tmp_path / "health_tasks")
    root = tmp_path / "data"
    stdout, workflow_id = run(script, server, fast_cluster, str(root))
    assert f"Workflow {workflow_id} completed with status D." in stdout

    locations = [f"health_location_location_id-{i}" for i in range(5)]
    assert task_statuses(requester, workflow_id) == dict.fromkeys(
        ["data_prep_task", *locations, "health_summary"], "D"
    )
    page = queries.workflow_tasks(requester, workflow_id, [], 100)
    ids = {task.name: task.id for task in page.tasks}
    # The edges wired after create_tasks: prep -> each location -> summary.
    summary_deps = queries.task_dependencies(requester, ids["health_summary"])
    assert sorted(n.name for n in summary_deps.upstream) == sorted(locations)
    for name in locations:
        deps = queries.task_dependencies(requester, ids[name])
        assert [n.name for n in deps.upstream] == ["data_prep_task"]
        assert [n.name for n in deps.downstream] == ["health_summary"]

    # The files each script promises, with what they hold.
    data = root / "health_example"
    files = {path.name: path.read_text() for path in data.iterdir()}
    assert files == {
        **{f"shard_{i}.txt": f"1 {i + 1}\n2 {2 * (i + 1)}\n3 {3 * (i + 1)}\n" for i in range(5)},
        **{f"location_{i}.txt": f"location_id={i} total={6 * (i + 1)}\n" for i in range(5)},
        "summary.txt": "locations=5 total=90\n",
    }

    # Each template's resources reached its tasks, and their stdout/stderr directory was used.
    logs = root / "logs"
    for name, task_id in ids.items():
        attempt = queries.task_attempts(requester, task_id).attempts[-1]
        cores, runtime = (1, 60) if name == "data_prep_task" else (2, 600)
        assert (attempt.requested_cores, attempt.requested_runtime) == (cores, runtime), name
        assert attempt.stdout_path is not None and attempt.stderr_path is not None, name
        assert Path(attempt.stdout_path).parent == logs, attempt.stdout_path
        assert Path(attempt.stdout_path).read_text() == attempt.stdout_tail, name
    # The op arg log_level=DEBUG reached the scripts: their debug lines are in the .e files.
    location_0 = queries.task_attempts(requester, ids[locations[0]]).attempts[-1]
    assert location_0.stderr_path is not None
    assert "DEBUG location 0: 3 age groups" in Path(location_0.stderr_path).read_text()
    summary = queries.task_attempts(requester, ids["health_summary"]).attempts[-1]
    assert summary.stdout_tail.strip() == "locations=5 total=90"
