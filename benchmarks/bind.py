"""Build and bind benchmark: seconds to build, seconds to bind, client and server peak RSS.

Shapes, for N tasks:
  fanout   N independent tasks plus one task that depends on all of them
  layered  10 layers of N/10 tasks; each task depends on the same index in the layer before

Each case runs in a fresh client process against a fresh server on embedded SQLite, so peak
RSS figures belong to that case alone. After the bind, each case times what ``run()`` then
spends on binding: checking that nothing changed (``check s``), against a second full bind
(``rebind s``, what it spent before it checked). Usage:

    python benchmarks/bind.py                       # N = 10k, 100k, 1M; both shapes
    python benchmarks/bind.py --sizes 10000 100000  # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import bench_server

SHAPES = ("fanout", "layered")
LAYERS = 10


def build(shape: str, n: int) -> object:
    from herdsman import Tool
    from herdsman.core.requester import Requester

    tool = Tool("bind-benchmark", requester=Requester(_server_url()))
    tool.set_default_cluster_name("dummy")
    workflow = tool.create_workflow(name=f"{shape}-{n}", workflow_args=f"{shape}-{n}-{time.time()}")
    if shape == "fanout":
        work = tool.get_task_template("work", "echo {i}", node_args=["i"])
        gather = tool.get_task_template("gather", "echo gather {n}", node_args=["n"])
        tasks = work.create_tasks(i=range(n))
        workflow.add_tasks(tasks)
        workflow.add_task(gather.create_task(n=n, upstream_tasks=tasks))
    else:
        step = tool.get_task_template("step", "echo {layer} {i}", node_args=["layer", "i"])
        width = n // LAYERS
        previous = None
        for layer in range(LAYERS):
            current = step.create_tasks(layer=layer, i=range(width))
            if previous is not None:
                for upstream, task in zip(previous, current, strict=True):
                    task.add_upstream(upstream)
            workflow.add_tasks(current)
            previous = current
    return workflow


def _server_url() -> str:
    return os.environ["HERDSMAN_SERVER_URL"]


def run_case(shape: str, n: int) -> dict[str, float]:
    """One case, in this process: build, then bind; report times and client RSS."""
    import herdsman
    import herdsman.client.bind  # noqa: F401

    baseline = psutil.Process().memory_info().rss
    start = time.perf_counter()
    workflow = build(shape, n)
    built = time.perf_counter()
    workflow.bind()  # type: ignore[attr-defined]
    bound = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # What run() spends on binding after an explicit bind(): checking nothing changed ...
    workflow.bind_if_changed()  # type: ignore[attr-defined]
    checked = time.perf_counter()
    # ... against binding everything a second time, as it did before it checked.
    workflow.bind()  # type: ignore[attr-defined]
    rebound = time.perf_counter()
    tasks = len(workflow.tasks)  # type: ignore[attr-defined]
    return {
        "tasks": tasks,
        "build_s": built - start,
        "bind_s": bound - built,
        "unchanged_s": checked - bound,
        "rebind_s": rebound - checked,
        "client_peak_mib": peak / 2**20,
        "client_bytes_per_task": (peak - baseline) / tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--case", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return
    print(
        f"{'shape':8} {'N':>9} {'tasks/s bind':>12} {'build s':>8} {'bind s':>8} "
        f"{'client MiB':>10} {'B/task':>7} {'server MiB':>10} {'check s':>8} {'rebind s':>8}"
    )
    for n in args.sizes:
        for shape in args.shapes:
            with bench_server() as server:
                out = subprocess.run(
                    [sys.executable, __file__, "--case", shape, str(n)],
                    env={**os.environ, **server.environment()},
                    check=True,
                    capture_output=True,
                    text=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                server_peak = server.peak_rss_mib()
            print(
                f"{shape:8} {n:>9,} {result['tasks'] / result['bind_s']:>12,.0f} "
                f"{result['build_s']:>8.2f} {result['bind_s']:>8.2f} "
                f"{result['client_peak_mib']:>10.0f} {result['client_bytes_per_task']:>7.0f} "
                f"{server_peak:>10.0f} {result['unchanged_s']:>8.3f} {result['rebind_s']:>8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
