"""Where sign-in may send a browser afterwards, and that every page has an access rule."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from herdsman.server.api.app import create_app
from herdsman.server.auth.policy import POLICY
from herdsman.server.gui.routes import PAGE_RULES
from herdsman.server.gui.session import safe_next, sign_in_url


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "workflows/1",
        "//evil.example/",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
    ],
)
def test_only_paths_of_this_server_are_followed(target: str | None) -> None:
    assert safe_next(target) == "/"


def test_paths_with_queries_are_kept() -> None:
    assert safe_next("/workflows/3/tasks?status=F&sort=id") == "/workflows/3/tasks?status=F&sort=id"
    assert sign_in_url("/workflows/3?x=1") == "/sign-in?next=%2Fworkflows%2F3%3Fx%3D1"
    assert sign_in_url("//evil.example") == "/sign-in?next=%2F"


def test_every_page_mirrors_json_routes_that_exist() -> None:
    app = create_app("sqlite://", key=b"k" * 32, upgrade_schema=False)
    pages = set()
    for included in app.routes:
        router = getattr(included, "original_router", None)
        for route in router.routes if router is not None else [included]:
            if isinstance(route, APIRoute) and route.endpoint.__module__ in (
                "herdsman.server.gui.routes",
                "herdsman.server.gui.live",
                "herdsman.server.gui.resources",
                "herdsman.server.gui.logs",
            ):
                pages.add(route.path)
    assert pages == set(PAGE_RULES), "pages and their access rules differ"
    for keys in PAGE_RULES.values():
        assert keys and all(key in POLICY for key in keys)
