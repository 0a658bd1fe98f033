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
from herdsman.core.schemas.queries import WorkflowDetailOut

SLEEPING_SCRIPT = Path(__file__).with_name("sleeping_workflow.py")
# A command that holds about ``mib`` MiB of memory for a moment, so usage differs by task. The
# sizes used are well above the worker's own, which a forked command's peak starts from.
# (Bytes written, not a zeroed bytearray: untouched pages would not count as resident.)
HOLD_MEMORY = f"{sys.executable} -c 'import time; b = b\"x\" * ({{mib}} << 20); time.sleep(0.2)'"


def reports_tool(requester: Requester, directory: Path, name: str) -> Tool:
    """A tool on the ``sequential`` cluster whose tasks write their output under ``directory``."""
    log_dir = directory / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("sequential")
    tool.set_default_compute_resources_from_dict(
        "sequential", {"stdout": str(log_dir), "stderr": str(log_dir)}
    )
    return tool


def _task_id(task: object) -> int:
    value = getattr(task, "task_id", None)
    assert isinstance(value, int)
    return value


def _log_dir(tool: Tool) -> Path:
    return Path(tool.default_compute_resources_set["sequential"]["stdout"])


@dataclass(frozen=True)
class DoneWorkflow:
    """prepare -> two models, all done."""

    workflow_id: int
    prepare_id: int
    model_ids: tuple[int, ...]
    log_dir: Path


def run_done_workflow(tool: Tool) -> DoneWorkflow:
    prepare = tool.get_task_template("prepare", "echo prepared {n}", node_args=["n"])
    model = tool.get_task_template("model", HOLD_MEMORY, node_args=["mib"])
    workflow = tool.create_workflow(workflow_args=f"{tool.name}-done", name=f"{tool.name}-done")
    first = prepare.create_task(n=1)
    models = [model.create_task(mib=mib, upstream_tasks=[first]) for mib in (64, 128)]
    workflow.add_tasks([first, *models])
    assert workflow.run() == "D"
    assert workflow.workflow_id is not None
    return DoneWorkflow(
        workflow_id=workflow.workflow_id,
        prepare_id=_task_id(first),
        model_ids=tuple(_task_id(task) for task in models),
        log_dir=_log_dir(tool),
    )


@dataclass(frozen=True)
class FailedWorkflow:
    """prepare -> flaky (exit 3 twice: fatal) -> after (never runs); models, done; crash (exit
    5 once: fatal). ``flaky`` succeeds once ``flaky_marker`` exists."""

    workflow_id: int
    prepare_id: int
    flaky_id: int
    after_id: int
    model_ids: tuple[int, ...]
    crash_id: int
    flaky_marker: Path
    log_dir: Path


def run_failed_workflow(tool: Tool, models_mib: tuple[int, ...] = (96,)) -> FailedWorkflow:
    marker = _log_dir(tool).parent / "flaky-may-pass"
    prepare = tool.get_task_template("prepare", "echo prepared {n}", node_args=["n"])
    model = tool.get_task_template("model", HOLD_MEMORY, node_args=["mib"])
    flaky = tool.get_task_template(
        "flaky",
        "if [ ! -e {marker} ]; then echo 'boom' >&2; exit 3; fi",
        node_args=["marker"],
    )
    crash = tool.get_task_template("crash", "echo {n} && exit 5", node_args=["n"])
    workflow = tool.create_workflow(workflow_args=f"{tool.name}-failed", name=f"{tool.name}-failed")
    first = prepare.create_task(n=2)
    flaky_task = flaky.create_task(marker=str(marker), max_attempts=2, upstream_tasks=[first])
    after = prepare.create_task(n=3, upstream_tasks=[flaky_task])
    models = [model.create_task(mib=mib) for mib in models_mib]
    crash_task = crash.create_task(n=1, max_attempts=1)
    workflow.add_tasks([first, flaky_task, after, *models, crash_task])
    assert workflow.run() == "E"
    assert workflow.workflow_id is not None
    return FailedWorkflow(
        workflow_id=workflow.workflow_id,
        prepare_id=_task_id(first),
        flaky_id=_task_id(flaky_task),
        after_id=_task_id(after),
        model_ids=tuple(_task_id(task) for task in models),
        crash_id=_task_id(crash_task),
        flaky_marker=marker,
        log_dir=_log_dir(tool),
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
    # The run's progress and summary go to stderr, apart from what the script prints.
    errors = directory / f"{name}.err"
    with output.open("wb") as sink, errors.open("wb") as error_sink:
        process = processes.spawn(
            [sys.executable, str(SLEEPING_SCRIPT), server_url, name],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=error_sink,
            env=env,
        )
    workflow_id = None
    with Requester(server_url, timeout=30, retries=3) as requester:
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"the sleeping workflow ended early:\n{output.read_text()}\n"
                    f"{errors.read_text()}"
                )
            if workflow_id is None:
                first = output.read_text().split("\n", 1)[0].strip()
                workflow_id = int(first) if first.isdigit() and "\n" in output.read_text() else None
            if workflow_id is not None:
                detail = requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut)
                counts = detail.task_status_counts
                if counts.get("R", 0) == 1 and counts.get("D", 0) == 1:
                    return RunningWorkflow(workflow_id, process, output)
            time.sleep(0.1)
