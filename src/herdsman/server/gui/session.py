"""Signing in to the GUI: a herdsman token kept in an HttpOnly cookie.

The browser never sees the token again once it is pasted: the cookie is HttpOnly (no
script reads it), SameSite=Strict (no other site's page sends it, so no forged form can act
for the user) and Secure over https. Each page verifies it as the JSON routes verify a
bearer token, revocations and expiry included. A run's token is for its distributor and
jobs; it does not sign in here.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from herdsman.core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from herdsman.server.auth.identity import Authenticator, Caller
from herdsman.server.gui.rendering import FORM_NOT_SENT, render

__all__ = [
    "COOKIE",
    "PageCaller",
    "SignInRequired",
    "caller_of_token",
    "safe_next",
    "same_origin",
    "sign_in_router",
    "sign_in_url",
    "signed_in",
]

logger = structlog.get_logger(__name__)

COOKIE = "herdsman_token"


class SignInRequired(Exception):
    """A page was asked for without a valid sign-in: the answer sends the browser to sign in
    and back to ``next``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(f"sign in to see {next_url}")
        self.next_url = next_url


def caller_of_token(request: Request, token: str) -> Caller:
    """The user ``token`` names; AuthenticationError if it is not a valid user token."""
    authenticator: Authenticator = request.app.state.authenticator
    caller = authenticator.caller("Bearer " + token.strip())
    if caller.is_run:
        raise AuthenticationError(
            "this is a workflow run's token, for its distributor and jobs; sign in with your "
            "own (herdsman login, or ask for one: herdsman server token issue)"
        )
    return caller


async def signed_in(request: Request) -> Caller:
    """The page's caller from the cookie; SignInRequired when there is none or it is not
    valid any more (expired, revoked, a key changed)."""
    token = request.cookies.get(COOKIE)
    here = _return_page(request)
    if not token:
        raise SignInRequired(here)
    try:
        return caller_of_token(request, token)
    except AuthenticationError as error:
        logger.info("gui_sign_in_expired", path=request.url.path, reason=error.message)
        raise SignInRequired(here) from None


PageCaller = Annotated[Caller, Depends(signed_in)]


def _return_page(request: Request) -> str:
    """Where to come back to after signing in: this page; for a form (a POST), which cannot
    be repeated by a redirect, the workflow page it was sent from, with a notice saying the
    form was not applied."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raw_id = str(request.path_params.get("workflow_id", ""))
    page = f"/workflows/{raw_id}" if raw_id.isdigit() else "/"
    return f"{page}?notice={FORM_NOT_SENT}"


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this server, else "/": a sign-in link must not send
    anyone to another site (``//evil.example``, ``https://…``, ``/\\evil``, ``/`` and a tab
    before ``/evil``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ch.isspace() or not ch.isprintable() for ch in target):
        return "/"  # browsers drop tabs and newlines: "/\t/evil.example" is "//evil.example"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def sign_in_url(next_url: str) -> str:
    return "/sign-in?next=" + quote(safe_next(next_url), safe="")


sign_in_router = APIRouter(include_in_schema=False)

HOW_TO_GET_A_TOKEN = (
    "On a cluster with MUNGE, run `herdsman login`: it keeps your token in the token file it "
    "names (print it with `cat`). Elsewhere, ask the server's operator for one: "
    "`herdsman server token issue --user YOU`. A workflow run's token does not sign in here."
)


@sign_in_router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _form(request, safe_next(next), None, 200)


@sign_in_router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Check the pasted token; keep it in the cookie and go on to ``next``."""
    same_origin(request)
    fields = await _form_fields(request)
    next_url = safe_next(fields.get("next"))
    token = (fields.get("token") or "").strip()
    if not token:
        return _form(request, next_url, "paste a token first", 400)
    try:
        caller = caller_of_token(request, token)
    except AuthenticationError as error:
        logger.info("gui_sign_in_refused", reason=error.message)
        return _form(request, next_url, error.message, 401)
    logger.info("gui_signed_in", user=caller.user, role=caller.role.value)
    answer = RedirectResponse(next_url, status_code=303)
    answer.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return answer


@sign_in_router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    same_origin(request)
    answer = RedirectResponse("/sign-in", status_code=303)
    answer.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return answer


def _form(request: Request, next_url: str, error: str | None, status_code: int) -> HTMLResponse:
    return render(
        request,
        "sign_in.html",
        None,
        status_code=status_code,
        next_url=next_url,
        error=error,
        how=HOW_TO_GET_A_TOKEN,
    )


MAX_FORM_BYTES = 64 * 1024


async def _form_fields(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the only kind the sign-in form sends)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError("the form is too large for a token")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def same_origin(request: Request) -> None:
    """Refuse a form sent from another site's page (browsers name the page's origin)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    here = f"{request.url.scheme}://{request.url.netloc}"
    if origin.rstrip("/") != here:
        raise PermissionDeniedError(
            f"a form from {origin} is refused here; use this server's own page"
        )
