"""Fault injection: components of a real run killed with SIGKILL, and the work still done.

Each test is one trial of one kind (see :mod:`tests.faults.harness`): a 200-task workflow with
dependencies runs through a real server, the user's script (the swarm), its distributor and a
multiprocess pool, while one kind of component is killed at moments drawn from the seed.
What a user or an operator would restart is restarted; then the database and the log of
completed commands must show every task done once, nothing left running, every failed
attempt explained, and no command run twice except where its first run was lost.

The default run has one trial per kind. The slow suite runs many, with a report::

    pytest tests/faults --fault-trials 10 --fault-report faults.jsonl -n 4

``--fault-seed S`` fixes the seeds (trial ``i`` uses ``S + i``); a failure message names the
kind, engine, seed and kill times and says how to run that trial again. The trials run on
SQLite unless ``--fault-engines`` names more (``--fault-engines all`` for every engine of
``--engines``). Each trial keeps its logs in its temporary directory (named in the report):
the server's log, one log per run of the script (swarm, distributor and pool), and the
completions log.
"""

from __future__ import annotations

import pytest
from tests.faults.conftest import RunFaultTrial

pytestmark = pytest.mark.faults


def test_a_killed_server_is_restarted_and_the_run_still_ends_done(
    run_fault_trial: RunFaultTrial,
) -> None:
    """The server dies and comes back at the same URL; clients retry through the gap."""
    run_fault_trial("server")


def test_a_killed_embedded_server_is_restarted_by_the_run_and_nothing_runs_twice(
    run_fault_trial: RunFaultTrial,
) -> None:
    """The embedded server dies mid-run; the run's processes start it again and carry on.

    No resume, every task done once, and no command completed twice.
    """
    run_fault_trial("embedded")


def test_a_killed_swarm_is_resumed_and_the_workflow_ends_done(
    run_fault_trial: RunFaultTrial,
) -> None:
    """The user's process dies (its distributor may live on); running it again resumes."""
    run_fault_trial("swarm")


def test_a_killed_distributor_fails_the_run_and_a_resume_ends_it_done(
    run_fault_trial: RunFaultTrial,
) -> None:
    """The swarm notices its distributor is gone and ends the run E; a resume finishes it."""
    run_fault_trial("distributor")


def test_killed_pool_workers_are_replaced_and_their_tasks_retried(
    run_fault_trial: RunFaultTrial,
) -> None:
    """Pool processes die mid-task; the pool replaces them and triage retries what they ran."""
    run_fault_trial("worker")
