"""Steering from the GUI against a real server process: stop, limits, status changes by filter.

Each test signs in through the real form, reads the CSRF token from the page as a browser
would, posts the forms and reads the outcome back through the JSON API (run status, limits,
task counts, history), so the GUI is checked against the routes it stands in for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import html
import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support.tokens import admin_token, bearer, key_file, user_token

from herdsman import Tool
from herdsman.core.limits import UNLIMITED
from herdsman.core.requester import Requester
from herdsman.server.auth.keys import load_or_create_key
from herdsman.server.auth.tokens import Role, TokenSigner
from herdsman.server.gui import csrf
from herdsman.server.gui.session import COOKIE

pytestmark = pytest.mark.integration

OWNER = getpass.getuser()
INTRUDER = "gui-steer-intruder"
API = "/api/v1"
BIG = 1_500  # more than one chunk (1,000) of the status change


@contextlib.contextmanager
def signed_in(server: RunningServer, token: str) -> Iterator[httpx.Client]:
    """A browser signed in through the real sign-in form (the cookie comes from its answer)."""
    with httpx.Client(base_url=server.url, timeout=120, follow_redirects=False) as client:
        answer = client.post("/sign-in", data={"token": token, "next": "/"})
        assert answer.status_code == 303, answer.text[-1000:]
        yield client


@pytest.fixture
def owner(server: RunningServer) -> Iterator[httpx.Client]:
    with signed_in(server, user_token(OWNER)) as client:
        yield client


@pytest.fixture
def intruder(server: RunningServer) -> Iterator[httpx.Client]:
    with signed_in(server, user_token(INTRUDER)) as client:
        yield client


def api(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    answer = httpx.request(
        method, server.url + API + path, json=body, headers=bearer(user_token(OWNER)), timeout=60
    )
    assert answer.status_code < 300, (path, answer.status_code, answer.text)
    return answer.json()


def bind(server: RunningServer, big: int = 0) -> int:
    """A bound workflow: a -> b -> c (template "chain") and ``big`` lone tasks ("big")."""
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(f"steer-{stamp}", requester=requester)
        tool.set_default_cluster_name("dummy")
        chain = tool.get_task_template("chain", "echo {n}", node_args=["n"])
        lone = tool.get_task_template("big", "echo big {n}", node_args=["n"])
        first = chain.create_task(n=0)
        second = chain.create_task(n=1, upstream_tasks=[first])
        third = chain.create_task(n=2, upstream_tasks=[second])
        workflow = tool.create_workflow(workflow_args=f"steer-{stamp}", name=f"steer-{stamp}")
        workflow.add_tasks([first, second, third])
        if big:
            workflow.add_tasks(lone.create_tasks(n=range(big)))
        return workflow.bind()


def start_run(server: RunningServer, workflow_id: int) -> int:
    run = api(server, "POST", f"/workflows/{workflow_id}/runs", {})
    return int(run["workflow_run_id"])


def page(client: httpx.Client, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[-2000:])
    return answer.text


def token_of(text: str) -> str:
    match = re.search(rf'name="{csrf.FIELD}" value="([0-9a-f]+)"', text)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def history(server: RunningServer, workflow_id: int, gui_rows: int = 0) -> list[dict[str, Any]]:
    """The GUI forms' rows of the workflow's audit trail, once there are ``gui_rows``: the server
    writes a row just after it answers, so a test can ask before the row is there."""
    entries: list[dict[str, Any]] = []
    for _ in range(100):
        every = api(server, "GET", f"/workflows/{workflow_id}/history")["entries"]
        # The GUI's rows only: the JSON API's (/api/v1/...) are written just as late.
        entries = [e for e in every if e["path"].startswith("/workflows/")]
        if len(entries) >= gui_rows:
            break
        time.sleep(0.1)
    return entries


def counts(server: RunningServer, workflow_id: int) -> dict[str, int]:
    found: dict[str, int] = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
    return {status: n for status, n in found.items() if n}


def preview(client: httpx.Client, workflow_id: int, query: str) -> dict[str, Any]:
    text = page(client, f"/workflows/{workflow_id}/status-change?{query}")
    section = re.search(r'<section id="preview"[^>]*>', text)
    assert section is not None, text[-2000:]
    data = dict(re.findall(r'data-([a-z]+)="(\d+)"', section.group(0)))
    summary = re.search(r'<p id="preview-summary">(.*?)</p>', text, re.S)
    assert summary is not None
    fields = re.search(r'<form id="status-apply".*?</form>', text, re.S)
    assert fields is not None
    pairs = [
        (html.unescape(name), html.unescape(value))
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', fields.group(0))
    ]
    hidden: dict[str, list[str]] = {}
    for name, value in pairs:
        hidden.setdefault(name, []).append(value)
    return {
        **{key: int(value) for key, value in data.items()},
        "summary": re.sub(r"<[^>]+>", "", summary.group(1)),
        "fields": hidden,
        "disabled": "disabled" in fields.group(0),
    }


def test_controls_show_for_the_owner_and_admins_only(
    server: RunningServer, owner: httpx.Client, intruder: httpx.Client
) -> None:
    workflow_id = bind(server)
    mine = page(owner, f"/workflows/{workflow_id}")
    assert 'id="steering"' in mine and 'id="limits-form"' in mine and 'id="stop-form"' in mine
    assert csrf.FIELD in mine
    theirs = page(intruder, f"/workflows/{workflow_id}")
    assert 'id="steering"' not in theirs and csrf.FIELD not in theirs
    page(intruder, f"/workflows/{workflow_id}/status-change?target=D", 403)
    with signed_in(server, admin_token("gui-steer-admin")) as admin:
        assert 'id="steering"' in page(admin, f"/workflows/{workflow_id}")


def test_stop_ends_the_live_run_and_history_shows_it(
    server: RunningServer, owner: httpx.Client
) -> None:
    workflow_id = bind(server)
    run_id = start_run(server, workflow_id)
    before = page(owner, f"/workflows/{workflow_id}")
    assert f"Stop run {run_id}" in before

    answer = owner.post(f"/workflows/{workflow_id}/stop", data={csrf.FIELD: token_of(before)})

    assert answer.status_code == 303, answer.text[-1000:]
    assert answer.headers["location"] == f"/workflows/{workflow_id}#history-table"
    assert api(server, "GET", f"/workflow_runs/{run_id}")["status"] == "S"
    entry = history(server, workflow_id, 1)[-1]
    assert (entry["user"], entry["method"], entry["path"], entry["status_code"]) == (
        OWNER,
        "POST",
        f"/workflows/{workflow_id}/stop",
        303,
    )
    after = page(owner, f"/workflows/{workflow_id}")
    assert f"POST /workflows/{workflow_id}/stop" in after and "the run is S" in after
    assert f"Stop run {run_id}" not in after
    # A repeated stop answers as the JSON route does: the run's status, nothing changed.
    again = owner.post(f"/workflows/{workflow_id}/stop", data={csrf.FIELD: token_of(after)})
    assert again.status_code == 303
    assert history(server, workflow_id, 2)[-1]["status_code"] == 303


def test_limits_change_and_read_back_through_the_json_api(
    server: RunningServer, owner: httpx.Client
) -> None:
    workflow_id = bind(server, big=3)
    run_id = start_run(server, workflow_id)
    text = page(owner, f"/workflows/{workflow_id}")
    arrays = dict(re.findall(r'data-template="([^"]+)" data-array-id="(\d+)"', text))

    answer = owner.post(
        f"/workflows/{workflow_id}/limits",
        data={
            csrf.FIELD: token_of(text),
            "workflow_limit": "7",
            "template": ["big", "chain"],
            "template_limit": ["2", str(UNLIMITED)],
        },
    )

    assert answer.status_code == 303, answer.text[-1000:]
    assert api(server, "GET", f"/workflows/{workflow_id}")["max_concurrently_running"] == 7
    beat = api(server, "POST", f"/workflow_runs/{run_id}/heartbeat", {"next_report_seconds": 3600})
    limits = beat["concurrency"]
    assert limits["max_concurrently_running"] == 7
    assert limits["array_limits"][arrays["big"]] == 2
    assert limits["array_limits"][arrays["chain"]] == UNLIMITED
    entry = history(server, workflow_id, 1)[-1]
    assert entry["path"] == f"/workflows/{workflow_id}/limits" and entry["status_code"] == 303
    assert entry["message"] == f"workflow limit {UNLIMITED} -> 7; big limit {UNLIMITED} -> 2"
    shown = page(owner, f"/workflows/{workflow_id}")
    assert 'id="workflow-limit">7 tasks at once' in shown
    assert f"big limit {UNLIMITED} -&gt; 2" in shown

    bad = owner.post(
        f"/workflows/{workflow_id}/limits",
        data={csrf.FIELD: token_of(shown), "workflow_limit": "-1"},
    )
    assert bad.status_code == 422 and "workflow_limit" in bad.text
    assert api(server, "GET", f"/workflows/{workflow_id}")["max_concurrently_running"] == 7


def test_status_change_by_filter_previews_what_it_then_applies_over_several_chunks(
    server: RunningServer, owner: httpx.Client
) -> None:
    workflow_id = bind(server, big=BIG)
    assert counts(server, workflow_id) == {"G": BIG + 3}

    done = preview(owner, workflow_id, "template=big&target=D")
    assert (done["chosen"], done["touched"], done["changing"], done["templates"]) == (
        BIG,
        BIG,
        BIG,
        1,
    )
    assert done["summary"].startswith(f"{BIG:,} tasks in 1 template will be set to D")
    assert not done["disabled"]
    assert done["fields"]["template"] == ["big"] and done["fields"]["expected"] == [str(BIG)]
    answer = owner.post(f"/workflows/{workflow_id}/status-change", data=done["fields"])
    assert answer.status_code == 303, answer.text[-1000:]
    assert counts(server, workflow_id) == {"G": 3, "D": BIG}
    entry = history(server, workflow_id, 1)[-1]
    assert entry["path"] == f"/workflows/{workflow_id}/status-change"
    assert entry["message"].startswith(f"{BIG} tasks set to D ({BIG} chosen by template big")

    # Done everything: the chain too, upstream of its last task.
    chain = preview(owner, workflow_id, "template=chain&name=2&target=D&recursive=1")
    assert (chain["chosen"], chain["changing"]) == (1, 3)
    owner.post(f"/workflows/{workflow_id}/status-change", data=chain["fields"])
    assert counts(server, workflow_id) == {"D": BIG + 3}

    # A reset of the chain's first task takes its downstream along; the rest stays done.
    reset = preview(owner, workflow_id, "template=chain&name=0&target=G")
    assert (reset["chosen"], reset["touched"], reset["changing"]) == (1, 3, 3)
    assert "2 more downstream" in page(
        owner, f"/workflows/{workflow_id}/status-change?template=chain&name=0&target=G"
    )
    owner.post(f"/workflows/{workflow_id}/status-change", data=reset["fields"])
    assert counts(server, workflow_id) == {"G": 3, "D": BIG}

    # Everything back to registering: the whole workflow, chunk after chunk.
    back = preview(owner, workflow_id, "status=D&target=G")
    assert back["changing"] == BIG
    owner.post(f"/workflows/{workflow_id}/status-change", data=back["fields"])
    assert counts(server, workflow_id) == {"G": BIG + 3}
    messages = [e["message"] for e in history(server, workflow_id, 4) if e["status_code"] == 303]
    assert [m.split(" (")[0] for m in messages] == [
        f"{BIG} tasks set to D",
        "3 tasks set to D",
        "3 tasks set to G",
        f"{BIG} tasks set to G",
    ]


def test_a_stale_preview_is_refused_and_a_held_workflow_cannot_be_changed(
    server: RunningServer, owner: httpx.Client
) -> None:
    workflow_id = bind(server, big=5)
    stale = preview(owner, workflow_id, "template=big&target=D")
    first = preview(owner, workflow_id, "template=big&name=1&target=D")
    owner.post(f"/workflows/{workflow_id}/status-change", data=first["fields"])
    assert counts(server, workflow_id) == {"G": 7, "D": 1}

    answer = owner.post(f"/workflows/{workflow_id}/status-change", data=stale["fields"])

    assert answer.status_code == 409 and "preview again" in answer.text
    assert counts(server, workflow_id) == {"G": 7, "D": 1}
    assert history(server, workflow_id, 2)[-1]["status_code"] == 409

    start_run(server, workflow_id)
    held = preview(owner, workflow_id, "template=big&target=D")
    assert held["disabled"]
    assert "stop it first" in page(
        owner, f"/workflows/{workflow_id}/status-change?template=big&target=D"
    )
    refused = owner.post(f"/workflows/{workflow_id}/status-change", data=held["fields"])
    assert refused.status_code == 409
    assert counts(server, workflow_id) == {"G": 7, "D": 1}


def _intruders_token() -> str:
    """The CSRF token of the intruder's own session (the pages never give them one)."""
    key = csrf.form_key(load_or_create_key(key_file()))
    return csrf.token_for(key, user_token(INTRUDER))


