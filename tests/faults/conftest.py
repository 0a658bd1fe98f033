"""Fixtures of the fault-injection trials: one parametrized case per trial, a report per trial.

``--fault-trials N`` makes N cases of each test (``trial0`` ... ``trialN-1``); case ``i`` uses
seed ``--fault-seed`` + ``i``. ``--fault-engines`` (default ``sqlite``, or ``all``) picks the
engines, among ``--engines``, that the trials run on: a trial takes a minute or more, so the
default run keeps one per kind. The options are registered in the root ``conftest.py``,
because the seed must be chosen once per session, before xdist starts its workers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import ProcessRegistry
from tests.faults.harness import FaultTrial, Snapshot, TrialFailure, append_report

RunFaultTrial = Callable[[str], Snapshot]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fault_trial_index" in metafunc.fixturenames:
        trials = int(metafunc.config.getoption("--fault-trials"))
        if trials < 1:
            raise pytest.UsageError("--fault-trials must be at least 1")
        metafunc.parametrize(
            "fault_trial_index", range(trials), ids=[f"trial{i}" for i in range(trials)]
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the trials on ``--fault-engines`` only: each takes a minute or more per engine."""
    chosen = str(config.getoption("--fault-engines")).strip().lower()
    if chosen == "all":
        return
    engines = {name.strip() for name in chosen.split(",") if name.strip()}
    here = Path(__file__).parent
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine") if callspec is not None else None
        if item.path.is_relative_to(here) and engine is not None and engine not in engines:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def fault_seed(request: pytest.FixtureRequest, fault_trial_index: int) -> int:
    """This trial's seed: the session's seed plus the trial's index."""
    base = request.config.getoption("--fault-seed")
    if base is None:  # the root conftest chooses one; this only guards a bare plugin set-up
        base = random.randrange(1_000_000)
    return int(base) + fault_trial_index


@pytest.fixture
def run_fault_trial(
    request: pytest.FixtureRequest,
    engine: str,
    fresh_database_url: str,
    processes: ProcessRegistry,
    tmp_path: Path,
    fault_seed: int,
    fault_trial_index: int,
) -> Iterator[RunFaultTrial]:
    """Runs one trial of a kind; cleans up every process it started and reports it."""
    trials: list[FaultTrial] = []

    def run(kind: str) -> Snapshot:
        trial = FaultTrial(
            kind=kind,
            engine=engine,
            seed=fault_seed,
            trial=fault_trial_index,
            database_url=fresh_database_url,
            directory=tmp_path / "trial",
            processes=processes,
        )
        trials.append(trial)
        failure: TrialFailure | None = None
        try:
            snapshot = trial.run()
        except TrialFailure as found:
            failure = found
        except BaseException as error:
            trial.record.outcome = "error"
            trial.record.problem = repr(error)
            error.add_note(trial.describe())
            raise
        if failure is not None:  # failed outside the except block: no chained traceback
            trial.record.outcome = "failed"
            trial.record.problem = str(failure)
            pytest.fail(
                f"{trial.describe()}\n{failure}\ndatabase: {trial.database_summary()}\n"
                f"{trial.last_script_log()}",
                pytrace=False,
            )
        trial.record.outcome = "passed"
        return snapshot

    try:
        yield run
    finally:
        report = request.config.getoption("--fault-report")
        for trial in trials:
            trial.cleanup()
            if report:
                append_report(Path(report), trial.record)
