"""Real workflows for the report and CLI tests: one done, one failed, one running.

The done and failed ones run to their end on the built-in ``sequential`` cluster; the running
one runs in a process of its own (``sleeping_workflow.py``) on ``multiprocess``, holding one
long task, until the test stops it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ProcessRegistry

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas.gui import WorkflowDetailOut

SLEEPING_SCRIPT = Path(__file__).with_name("sleeping_workflow.py")
# A command that holds about ``mib`` MiB of memory for a moment, so usage differs by task. The
# sizes used are well above the worker's own, which a forked command's peak starts from.
# (Bytes written, not a zeroed bytearray: untouched pages would not count as resident.)
HOLD_MEMORY = f"{sys.executable} -c 'import time; b = b\"x\" * ({{mib}} << 20); time.sleep(0.2)'"


@dataclass(frozen=True)
class FinishedWorkflows:
    """Ids of a done and a failed workflow and of their interesting tasks."""

    tool_name: str
    log_dir: Path
    done_id: int
    done_prepare_id: int
    done_model_ids: tuple[int, ...]
    failed_id: int
    failed_prepare_id: int
    failed_model_id: int
    flaky_id: int
    after_id: int
    crash_id: int
    flaky_marker: Path


def run_finished_workflows(requester: Requester, directory: Path, name: str) -> FinishedWorkflows:
    """Run a done workflow (prepare -> two models) and a failed one to their end.

    The failed one: prepare -> flaky (exit 3 twice: fatal) -> after (never runs), a model that
    is done, and crash (exit 5 once: fatal). ``flaky`` succeeds once ``flaky_marker`` exists.
    """
    log_dir = directory / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    marker = directory / "flaky-may-pass"
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("sequential")
    tool.set_default_compute_resources_from_dict(
        "sequential", {"stdout": str(log_dir), "stderr": str(log_dir)}
    )
    prepare = tool.get_task_template("prepare", "echo prepared {n}", node_args=["n"])
    model = tool.get_task_template("model", HOLD_MEMORY, node_args=["mib"])
    flaky = tool.get_task_template(
        "flaky",
        "if [ ! -e {marker} ]; then echo 'boom' >&2; exit 3; fi",
        node_args=["marker"],
    )
    crash = tool.get_task_template("crash", "echo {n} && exit 5", node_args=["n"])

    done = tool.create_workflow(workflow_args=f"{name}-done", name=f"{name}-done")
    first = prepare.create_task(n=1)
    models = [model.create_task(mib=mib, upstream_tasks=[first]) for mib in (64, 128)]
    done.add_tasks([first, *models])
    assert done.run() == "D"

    failed = tool.create_workflow(workflow_args=f"{name}-failed", name=f"{name}-failed")
    second = prepare.create_task(n=2)
    flaky_task = flaky.create_task(marker=str(marker), max_attempts=2, upstream_tasks=[second])
    after = prepare.create_task(n=3, upstream_tasks=[flaky_task])
    lone_model = model.create_task(mib=96)
    crash_task = crash.create_task(n=1, max_attempts=1)
    failed.add_tasks([second, flaky_task, after, lone_model, crash_task])
    assert failed.run() == "E"

    def task_id(task: object) -> int:
        value = getattr(task, "task_id", None)
        assert isinstance(value, int)
        return value

    assert done.workflow_id is not None and failed.workflow_id is not None
    return FinishedWorkflows(
        tool_name=name,
        log_dir=log_dir,
        done_id=done.workflow_id,
        done_prepare_id=task_id(first),
        done_model_ids=tuple(task_id(task) for task in models),
        failed_id=failed.workflow_id,
        failed_prepare_id=task_id(second),
        failed_model_id=task_id(lone_model),
        flaky_id=task_id(flaky_task),
        after_id=task_id(after),
        crash_id=task_id(crash_task),
        flaky_marker=marker,
    )


@dataclass(frozen=True)
class RunningWorkflow:
    """A workflow whose run holds one long task in a process the test owns."""

    workflow_id: int
    process: subprocess.Popen[bytes]
    output: Path


def start_running_workflow(
    processes: ProcessRegistry, server_url: str, directory: Path, name: str, env: dict[str, str]
) -> RunningWorkflow:
    """Start ``sleeping_workflow.py`` and wait until its long task is running.

    The script prints the workflow id once bound; the run then goes on until stopped.
    """
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{name}.out"
    with output.open("wb") as sink:
        process = processes.spawn(
            [sys.executable, str(SLEEPING_SCRIPT), server_url, name],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    workflow_id = None
    with Requester(server_url, timeout=30, retries=3) as requester:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the sleeping workflow ended early:\n{output.read_text()}")
            if workflow_id is None:
                first = output.read_text().split("\n", 1)[0].strip()
                workflow_id = int(first) if first.isdigit() and "\n" in output.read_text() else None
            if workflow_id is not None:
                detail = requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut)
                counts = detail.task_status_counts
                if counts.get("R", 0) == 1 and counts.get("D", 0) == 1:
                    return RunningWorkflow(workflow_id, process, output)
            time.sleep(0.1)
