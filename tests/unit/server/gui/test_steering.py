"""The pure parts of steering from the GUI: CSRF tokens, the status form, the preview's
counts, who sees the controls, and an access rule for every form."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from herdsman.core.errors import InvalidInputError
from herdsman.core.statuses import TaskStatus
from herdsman.server.api.app import create_app
from herdsman.server.auth.identity import Caller
from herdsman.server.auth.policy import POLICY
from herdsman.server.auth.tokens import Role, TokenKind
from herdsman.server.domain.owner_actions import summarise_plan
from herdsman.server.gui import csrf
from herdsman.server.gui.steering import (
    STEER_RULES,
    describe_filter,
    may_steer,
    parse_status_form,
)
from herdsman.server.queries.tasks import TaskFilter

STEERING = "herdsman.server.gui.steering"


def test_csrf_tokens_belong_to_one_sign_in_under_one_key() -> None:
    key = csrf.form_key(b"k" * 32)
    assert key != b"k" * 32
    token = csrf.token_for(key, "session-a")
    assert csrf.matches(key, "session-a", token)
    assert not csrf.matches(key, "session-b", token)
    assert not csrf.matches(csrf.form_key(b"j" * 32), "session-a", token)
    assert not csrf.matches(key, "session-a", None)
    assert not csrf.matches(key, "session-a", "")
    assert not csrf.matches(key, "", csrf.token_for(key, ""))


def test_the_status_form_reads_the_tasks_page_filters() -> None:
    form = parse_status_form(
        {
            "status": ["F", "E"],
            "template": ["fit "],
            "name": [""],
            "attempts": ["2"],
            "signature": ["abc"],
            "target": ["G"],
            "recursive": ["1"],
        }
    )
    assert form.filters == TaskFilter(
        statuses=("F", "E"), template="fit", name=None, min_attempts=2, signature="abc"
    )
    assert form.target is TaskStatus.REGISTERING and form.recursive
    empty = parse_status_form({})
    assert empty.filters == TaskFilter() and empty.target is None and not empty.recursive


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"target": ["R"]}, "target"),
        ({"status": ["X"]}, "status"),
        ({"attempts": ["two"]}, "attempts"),
    ],
)
def test_the_status_form_names_a_wrong_field(fields: dict[str, list[str]], field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_status_form(fields)
    assert refused.value.details == {"fields": [field]}


def test_filters_in_words() -> None:
    assert describe_filter(TaskFilter()) == "all tasks"
    words = describe_filter(TaskFilter(statuses=("F",), template="fit", name="x", min_attempts=2))
    assert words == "status F, template fit, name containing 'x', at least 2 attempts"


def test_a_preview_counts_what_the_owner_table_changes() -> None:
    rows = [
        (1, "F", 2, "fit"),  # failed: reset
        (2, "G", 0, "fit"),  # registering, nothing spent: stays
        (3, "G", 1, "post"),  # registering with attempts spent: gets them back
        (4, "R", 1, "post"),  # running: reset, counted as active
        (5, "D", 1, "post"),
    ]
    plan = summarise_plan(rows, chosen=2, target=TaskStatus.REGISTERING)
    assert (plan.chosen, plan.touched, plan.changing, plan.active) == (2, 5, 4, 1)
    assert plan.by_template == {"fit": 2, "post": 3}
    assert plan.by_status == {"D": 1, "F": 1, "G": 2, "R": 1}
    done = summarise_plan(rows, chosen=5, target=TaskStatus.DONE)
    assert done.changing == 4  # all but the one done already
    assert summarise_plan([], chosen=0, target=TaskStatus.DONE).changing == 0


def test_controls_show_to_the_owner_and_admins() -> None:
    owner = Caller("ana", Role.USER, TokenKind.USER)
    other = Caller("bo", Role.USER, TokenKind.USER)
    admin = Caller("root", Role.ADMIN, TokenKind.USER)
    run = Caller("ana", Role.USER, TokenKind.RUN, workflow_run_id=1, workflow_id=7)
    assert may_steer(owner, 7, "ana") and may_steer(admin, 7, "ana")
    assert not may_steer(other, 7, "ana")
    assert not may_steer(None, 7, "ana")
    assert not may_steer(run, 7, "ana")


def test_every_steering_form_applies_json_routes_that_exist() -> None:
    app = create_app("sqlite://", key=b"k" * 32, upgrade_schema=False)
    forms = set()
    for included in app.routes:
        router = getattr(included, "original_router", None)
        for route in router.routes if router is not None else [included]:
            if isinstance(route, APIRoute) and route.endpoint.__module__ == STEERING:
                forms.update((method, route.path) for method in route.methods)
    assert forms == set(STEER_RULES), "steering forms and their access rules differ"
    for keys in STEER_RULES.values():
        assert keys and all(key in POLICY for key in keys)
        assert all(POLICY[key].audited for key in keys)
