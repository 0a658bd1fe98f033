from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from herdsman.core.errors import PermissionDeniedError
from herdsman.core.schemas import API_PREFIX
from herdsman.server.api.app import create_app
from herdsman.server.auth.identity import Caller
from herdsman.server.auth.policy import POLICY, Rule, Target, check
from herdsman.server.auth.tokens import Role, TokenKind

OWNER = Caller("ana", Role.USER, TokenKind.USER)
OTHER = Caller("bob", Role.USER, TokenKind.USER)
ADMIN = Caller("root", Role.ADMIN, TokenKind.USER)
RUN_7 = Caller("ana", Role.USER, TokenKind.RUN, workflow_run_id=7, workflow_id=3)
WORKFLOW_3 = Target(workflow_id=3, owner="ana")
RUN_7_OF_3 = Target(workflow_id=3, owner="ana", workflow_run_id=7)


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(f"sqlite:///{tmp_path / 'db.sqlite'}", key=b"k" * 32)
    found = set()
    for route in _api_routes(app.routes):
        if route.endpoint.__module__.startswith("herdsman.server.gui"):
            continue  # the GUI's pages: PAGE_RULES (tests/unit/server/gui)
        for method in route.methods:
            found.add((method, route.path.removeprefix(API_PREFIX)))
    return found


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's API routes, those of included routers too (FastAPI keeps them apart)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def test_every_route_has_exactly_one_rule(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    assert routes - set(POLICY) == set(), "routes without an access rule"
    assert set(POLICY) - routes == set(), "rules for routes that do not exist"


def test_state_changing_routes_are_never_public_or_open_to_any_token() -> None:
    for (method, path), entry in POLICY.items():
        if method != "GET" and path != "/auth/munge":
            assert entry.rule not in (Rule.PUBLIC, Rule.SIGNED_IN), path


def allowed(rule: Rule, caller: Caller, target: Target, owners_only: bool = False) -> bool:
    try:
        check(rule, caller, target, owners_only_read=owners_only)
    except PermissionDeniedError:
        return False
    return True


@pytest.mark.parametrize(
    ("rule", "caller", "target", "expected"),
    [
        # owners and admins change workflows; nobody else, and no run token
        (Rule.OWN_WORKFLOW, OWNER, WORKFLOW_3, True),
        (Rule.OWN_WORKFLOW, ADMIN, WORKFLOW_3, True),
        (Rule.OWN_WORKFLOW, OTHER, WORKFLOW_3, False),
        (Rule.OWN_WORKFLOW, RUN_7, WORKFLOW_3, False),
        (Rule.OWN_DAG, OWNER, Target(owner="ana"), True),
        (Rule.OWN_DAG, OTHER, Target(owner="ana"), False),
        (Rule.OWN_DAG, RUN_7, Target(owner="ana"), False),
        # binding new things is for users, not for a run's machinery
        (Rule.USER, OTHER, Target(), True),
        (Rule.USER, RUN_7, Target(), False),
        # reading: any user; a run token only its own workflow
        (Rule.READ_WORKFLOW, OTHER, WORKFLOW_3, True),
        (Rule.READ_WORKFLOW, RUN_7, WORKFLOW_3, True),
        (Rule.READ_WORKFLOW, RUN_7, Target(workflow_id=4, owner="ana"), False),
        # machinery routes: the run's own token or an admin
        (Rule.RUN, RUN_7, RUN_7_OF_3, True),
        (Rule.RUN, RUN_7, Target(workflow_id=3, owner="ana", workflow_run_id=8), False),
        (Rule.RUN, RUN_7, Target(), True),  # instance ids in the body: the route checks them
        (Rule.RUN, OWNER, RUN_7_OF_3, False),
        (Rule.RUN, OTHER, Target(), False),
        (Rule.RUN, ADMIN, RUN_7_OF_3, True),
        (Rule.SIGNED_IN, RUN_7, Target(), True),
        (Rule.PUBLIC, OTHER, Target(), True),
    ],
)
def test_who_may_do_what(rule: Rule, caller: Caller, target: Target, expected: bool) -> None:
    assert allowed(rule, caller, target) is expected


def test_reading_may_be_kept_to_owners() -> None:
    assert not allowed(Rule.READ_WORKFLOW, OTHER, WORKFLOW_3, owners_only=True)
    assert allowed(Rule.READ_WORKFLOW, OWNER, WORKFLOW_3, owners_only=True)
    assert allowed(Rule.READ_WORKFLOW, ADMIN, WORKFLOW_3, owners_only=True)
    assert allowed(Rule.READ_WORKFLOW, RUN_7, WORKFLOW_3, owners_only=True)


def test_a_refusal_says_who_owns_it_and_who_asked() -> None:
    with pytest.raises(PermissionDeniedError, match=r"owner of workflow 3 \(ana\).*you are bob"):
        check(Rule.OWN_WORKFLOW, OTHER, WORKFLOW_3, owners_only_read=False)
