"""Signing in over https, in process: the cookie is Secure there, and forms from elsewhere
are refused. (Over plain http, and everything else, against a real server process:
tests/integration/test_gui_pages.py.)"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from herdsman.core.config import ReaperSettings
from herdsman.server.api.app import create_app
from herdsman.server.auth.tokens import Role, TokenSigner
from herdsman.server.gui.session import COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette would rather have httpx2; httpx serves here
    from fastapi.testclient import TestClient

KEY = b"k" * 32


@pytest.fixture
def https(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        f"sqlite:///{tmp_path / 'db.sqlite'}", key=KEY, reaper=ReaperSettings(enabled=False)
    )
    with TestClient(app, base_url="https://herdsman.example", follow_redirects=False) as client:
        yield client


def token() -> str:
    return TokenSigner(KEY).issue_user_token("ana", Role.USER, dt.timedelta(hours=1))[0]


def test_over_https_the_cookie_is_secure(https: TestClient) -> None:
    answer = https.post("/sign-in", data={"token": token(), "next": "/?user="})
    assert answer.status_code == 303 and answer.headers["location"] == "/?user="
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_forms_from_another_origin_are_refused_and_the_same_origin_accepted(
    https: TestClient,
) -> None:
    form = {"token": token(), "next": "/"}
    refused = https.post("/sign-in", data=form, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    accepted = https.post("/sign-in", data=form, headers={"Origin": "https://herdsman.example"})
    assert accepted.status_code == 303
    out = https.post("/sign-out", headers={"Origin": "http://herdsman.example"})
    assert out.status_code == 403  # another scheme is another origin


def test_a_page_asked_for_by_htmx_without_sign_in_sends_the_whole_page_to_sign_in(
    https: TestClient,
) -> None:
    answer = https.get("/workflows/1/tasks?after=5", headers={"HX-Request": "true"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/sign-in?next=%2Fworkflows%2F1%2Ftasks%3Fafter%3D5"