def test_a_non_owner_posting_anyway_is_refused_and_audited(
    server: RunningServer, intruder: httpx.Client
) -> None:
    workflow_id = bind(server, big=2)
    run_id = start_run(server, workflow_id)
    session_token = intruder.cookies.get("herdsman_token")
    assert session_token is not None
    key = csrf.form_key(load_or_create_key(key_file()))
    own_token = csrf.token_for(key, session_token)
    posts = [
        ("stop", {}),
        ("limits", {"workflow_limit": "1"}),
        ("status-change", {"template": "big", "target": "D"}),
    ]
    for action, fields in posts:
        answer = intruder.post(
            f"/workflows/{workflow_id}/{action}", data={csrf.FIELD: own_token, **fields}
        )
        assert answer.status_code == 403, (action, answer.status_code, answer.text[-500:])
    assert api(server, "GET", f"/workflow_runs/{run_id}")["status"] != "S"
    assert api(server, "GET", f"/workflows/{workflow_id}")["max_concurrently_running"] == UNLIMITED
    # Each row is written just after its answer, so two quick requests may swap places.
    entries = history(server, workflow_id, 3)
    refusals = sorted((e["user"], e["path"], e["status_code"]) for e in entries)
    assert refusals == sorted(
        (INTRUDER, f"/workflows/{workflow_id}/{action}", 403) for action, _ in posts
    )


