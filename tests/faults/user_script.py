"""The user's script of a fault-injection trial, run as its own process.

A trial copies this file into its temporary directory beside a ``workflow.json`` and runs it
the way a user runs a workflow script: ``python build.py --no-resume`` first, and
``python build.py --resume`` after the run failed or the process was killed. Every invocation
builds the very same workflow (same tool, ``workflow_args`` and tasks, all derived from the
seed in ``workflow.json``), which is what lets a resume reuse the tasks already done.

The workflow is ``layers`` x ``width`` tasks; each task after the first layer depends on two
tasks of the layer before, chosen by the seed. A task sleeps a short time fixed by the seed and
then appends ``"<task name> <task instance id>"`` to the completions log: that append is the
command completing, and the trial compares the log with the database afterwards.

The server comes from the environment (``HERDSMAN_SERVER_URL``), as for any user.

Exit status: 0 when the run ended D; 3 when there was nothing left to run (every task was done
before this invocation); 1 for any other end (a failed run, an error reaching the server).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from pathlib import Path
from typing import Any

from herdsman import Tool, Workflow
from herdsman.core.errors import RunEndedEarly, WorkflowAlreadyComplete

ALREADY_COMPLETE_EXIT = 3
FAILED_EXIT = 1
COMMAND = 'sleep {seconds}; echo "{label} $HERDSMAN_TASK_INSTANCE_ID" >> {log}'


def task_label(layer: int, index: int) -> str:
    """The name of task ``index`` of ``layer``; it is also the first word of its log line."""
    return f"L{layer}-T{index:03d}"


def build_workflow(config: dict[str, Any]) -> Workflow:
    """The trial's workflow, identical on every call with the same ``config``."""
    tool = Tool(config["tool_name"])
    tool.set_default_cluster_name(config["cluster_name"])
    template = tool.get_task_template(
        "fault_step", COMMAND, node_args=["label"], op_args=["seconds", "log"]
    )
    rng = random.Random(config["seed"])
    log = shlex.quote(config["completions_log"])
    layers: list[list[Any]] = []
    for layer in range(config["layers"]):
        tasks = []
        for index in range(config["width"]):
            label = task_label(layer, index)
            tasks.append(
                template.create_task(
                    name=label,
                    label=label,
                    seconds=f"{rng.uniform(0.05, 0.5):.3f}",
                    log=log,
                    upstream_tasks=rng.sample(layers[-1], 2) if layers else [],
                    max_attempts=config["max_attempts"],
                )
            )
        layers.append(tasks)
    workflow = tool.create_workflow(name="fault-trial", workflow_args=config["workflow_args"])
    workflow.add_tasks(task for tasks in layers for task in tasks)
    return workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("workflow.json"))
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    workflow = build_workflow(config)
    try:
        status = workflow.run(
            resume=args.resume,
            workflow_run_heartbeat_interval=config["heartbeat_interval"],
            resume_timeout=config["resume_timeout"],
        )
    except WorkflowAlreadyComplete as error:
        print(f"nothing to run: {error}", flush=True)
        return ALREADY_COMPLETE_EXIT
    except RunEndedEarly as error:  # a timeout or a dead distributor: the run ended E
        print(f"workflow {workflow.workflow_id} ended E ({type(error).__name__})", flush=True)
        return FAILED_EXIT
    print(f"workflow {workflow.workflow_id} ended {status}", flush=True)
    return 0 if status == "D" else FAILED_EXIT


if __name__ == "__main__":
    sys.exit(main())
