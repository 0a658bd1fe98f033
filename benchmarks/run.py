"""End-to-end run benchmark: throughput, per-hop latency, wrapper start-up, peak memory.

Cases (each against a fresh server on embedded SQLite, in a fresh client process):
  dummy-fanout N / dummy-layered N   run() of an already bound workflow on the dummy cluster
  chain 100                          100 `true` tasks in a chain on multiprocess: seconds per hop
  independent 1000                   1,000 independent `true` tasks on multiprocess
  wrapper                            a fresh `python -m herdsman.worker`: start to command start

Usage:
    python benchmarks/run.py                    # every case at the default sizes
    python benchmarks/run.py --cases chain wrapper
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import bench_server, peak_rss_mib
from herdsman import Tool, Workflow
from herdsman.core.requester import Requester

LAYERS = 10
DEFAULT_CASES = [
    "dummy-fanout:10000",
    "dummy-layered:10000",
    "dummy-fanout:100000",
    "dummy-layered:100000",
    "chain:100",
    "independent:1000",
    "wrapper:1",
]


class ChildPeak:
    """Samples the peak RSS of this process's distributor children while a run goes on."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        # VmHWM is already a peak, so reading it often only guards against missing a short
        # distributor; finding the children scans /proc and is done rarely, to keep the
        # benchmark's own CPU out of the figures.
        me = psutil.Process()
        distributors: set[int] = set()
        next_scan = 0.0
        while not self._stop.wait(0.05):
            if time.monotonic() >= next_scan:
                distributors |= {child.pid for child in me.children() if _is_distributor(child)}
                next_scan = time.monotonic() + 1.0
            for pid in distributors:
                try:
                    self.peak_mib = max(self.peak_mib, peak_rss_mib(pid))
                except (OSError, RuntimeError):
                    continue


def _is_distributor(process: psutil.Process) -> bool:
    try:
        return "herdsman.distributor" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _tool(cluster: str) -> Tool:
    tool = Tool("run-benchmark", requester=Requester(os.environ["HERDSMAN_SERVER_URL"]))
    tool.set_default_cluster_name(cluster)
    return tool


