"""The load benchmark in a small form, as a correctness test (nothing is timed).

Four client processes bind and run a 1,000-task layered workflow each, at once, against one
server of two processes on PostgreSQL or MariaDB, while a reader polls the GUI and CLI routes:
every task must end done after exactly one attempt, and no request may have failed with a 5xx.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("herdsman_load_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    # Appended, not prepended: the benchmark's helpers resolve, and nothing else is shadowed.
    if str(BENCHMARK.parent) not in sys.path:
        sys.path.append(str(BENCHMARK.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_concurrent_workflows_on_two_server_processes_run_every_task_once(
    engine: str, database_url: str, tmp_path: Path
) -> None:
    if engine == "sqlite":
        pytest.skip("the load benchmark runs on a shared server's engines")
    from tests.conftest import DEFAULT_ADMIN_URLS

    admin_url = os.environ.get(f"HERDSMAN_TEST_{engine.upper()}", DEFAULT_ADMIN_URLS[engine])
    load = _load_benchmark()

    result = load.run_load(
        engine=engine,
        admin_url=admin_url,
        server_workers=2,
        clients=4,
        tasks=1_000,
        # On PostgreSQL a finished workflow is archived and removed while the four run.
        prune=5_000 if engine == "postgresql" else 0,
        state_dir=tmp_path,
    )

    assert result.statuses == ["D"]
    assert result.tasks == 4_000
    assert result.not_done == 0
    assert result.attempts == result.tasks == result.tasks_with_one_attempt
    assert result.errors_5xx == 0
    assert result.reader_ms[0] > 0, "the reader read nothing"
    if engine == "postgresql":
        assert result.prune_seconds is not None
        assert len(list((tmp_path / "archive").glob("workflow-*.jsonl.gz"))) == 1
