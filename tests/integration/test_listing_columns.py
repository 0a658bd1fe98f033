"""The columns and counts task listings and error groups read from: kept on write, refilled
by the migration, and read in the order and pages the GUI shows.

Each task keeps the most any attempt ran and used (``peak_wall_time``, ``peak_rss``), each
logged error its task and array, and each error group its counts. A real workflow with
retries is run on a real server; the kept values must equal what its attempts and error log
say, and again after the migration that adds them has been undone and redone on the same
rows.
"""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from tests.conftest import ProcessRegistry, RunningServer, start_server_process
from tests.integration.test_gui_steering import OWNER, api, signed_in
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.server.database.engine import make_database
from herdsman.server.database.migrate import alembic_config, upgrade
from herdsman.server.queries.resources import template_resources

pytestmark = pytest.mark.integration

# Sleeps a while and holds some memory, so that attempts differ in both.
_WORK = f"{sys.executable} -c 'import time; b = bytearray({{mib}} << 20); time.sleep({{seconds}})'"
# Fails on its first attempt (leaving a marker behind), succeeds on the next.
_FLAKY = (
    f'{sys.executable} -c \'import os, sys; p = "{{marker}}"; '
    'sys.exit(0) if os.path.exists(p) else (open(p, "w").close(), sys.exit(3))\''
)

# Fails twice, differently: two error groups for one task.
_TWICE = (
    f'{sys.executable} -c \'import os, sys; p = "{{marker}}"; e = os.path.exists(p); '
    'open(p, "w").close(); sys.stderr.write("out of patience" if e else "cannot open input"); '
    "sys.exit(5 if e else 4)'"
)

_PEAKS = (
    "SELECT t.id, t.peak_wall_time, t.peak_rss, MAX(ti.wall_time), MAX(ti.max_rss) "
    "FROM task t LEFT JOIN task_instance ti ON ti.task_id = t.id "
    "WHERE t.workflow_id = :w GROUP BY t.id, t.peak_wall_time, t.peak_rss ORDER BY t.id"
)
_ERRORS = (
    "SELECT l.id, l.task_id, l.array_id, ti.task_id, ti.array_id "
    "FROM task_instance_error_log l JOIN task_instance ti ON ti.id = l.task_instance_id "
    "WHERE l.workflow_id = :w ORDER BY l.id"
)

_KEPT_GROUPS = (
    "SELECT array_id, signature, exit_class, errors, tasks, first_seen, last_seen, newest_id "
    "FROM error_group_count WHERE workflow_id = :w"
)
_COUNTED_GROUPS = (
    "SELECT array_id, COALESCE(signature, ''), COALESCE(exit_class, ''), COUNT(*), "
    "COUNT(DISTINCT task_id), MIN(error_time), MAX(error_time), MAX(id) "
    "FROM task_instance_error_log WHERE workflow_id = :w "
    "GROUP BY array_id, COALESCE(signature, ''), COALESCE(exit_class, '')"
)
_KEPT_TASKS = "SELECT array_id, tasks FROM error_task_count WHERE workflow_id = :w"
_COUNTED_TASKS = (
    "SELECT array_id, COUNT(DISTINCT task_id) FROM task_instance_error_log "
    "WHERE workflow_id = :w GROUP BY array_id"
)


def _assert_error_counts_agree(url: str, workflow_id: int) -> None:
    kept = set(_query(url, _KEPT_GROUPS, workflow_id))
    assert kept == set(_query(url, _COUNTED_GROUPS, workflow_id))
    tasks = set(_query(url, _KEPT_TASKS, workflow_id))
    assert tasks == set(_query(url, _COUNTED_TASKS, workflow_id))
    # The task failing twice, differently, is in two groups and counts once for its array.
    assert sum(row[4] for row in kept) == sum(n for _, n in tasks) + 1


_KEPT_USAGE = (
    "SELECT array_id, attempts, core_seconds_requested, cpu_seconds, "
    "memory_byte_seconds_requested, memory_byte_seconds_used FROM usage_total "
    "WHERE workflow_id = :w ORDER BY array_id"
)
_COUNTED_USAGE = (
    "SELECT ti.array_id, COUNT(*), SUM(ti.wall_time * ti.requested_cores), SUM(ti.cpu_time), "
    "SUM(ti.wall_time * ti.requested_memory), SUM(ti.wall_time * ti.max_rss) "
    "FROM task_instance ti JOIN workflow_run r ON r.id = ti.workflow_run_id "
    "WHERE r.workflow_id = :w AND ti.wall_time IS NOT NULL GROUP BY ti.array_id "
    "ORDER BY ti.array_id"
)