def test_csrf_token_missing_wrong_or_foreign_origin_is_refused(
    server: RunningServer, owner: httpx.Client
) -> None:
    workflow_id = bind(server)
    good = token_of(page(owner, f"/workflows/{workflow_id}"))
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"workflow_limit": "3"}, {}),
        ({"workflow_limit": "3", csrf.FIELD: ""}, {}),
        ({"workflow_limit": "3", csrf.FIELD: _intruders_token()}, {}),
        ({"workflow_limit": "3", csrf.FIELD: "0" * 64}, {}),
        ({"workflow_limit": "3", csrf.FIELD: good}, {"origin": "https://evil.example"}),
    ]
    for fields, headers in attempts:
        answer = owner.post(f"/workflows/{workflow_id}/limits", data=fields, headers=headers)
        assert answer.status_code == 403, (fields, headers, answer.status_code)
    assert api(server, "GET", f"/workflows/{workflow_id}")["max_concurrently_running"] == UNLIMITED
    path = f"/workflows/{workflow_id}/limits"
    refused = [e["status_code"] for e in history(server, workflow_id, 5) if e["path"] == path]
    assert refused == [403] * len(attempts)

    fine = owner.post(
        f"/workflows/{workflow_id}/limits",
        data={"workflow_limit": "3", csrf.FIELD: good},
        headers={"origin": server.url},
    )
    assert fine.status_code == 303
    assert api(server, "GET", f"/workflows/{workflow_id}")["max_concurrently_running"] == 3


