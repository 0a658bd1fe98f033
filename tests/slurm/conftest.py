"""Fixtures for the tests on a real Slurm: a cluster row for it and a clean queue after each test.

These tests need slurmctld, slurmd and slurmdbd (for sacct) on this machine; start them with
``scripts/local-slurm start``. They run only when asked for, with env ``HERDSMAN_TEST_SLURM=1``,
because several take a minute or more (Slurm's shortest time limit is a minute): a plain
``pytest`` skips them and says so. With env ``HERDSMAN_REQUIRE_SLURM=1`` (as in CI) they run,
and a missing Slurm fails them instead of skipping them::

    scripts/local-slurm start
    HERDSMAN_TEST_SLURM=1 pytest tests/slurm --engines sqlite -n 4
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import create_cluster

# Fast reactions for tests: a silent worker is noticed after about 16 s, the queue is
# re-read every second.
SLURM_PARAMETERS: dict[str, Any] = {
    "heartbeat_interval": 5.0,
    "triage_interval": 2.0,
    "poll_interval": 2.0,
    "squeue_interval": 1.0,
}
SLURM_LIMITS = {"cores": [1, 8], "memory": [0.0, 16.0], "runtime": [1, 86400]}


def _slurm_answers() -> str | None:
    """None when slurmctld answers here; else why not."""
    if shutil.which("sbatch") is None:
        return "Slurm's commands are not installed"
    try:
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=15, check=False
        )
    except subprocess.TimeoutExpired:
        return "scontrol ping timed out"
    if "is UP" not in ping.stdout:
        return f"slurmctld is not up: {ping.stdout.strip() or ping.stderr.strip()}"
    return None


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (_flag("HERDSMAN_TEST_SLURM") or _flag("HERDSMAN_REQUIRE_SLURM")):
        skip = pytest.mark.skip(
            reason="Slurm tests run only with HERDSMAN_TEST_SLURM=1 (see tests/slurm/conftest.py)"
        )
        here = Path(__file__).parent
        for item in items:  # every item of the session passes here: take only this folder's
            if item.path.is_relative_to(here):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def slurm_available() -> None:
    problem = _slurm_answers()
    if problem is None:
        return
    if _flag("HERDSMAN_REQUIRE_SLURM"):
        pytest.fail(f"HERDSMAN_REQUIRE_SLURM is set but {problem}")
    pytest.skip(f"no Slurm here: {problem} (start one with scripts/local-slurm start)")


@pytest.fixture
def slurm_cluster(slurm_available: None, database_url: str) -> str:
    """A cluster of plugin ``slurm`` with fast reactions; its queue ``default``."""
    return create_cluster(database_url, "slurm", SLURM_PARAMETERS, {"default": SLURM_LIMITS})


@pytest.fixture
def job_prefix(slurm_available: None) -> Iterator[str]:
    """A prefix for the test's template names; its jobs still in Slurm are cancelled after it."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    yield prefix
    subprocess.run(
        ["scancel", "--quiet", f"--name={','.join(_job_names(prefix))}"],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _job_names(prefix: str) -> list[str]:
    """Names of this test's jobs still in the queue (herdsman names them after the template)."""
    listing = subprocess.run(
        ["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=60, check=False
    )
    names = {name for name in listing.stdout.split() if name.startswith(f"herdsman-{prefix}")}
    return sorted(names) or [f"herdsman-{prefix}-none"]
