"""``herdsman resources usage/yaml`` keep templates of different tools apart, filter by node
args, and state the request they suggest with its headroom (issue 14)."""

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
import yaml
from tests.conftest import RunningServer
from tests.integration.report_workflows import HOLD_MEMORY
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.units import parse_memory

pytestmark = pytest.mark.integration

_MIB = 1 / 1024  # in GiB


def _herdsman(
    server: RunningServer, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=server.url,
        HERDSMAN_DATA_DIR=str(tmp_path / "data"),
        HERDSMAN_CONFIG_FILE=str(tmp_path / "config.yaml"),
        HERDSMAN_TOKEN=user_token(),
    )
    executable = Path(sys.executable).with_name("herdsman")
    return subprocess.run(
        [str(executable), *args], env=env, capture_output=True, text=True, check=False
    )


def _ok(server: RunningServer, tmp_path: Path, *args: str) -> str:
    done = _herdsman(server, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def tools(server: RunningServer) -> Iterator[tuple[str, str]]:
    """Two tools with a template called ``model`` each: 40 and 80 MiB in one, 150 in the other."""
    stamp = time.time()
    names = (f"usage-small-{stamp}", f"usage-big-{stamp}")
    with Requester(server.url, timeout=60, retries=3) as requester:
        for name, sizes in zip(names, ((40, 80), (150,)), strict=True):
            tool = Tool(name, requester=requester)
            tool.set_default_cluster_name("sequential")
            model = tool.get_task_template("model", HOLD_MEMORY, node_args=["mib"])
            workflow = tool.create_workflow(workflow_args=name)
            workflow.add_tasks([model.create_task(mib=mib) for mib in sizes])
            assert workflow.run() == "D"
    yield names


def test_templates_of_one_name_in_two_tools_are_kept_apart(
    tools: tuple[str, str], server: RunningServer, tmp_path: Path
) -> None:
    small, big = tools
    found: dict[str, Any] = json.loads(
        _ok(server, tmp_path, "resources", "usage", "-t", "model", "--json")
    )
    ours = {entry["tool"]: entry for entry in found["templates"] if entry["tool"] in tools}
    assert (ours[small]["attempts"], ours[big]["attempts"]) == (2, 1)
    assert ours[small]["memory"]["max"] < 120 * _MIB < ours[big]["memory"]["min"]
    memory = ours[small]["memory"]
    assert memory["median"] <= memory["p90"] <= memory["p95"] <= memory["p99"] <= memory["max"]

    only_small = json.loads(_ok(server, tmp_path, "resources", "usage", "--tool", small, "--json"))
    assert [entry["tool"] for entry in only_small["templates"]] == [small]
    filtered = json.loads(
        _ok(
            server, tmp_path, "resources", "usage", "--tool", small, "--node-arg", "mib=80",
            "--json",
        )
    )  # fmt: skip
    (entry,) = filtered["templates"]
    assert entry["attempts"] == 1 and entry["memory"]["min"] > 80 * _MIB


def test_usage_states_the_suggested_request_and_its_headroom(
    tools: tuple[str, str], server: RunningServer, tmp_path: Path
) -> None:
    small, _ = tools
    table = _ok(server, tmp_path, "resources", "usage", "--tool", small, "--headroom", "25")
    assert table.splitlines()[0].split()[:3] == ["TEMPLATE", "CLUSTER", "RESOURCE"]
    assert f"tool {small}, template model on sequential (2 done attempts):" in table
    memory_line = next(line for line in table.splitlines() if line.startswith("  memory:"))
    assert "suggested request" in memory_line and "(max " in memory_line
    assert memory_line.endswith("+ 25 % headroom)")


def test_yaml_needs_a_tool_when_names_are_shared_and_adds_its_headroom(
    tools: tuple[str, str], server: RunningServer, tmp_path: Path
) -> None:
    small, _ = tools
    refused = _herdsman(server, tmp_path, "resources", "yaml", "-t", "model")
    assert refused.returncode == 1
    assert "--tool" in refused.stderr
    usage = json.loads(_ok(server, tmp_path, "resources", "usage", "--tool", small, "--json"))
    largest = usage["templates"][0]["memory"]["max"]
    text = _ok(server, tmp_path, "resources", "yaml", "--tool", small, "--headroom", "50")
    assert text.startswith("# memory: max of the done attempts' peak memory + 50 % headroom")
    requested = yaml.safe_load(text)["task_template_resources"]["model"]["sequential"]
    assert largest * 1.5 <= parse_memory(requested["memory"]) < largest * 1.5 + _MIB