def build(kind: str, n: int) -> Workflow:
    cluster = "dummy" if kind.startswith("dummy") else "multiprocess"
    tool = _tool(cluster)
    workflow = tool.create_workflow(workflow_args=f"{kind}-{n}-{time.time()}")
    if kind == "dummy-fanout":
        work = tool.get_task_template("work", "true {i}", node_args=["i"])
        gather = tool.get_task_template("gather", "true gather {n}", node_args=["n"])
        tasks = work.create_tasks(i=range(n))
        workflow.add_tasks(tasks)
        workflow.add_task(gather.create_task(n=n, upstream_tasks=tasks))
    elif kind == "dummy-layered":
        step = tool.get_task_template("step", "true {layer} {i}", node_args=["layer", "i"])
        previous = None
        for layer in range(LAYERS):
            current = step.create_tasks(layer=layer, i=range(n // LAYERS))
            if previous is not None:
                for upstream, task in zip(previous, current, strict=True):
                    task.add_upstream(upstream)
            workflow.add_tasks(current)
            previous = current
    elif kind == "chain":
        # Each link writes the time its command started: hop = gap between consecutive links.
        stamps = Path(tempfile.mkdtemp(prefix="herdsman-chain-"))
        link = tool.get_task_template(
            "link", "date +%s.%N > {dir}/{i}", node_args=["i"], task_args=["dir"]
        )
        previous = None
        for i in range(n):
            task = link.create_task(
                i=i, dir=str(stamps), upstream_tasks=[previous] if previous else []
            )
            workflow.add_task(task)
            previous = task
    else:
        job = tool.get_task_template("job", "true {i}", node_args=["i"])
        workflow.add_tasks(job.create_tasks(i=range(n)))
    return workflow


def run_case(kind: str, n: int) -> dict[str, float]:
    if kind == "wrapper":
        return wrapper_start()
    workflow = build(kind, n)
    workflow.bind()
    baseline = psutil.Process().memory_info().rss
    client_cpu = _cpu_seconds(resource.RUSAGE_SELF)
    with ChildPeak() as children:
        start = time.perf_counter()
        started_at = time.time()
        status = workflow.run()
        elapsed = time.perf_counter() - start
        ended_at = time.time()
    client_cpu = _cpu_seconds(resource.RUSAGE_SELF) - client_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tasks = len(workflow.tasks)
    result = {
        "status": status,
        "tasks": tasks,
        "run_s": elapsed,
        "tasks_per_s": tasks / elapsed,
        "client_peak_mib": peak / 2**20,
        "client_bytes_per_task": max(0, peak - baseline) / tasks,
        "distributor_peak_mib": children.peak_mib,
        # CPU is steadier than wall time on a shared machine; the children are the
        # distributor, its pool and the commands, all waited for by the time run() returns.
        "client_cpu_ms_per_task": 1000 * client_cpu / tasks,
        "distributor_cpu_ms_per_task": 1000 * _cpu_seconds(resource.RUSAGE_CHILDREN) / tasks,
    }
    if kind == "chain":
        result["s_per_hop_with_startup"] = elapsed / n
        stamps = Path(workflow.tasks[next(iter(workflow.tasks))].task_args["dir"])
        times = sorted(float(path.read_text()) for path in stamps.iterdir())
        result["s_per_hop"] = (times[-1] - times[0]) / (len(times) - 1)
        # Start-up: run() called to the first command; wind-down: the last command to return.
        result["startup_s"] = times[0] - started_at
        result["winddown_s"] = ended_at - times[-1]
    return result


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def wrapper_start() -> dict[str, float]:
    """Seconds from spawning `python -m herdsman.worker` to its command's first instruction."""
    from herdsman.core.schemas import distributor as d
    from herdsman.core.schemas import swarm as s

    requester = Requester(os.environ["HERDSMAN_SERVER_URL"])
    tool = _tool("sequential")
    with tempfile.TemporaryDirectory() as tmp:
        stamp = Path(tmp) / "started"
        template = tool.get_task_template("stamp", "date +%s.%N > {path}", node_args=["path"])
        workflow = tool.create_workflow(workflow_args=f"wrapper-{time.time()}")
        task = template.create_task(path=str(stamp))
        workflow.add_task(task)
        workflow.bind()
        run = requester.post(
            f"/workflows/{workflow.workflow_id}/runs", s.WorkflowRunIn(), s.WorkflowRunOut
        )
        requester.post(
            f"/workflow_runs/{run.workflow_run_id}/queue",
            s.QueueTasksIn(task_ids=[task.task_id or 0]),
            s.TaskStatusesOut,
        )
        claimed = requester.post(
            f"/workflow_runs/{run.workflow_run_id}/claim", d.ClaimIn(), d.ClaimedOut
        )
        instance_id = claimed.instances[0].task_instance_id
        start = time.time()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "herdsman.worker",
                "--task-instance-id",
                str(instance_id),
                "--server-url",
                os.environ["HERDSMAN_SERVER_URL"],
            ],
            check=True,
        )
        return {"wrapper_to_command_s": float(stamp.read_text()) - start}


def _process_cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, help="KIND:N, e.g. chain:100")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, n = args.case.split(":")
        print(json.dumps(run_case(kind, int(n))))
        return
    for case in args.cases:
        spec = case if ":" in case else f"{case}:{dict(c.split(':') for c in DEFAULT_CASES)[case]}"
        with bench_server() as server:
            server_cpu = _process_cpu_seconds(server.pid)
            out = subprocess.run(
                [sys.executable, __file__, "--case", spec],
                env={**os.environ, **server.environment()},
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["server_peak_mib"] = server.peak_rss_mib()
            if "tasks" in result:
                server_cpu = _process_cpu_seconds(server.pid) - server_cpu
                result["server_cpu_ms_per_task"] = 1000 * server_cpu / result["tasks"]
        shown = ", ".join(
            f"{key}={value:,.3f}" if isinstance(value, float) else f"{key}={value}"
            for key, value in result.items()
        )
        print(f"{spec:22} {shown}", flush=True)


if __name__ == "__main__":
    main()
