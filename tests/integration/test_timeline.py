"""The workflow timeline: its buckets for a known history, its JSON route, its fragment.

The known history is written straight into the kept counts and history rows of a bound
workflow; the route must add those rows up into the right number of tasks per status at the
end of every bucket, for narrow and for wide buckets. A real run then checks that what the
timeline ends with is what the workflow's counts say, and that the page and its fragment
draw it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.conftest import RunningServer
from tests.integration.test_gui_steering import OWNER, api, signed_in
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.server.database.engine import Database, make_database

pytestmark = pytest.mark.integration

T0 = 1_800_000_000  # a multiple of the history's ten seconds
# (seconds after T0, status, entered, exited): ten tasks queued, run, six done, two back to G.
HISTORY = [
    (0, "G", 0, 10),
    (0, "Q", 10, 0),
    (10, "Q", 0, 10),
    (10, "R", 10, 0),
    (40, "R", 0, 8),
    (40, "D", 6, 0),
    (40, "G", 2, 0),
]
NOW = {"G": 2, "R": 2, "D": 6}


@pytest.fixture
def database(server: RunningServer) -> Iterator[Database]:
    found = make_database(server.database_url)
    try:
        yield found
    finally:
        found.dispose()


def _bound(server: RunningServer, tasks: int, cluster: str = "dummy") -> tuple[Tool, object, int]:
    stamp = time.time_ns()
    requester = Requester(server.url, token=user_token(OWNER), timeout=120, retries=3)
    tool = Tool(f"timeline-{stamp}", requester=requester)
    tool.set_default_cluster_name(cluster)
    template = tool.get_task_template("step", "echo {n}", node_args=["n"])
    workflow = tool.create_workflow(workflow_args=f"timeline-{stamp}", max_concurrently_running=7)
    workflow.add_tasks(template.create_tasks(n=range(tasks)))
    return tool, workflow, workflow.bind()


def _write_history(database: Database, workflow_id: int) -> None:
    with database.write_engine.begin() as connection:
        array_id = connection.execute(
            text("SELECT array_id FROM task_status_count WHERE workflow_id = :w"),
            {"w": workflow_id},
        ).scalar_one()
        connection.execute(
            text("DELETE FROM task_status_count WHERE workflow_id = :w"), {"w": workflow_id}
        )
        for status, number in NOW.items():
            connection.execute(
                text(
                    "INSERT INTO task_status_count (workflow_id, array_id, status, num, "
                    "attempts, retries) VALUES (:w, :a, :s, :n, 0, 0)"
                ),
                {"w": workflow_id, "a": array_id, "s": status, "n": number},
            )
        for offset, status, entered, exited in HISTORY:
            connection.execute(
                text(
                    "INSERT INTO task_status_history (workflow_id, bucket_start, status, "
                    "entered, exited) VALUES (:w, :b, :s, :e, :x)"
                ),
                {"w": workflow_id, "b": T0 + offset, "s": status, "e": entered, "x": exited},
            )


def _series(found: dict[str, object], letters: str = "GQRD") -> dict[str, list[int]]:
    statuses = found["statuses"]
    assert isinstance(statuses, dict)
    return {letter: statuses[letter] for letter in letters}


def test_buckets_add_up_a_known_history(server: RunningServer, database: Database) -> None:
    _, _, workflow_id = _bound(server, 10)
    _write_history(database, workflow_id)

    narrow = api(server, "GET", f"/workflows/{workflow_id}/timeline?buckets=5")
    assert narrow["bucket_seconds"] == 10
    assert narrow["times"] == [T0 + 10 * k for k in range(6)]
    assert _series(narrow) == {
        "G": [10, 0, 0, 0, 0, 2],
        "Q": [0, 10, 0, 0, 0, 0],
        "R": [0, 0, 10, 10, 10, 2],
        "D": [0, 0, 0, 0, 0, 6],
    }
    assert narrow["running"] == narrow["statuses"]["R"]
    assert narrow["max_concurrently_running"] == 7

    wide = api(server, "GET", f"/workflows/{workflow_id}/timeline?buckets=2")
    assert wide["bucket_seconds"] == 30
    assert wide["times"] == [T0, T0 + 30, T0 + 60]
    assert _series(wide) == {
        "G": [10, 0, 2],
        "Q": [0, 0, 0],
        "R": [0, 10, 2],
        "D": [0, 0, 6],
    }


def test_the_fragment_draws_the_known_history(server: RunningServer, database: Database) -> None:
    _, _, workflow_id = _bound(server, 10)
    _write_history(database, workflow_id)
    with signed_in(server, user_token(OWNER)) as browser:
        answer = browser.get(f"/workflows/{workflow_id}/timeline")
        assert answer.status_code == 200, answer.text[-1000:]
        fragment = answer.text
        assert 'id="timeline"' in fragment and "hx-swap-oob" not in fragment
        assert 'data-running="2"' in fragment and 'data-limit="7"' in fragment
        series = dict(re.findall(r'data-series="([a-z]+)" data-last="(\d+)"', fragment))
        assert series == {"pending": "2", "queued": "0", "running": "2", "done": "6", "limit": "7"}
        # The page draws the same, inside the workflow page.
        page = browser.get(f"/workflows/{workflow_id}").text
        assert '<figure id="timeline"' in page and 'data-plot="running"' in page


def test_an_empty_history_and_a_real_run(server: RunningServer) -> None:
    _, workflow, workflow_id = _bound(server, 30)
    empty = api(server, "GET", f"/workflows/{workflow_id}/timeline")
    assert empty["times"] == [] and empty["running"] == []
    with signed_in(server, user_token(OWNER)) as browser:
        assert (
            "No task has changed status yet"
            in browser.get(f"/workflows/{workflow_id}/timeline").text
        )

    assert workflow.run(progress=False) == "D"  # type: ignore[attr-defined]
    found = api(server, "GET", f"/workflows/{workflow_id}/timeline")
    assert found["times"], found
    assert {s: v[-1] for s, v in found["statuses"].items() if v[-1]} == {"D": 30}
    assert {s: v[0] for s, v in found["statuses"].items() if v[0]} == {"G": 30}
    with signed_in(server, user_token(OWNER)) as browser:
        fragment = browser.get(f"/workflows/{workflow_id}/timeline").text
        assert 'data-series="done" data-last="30"' in fragment


def test_a_workflow_without_a_timeline_is_404(server: RunningServer) -> None:
    with signed_in(server, user_token(OWNER)) as browser:
        assert browser.get("/workflows/987654321/timeline").status_code == 404