def _assert_usage_totals_agree(url: str, workflow_id: int) -> None:
    kept = _query(url, _KEPT_USAGE, workflow_id)
    counted = _query(url, _COUNTED_USAGE, workflow_id)
    assert [row[:2] for row in kept] == [row[:2] for row in counted]
    assert sum(row[1] for row in kept) == 7  # every attempt but the never-run task's
    for got, want in zip(kept, counted, strict=True):
        for value, expected in zip(got[2:], want[2:], strict=True):
            if expected is None:  # nothing asked for (a local cluster has no requests)
                assert value is None, (got, want)
            else:
                assert value == pytest.approx(expected, rel=1e-5), (got, want)


def _query(url: str, statement: str, workflow_id: int) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement), {"w": workflow_id})]
    finally:
        engine.dispose()


def _assert_peaks_match_attempts(url: str, workflow_id: int) -> list[tuple[Any, ...]]:
    rows = _query(url, _PEAKS, workflow_id)
    for task_id, peak_wall, peak_rss, most_wall, most_rss in rows:
        if most_wall is None:
            assert peak_wall is None, task_id
        else:
            # MariaDB keeps an attempt's runtime as FLOAT (shown to 6 digits), the peak in
            # double precision.
            assert peak_wall == pytest.approx(most_wall, rel=1e-5), task_id
        assert peak_rss == most_rss, task_id
    return rows


def _run_with_retries(server_url: str, tmp_path: Path, name: str) -> int:
    """A workflow whose tasks run for different times, one retried after a failure, one that
    fails for good and one never run (downstream of the failure)."""
    with Requester(server_url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(name, requester=requester)
        tool.set_default_cluster_name("sequential")
        work = tool.get_task_template("work", _WORK, node_args=["seconds", "mib"])
        flaky = tool.get_task_template("flaky", _FLAKY, node_args=["marker"])
        bad = tool.get_task_template("bad", _TWICE, node_args=["marker"])
        works = [
            work.create_task(seconds=seconds, mib=mib)
            for seconds, mib in ((0.1, 8), (0.6, 64), (0.3, 32))
        ]
        retried = flaky.create_task(marker=str(tmp_path / "flaky"), max_attempts=2)
        failing = bad.create_task(marker=str(tmp_path / "twice"), max_attempts=2)
        never = work.create_task(seconds=0, mib=1, upstream_tasks=[failing])
        workflow = tool.create_workflow(workflow_args=name)
        workflow.add_tasks([*works, retried, failing, never])
        assert workflow.run(progress=False) == "E"
        return workflow.workflow_id


def test_peaks_and_error_tasks_are_kept_on_write_and_refilled_by_the_migration(
    fresh_database_url: str, processes: ProcessRegistry, tmp_path: Path
) -> None:
    process, info = start_server_process(
        processes, database_url=fresh_database_url, state_dir=tmp_path / "server"
    )
    try:
        workflow_id = _run_with_retries(info.url, tmp_path, f"peaks-{time.time_ns()}")
    finally:
        processes.stop(process)

    peaks = _assert_peaks_match_attempts(fresh_database_url, workflow_id)
    reported = [row for row in peaks if row[1] is not None]
    assert len(reported) == 5 and len(peaks) == 6  # every task but the one never run
    errors = _query(fresh_database_url, _ERRORS, workflow_id)
    assert len(errors) == 3  # the flaky task's first attempt, the bad task's two
    assert all(row[1] == row[3] and row[2] == row[4] and row[1] is not None for row in errors)
    _assert_error_counts_agree(fresh_database_url, workflow_id)
    _assert_usage_totals_agree(fresh_database_url, workflow_id)

    database = make_database(fresh_database_url)
    try:
        config = alembic_config(fresh_database_url)
        with database.write_engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0011")
        upgrade(database)
    finally:
        database.dispose()

    refilled = _assert_peaks_match_attempts(fresh_database_url, workflow_id)
    assert [row[0] for row in refilled if row[1] is not None] == [row[0] for row in reported]
    assert _query(fresh_database_url, _ERRORS, workflow_id) == errors
    _assert_error_counts_agree(fresh_database_url, workflow_id)
    _assert_usage_totals_agree(fresh_database_url, workflow_id)


def _listed(client: httpx.Client, path: str) -> tuple[list[int], str | None]:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.text[-2000:])
    ids = [int(i) for i in re.findall(r'<tr id="task-(\d+)"', answer.text)]
    more = re.search(r'id="next-page" rel="next" hx-get="([^"]+)"', answer.text)
    return ids, html.unescape(more.group(1)) if more else None


def _every_page(client: httpx.Client, path: str) -> list[int]:
    seen: list[int] = []
    next_path: str | None = path
    while next_path is not None:
        ids, next_path = _listed(client, next_path)
        seen.extend(ids)
    return seen


@pytest.fixture
def owner(server: RunningServer) -> Iterator[httpx.Client]:
    with signed_in(server, user_token(OWNER)) as client:
        yield client