def test_an_error_group_links_to_a_reset_of_its_tasks(
    server: RunningServer, owner: httpx.Client, intruder: httpx.Client
) -> None:
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=60, retries=3) as requester:
        tool = Tool(f"steer-errors-{stamp}", requester=requester)
        tool.set_default_cluster_name("multiprocess")
        work = tool.get_task_template(
            "work", "{command} # {n}", node_args=["n"], op_args=["command"]
        )
        after = tool.get_task_template("after", "true {n}", node_args=["n"])
        fine = work.create_task(n=0, command="true")
        failing = [
            work.create_task(n=i, command="echo broken >&2; exit 3", max_attempts=1) for i in (1, 2)
        ]
        blocked = after.create_task(n=0, upstream_tasks=failing)
        workflow = tool.create_workflow(workflow_args=f"steer-e-{stamp}", name=f"steer-e-{stamp}")
        workflow.add_tasks([fine, *failing, blocked])
        with contextlib.redirect_stderr(io.StringIO()):
            assert workflow.run(progress=False) == "E"
    workflow_id = workflow.workflow_id
    assert workflow_id is not None

    errors = page(owner, f"/workflows/{workflow_id}/errors")
    links = re.findall(r'<p class="group-reset"><a href="([^"]+)">', errors)
    assert len(links) == 1
    assert "group-reset" not in page(intruder, f"/workflows/{workflow_id}/errors")
    target = html.unescape(links[0])
    assert "target=G" in target and "signature=" in target
    reset = preview(owner, workflow_id, target.split("?", 1)[1])
    # The two failed tasks change; the one behind them is registering already.
    assert (reset["chosen"], reset["touched"], reset["changing"]) == (2, 3, 2)

    answer = owner.post(f"/workflows/{workflow_id}/status-change", data=reset["fields"])

    assert answer.status_code == 303, answer.text[-1000:]
    assert counts(server, workflow_id) == {"D": 1, "G": 3}


