"""The parts of the report client that need no server: status names, error groups, YAML."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from herdsman.client.queries import (
    group_errors,
    resources_yaml,
    strategy,
    suggested_memory,
    suggested_runtime,
    task_statuses,
)
from herdsman.client.resources import load_resources_yaml
from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas.queries import (
    ErrorMessageOut,
    ResourceUsageOut,
    StatisticsOut,
    TemplateUsageOut,
)
from herdsman.core.units import parse_memory


def test_task_statuses_accept_groups_names_and_letters() -> None:
    assert task_statuses(["pending"]) == ["G", "Q", "I", "O", "E", "A"]
    assert task_statuses(["FATAL", "error_fatal", "f", "done"]) == ["F", "D"]
    with pytest.raises(InvalidInputError, match="unknown task status 'later'"):
        task_statuses(["later"])


def _error(task_id: int, description: str, when: str) -> ErrorMessageOut:
    return ErrorMessageOut(
        task_instance_id=task_id * 10, task_id=task_id, error_time=when, description=description
    )


def test_errors_differing_in_numbers_and_ids_are_grouped() -> None:
    newest_first = [
        _error(3, "exit code 137", "2026-01-01T10:00:03"),
        _error(2, "exit code 1", "2026-01-01T10:00:02"),
        _error(1, "file /data/part-0042.csv: 17 rows bad in run deadbeef01", "2026-01-01T10:00:01"),
        _error(4, "file /data/part-0007.csv: 3 rows bad in run cafebabe99", "2026-01-01T10:00:00"),
        _error(4, "exit code 1", "2026-01-01T09:00:00"),
    ]
    groups = group_errors(newest_first)
    assert [(g.count, g.task_ids, g.sample, g.latest) for g in groups] == [
        (2, (2, 4), "exit code 1", "2026-01-01T10:00:02"),
        (
            2,
            (1, 4),
            "file /data/part-0042.csv: 17 rows bad in run deadbeef01",
            "2026-01-01T10:00:01",
        ),
        (1, (3,), "exit code 137", "2026-01-01T10:00:03"),
    ]
    assert groups[1].pattern == "file /data/part-#.csv: # rows bad in run #"


def _stats(low: float, mean: float, p95: float, high: float) -> StatisticsOut:
    return StatisticsOut(count=4, min=low, mean=mean, median=mean, p95=p95, max=high)


def test_resources_yaml_loads_back_in_parser_units(tmp_path: Path) -> None:
    usage = ResourceUsageOut(
        templates=[
            TemplateUsageOut(
                task_template="fit",
                cluster="slurm",
                attempts=4,
                runtime=_stats(10.0, 60.2, 99.5, 120.0),
                memory=_stats(0.5, 1.25, 1.9, 2.0001),
            ),
            TemplateUsageOut(
                task_template="plot", cluster="slurm", attempts=1, runtime=None, memory=None
            ),
        ]
    )
    path = tmp_path / "resources.yaml"
    path.write_text(resources_yaml(usage, memory="max", runtime="p95"))
    tool, templates = load_resources_yaml(path)
    assert tool == {}
    fit = templates["fit"]["slurm"]
    assert set(templates) == {"fit"}  # nothing was measured for plot
    assert fit["runtime"] == 100
    # Rounded up to whole MiB: never less than the peak seen.
    assert parse_memory(fit["memory"]) == 2049 / 1024
    average = yaml.safe_load(resources_yaml(usage, memory="avg", runtime="avg"))
    assert average["task_template_resources"]["fit"]["slurm"] == {"memory": "1280M", "runtime": 61}


def test_resources_yaml_refuses_to_write_nothing() -> None:
    empty = ResourceUsageOut(
        templates=[
            TemplateUsageOut(task_template="a", cluster="b", attempts=0, runtime=None, memory=None)
        ]
    )
    with pytest.raises(InvalidInputError, match="nothing to write"):
        resources_yaml(empty)


def test_strategy_names() -> None:
    assert [strategy(name) for name in ("AVG", "max", "p95")] == ["avg", "max", "p95"]
    with pytest.raises(InvalidInputError, match="use avg, max or p95"):
        strategy("median")


def test_suggested_requests_add_their_headroom_and_round_up() -> None:
    stats = StatisticsOut(
        count=10, min=0.1, mean=0.2, median=0.2, p90=0.3, p95=0.4, p99=0.45, max=0.5
    )
    assert suggested_memory(stats, "max", 0.2) == math.ceil(0.5 * 1.2 * 1024) / 1024
    assert suggested_memory(stats, "p90", 0.0) == math.ceil(0.3 * 1024) / 1024
    assert suggested_runtime(stats, "p99", 1.0) == 1  # 0.9 s, never below one second
    assert suggested_runtime(_stats(10.0, 60.0, 95.0, 100.0), "p95", 0.1) == 105


def test_resources_yaml_states_its_headroom_and_applies_it() -> None:
    usage = ResourceUsageOut(
        templates=[
            TemplateUsageOut(
                tool="t",
                task_template="fit",
                cluster="slurm",
                attempts=4,
                runtime=_stats(10.0, 60.0, 95.0, 100.0),
                memory=_stats(0.5, 1.0, 1.5, 2.0),
            )
        ]
    )
    text = resources_yaml(usage, memory="max", runtime="max", headroom=0.5)
    assert text.splitlines()[0] == (
        "# memory: max of the done attempts' peak memory + 50 % headroom; "
        "runtime: max of their wall time + 50 % headroom"
    )
    assert yaml.safe_load(text)["task_template_resources"]["fit"]["slurm"] == {
        "memory": "3G",
        "runtime": 150,
    }


def test_resources_yaml_asks_for_a_tool_when_two_share_a_template_name() -> None:
    usage = ResourceUsageOut(
        templates=[
            TemplateUsageOut(
                tool=tool,
                task_template="fit",
                cluster="slurm",
                attempts=1,
                runtime=_stats(1.0, 1.0, 1.0, 1.0),
                memory=None,
            )
            for tool in ("alpha", "beta")
        ]
    )
    with pytest.raises(InvalidInputError, match=r"'fit' exists in tools 'alpha', 'beta'.*--tool"):
        resources_yaml(usage)