def test_tasks_sort_by_peaks_then_unreported_tasks_and_page_through_all(
    server: RunningServer, owner: httpx.Client, tmp_path: Path
) -> None:
    workflow_id = _run_with_retries(server.url, tmp_path, f"sorted-{time.time_ns()}")
    peaks = _query(server.database_url, _PEAKS, workflow_id)
    base = f"/workflows/{workflow_id}/tasks"

    for sort, column in (("runtime", 1), ("memory", 2)):
        valued = sorted(
            (row for row in peaks if row[column] is not None), key=lambda r: (-r[column], -r[0])
        )
        unreported = sorted((row[0] for row in peaks if row[column] is None), reverse=True)
        expected = [row[0] for row in valued] + unreported
        assert _listed(owner, f"{base}?sort={sort}")[0] == expected, sort
        # One a page: the cursors go from the reported tasks into the unreported ones.
        assert _every_page(owner, f"{base}?sort={sort}&limit=1") == expected, sort

    attempts = {task_id: n for task_id, n in _attempts(server.database_url, workflow_id)}
    twice = sorted(task_id for task_id, n in attempts.items() if n >= 2)
    assert len(twice) == 2  # the flaky task and the failing one
    assert _every_page(owner, f"{base}?attempts=2&limit=1") == twice
    assert _listed(owner, f"{base}?attempts=2&status=F")[0] == twice[1:]
    by_attempts = _every_page(owner, f"{base}?sort=attempts&limit=2")
    assert by_attempts == sorted(attempts, key=lambda i: (-attempts[i], -i))


def _attempts(url: str, workflow_id: int) -> list[tuple[Any, ...]]:
    return _query(url, "SELECT id, num_attempts FROM task WHERE workflow_id = :w", workflow_id)


def _word(n: int) -> str:
    """A word of letters only, different for each n: masks leave it as it is."""
    return "".join(chr(ord("a") + int(digit)) for digit in f"{n:02d}")


def test_error_groups_come_a_page_at_a_time_and_open_their_tasks(
    server: RunningServer, owner: httpx.Client
) -> None:
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(f"error-pages-{stamp}", requester=requester)
        tool.set_default_cluster_name("sequential")
        failing = "echo 'cannot {word}' >&2; exit 2"
        alpha = tool.get_task_template("alpha", failing, node_args=["word"])
        beta = tool.get_task_template("beta", failing, node_args=["word"])
        tasks = [alpha.create_task(word=_word(n), max_attempts=1) for n in range(20)]
        tasks += [beta.create_task(word=_word(n), max_attempts=1) for n in range(20, 31)]
        workflow = tool.create_workflow(workflow_args=tool.name)
        workflow.add_tasks(tasks)
        assert workflow.run(progress=False) == "E"
    workflow_id = workflow.workflow_id
    base = f"/workflows/{workflow_id}/errors"

    first = owner.get(base).text
    assert "31 error groups" in first
    assert len(re.findall(r'<section class="error-group"', first)) == 25
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = owner.get(f"{base}?offset=25").text
    assert len(re.findall(r'<section class="error-group"', second)) == 6
    assert 'rel="prev"' in second and 'rel="next"' not in second
    signatures = re.findall(r'data-signature="([0-9a-f]+)"', first + second)
    assert len(set(signatures)) == 31

    only_beta = owner.get(f"{base}?template=beta").text
    assert "11 error groups in beta" in only_beta and 'rel="next"' not in only_beta

    last = api(server, "GET", f"/workflows/{workflow_id}/error_groups?limit=10&offset=30")
    assert last["group_count"] == 31 and len(last["groups"]) == 1
    assert last["count"] == 31 and last["tasks"] == 31

    # From a group to its task: the one task with that error.
    group = signatures[0]
    ids, _ = _listed(owner, f"/workflows/{workflow_id}/tasks?signature={group}")
    assert len(ids) == 1
    assert _listed(owner, f"/workflows/{workflow_id}/tasks?signature={group}&status=D")[0] == []


def test_resources_are_figured_over_the_newest_done_attempts(
    server: RunningServer, tmp_path: Path
) -> None:
    workflow_id = _run_with_retries(server.url, tmp_path, f"sampled-{time.time_ns()}")
    (array_id,) = _query(
        server.database_url,
        "SELECT DISTINCT t.array_id FROM task_instance ti JOIN task t ON t.id = ti.task_id "
        "WHERE t.workflow_id = :w AND t.name LIKE 'work%'",
        workflow_id,
    )[0]
    database = make_database(server.database_url)
    try:
        newest = database.read(lambda s: template_resources(s, workflow_id, array_id, sample=2))
        every = database.read(lambda s: template_resources(s, workflow_id, array_id, sample=10))
    finally:
        database.dispose()

    assert (newest.done, newest.sampled) == (2, True)
    assert (every.done, every.sampled) == (3, False)  # the three work tasks that ran
    assert [entry.attempts for entry in newest.usage.templates] == [2]
    assert [entry.attempts for entry in every.usage.templates] == [3]
    assert newest.memory is not None and sum(newest.memory.used) == 2
    assert every.runtime is not None and sum(every.runtime.used) == 3