def test_a_form_sent_after_the_sign_in_expired_returns_to_the_workflow_page(
    server: RunningServer, owner: httpx.Client
) -> None:
    """A form posted with an expired cookie is not applied; signing in again leads to the
    workflow page (a GET), not back to the form's URL (which answers only POST), with a
    one-line notice saying the form was not applied."""
    workflow_id = bind(server)
    run_id = start_run(server, workflow_id)
    form_token = token_of(page(owner, f"/workflows/{workflow_id}"))
    signer = TokenSigner(load_or_create_key(key_file()))
    expired = signer.issue_user_token(OWNER, Role.USER, dt.timedelta(hours=-1))[0]
    with httpx.Client(base_url=server.url, timeout=120, follow_redirects=False) as stale:
        stale.cookies.set(COOKIE, expired)
        answer = stale.post(f"/workflows/{workflow_id}/stop", data={csrf.FIELD: form_token})
        assert answer.status_code == 303
        sign_in = answer.headers["location"]
        assert sign_in.startswith("/sign-in?next=")
        form = stale.get(sign_in)
        assert form.status_code == 200
        next_url = re.search(r'name="next" value="([^"]+)"', form.text)
        assert next_url is not None
        back = stale.post(
            "/sign-in", data={"token": user_token(OWNER), "next": html.unescape(next_url[1])}
        )
        assert back.status_code == 303
        assert back.headers["location"] == f"/workflows/{workflow_id}?notice=form-not-sent"
        landed = stale.get(back.headers["location"])
        assert landed.status_code == 200
        assert 'id="notice"' in landed.text and "was not applied" in landed.text
    run = api(server, "GET", f"/workflow_runs/{run_id}")
    assert run["status"] != "S", "the expired form must not have stopped the run"
