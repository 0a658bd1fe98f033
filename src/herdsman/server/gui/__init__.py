"""The web GUI: server-rendered pages at ``/`` beside the JSON API under ``/api/v1``.

Pages are Jinja2 templates with htmx for fragments (the next page of a table); the scripts
they use are vendored under ``static/vendor`` and served by the server itself, so the GUI
needs no separate deployment, no Node and no network beyond the server. :func:`install` adds
it to the app; ``docs/gui.md`` says what each page shows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from herdsman.core.schemas import API_PREFIX
from herdsman.server.gui import live, logs, resources
from herdsman.server.gui.rendering import render
from herdsman.server.gui.routes import router
from herdsman.server.gui.session import SignInRequired, sign_in_router, sign_in_url
from herdsman.server.gui.steering import router as steering_router

__all__ = ["STATIC", "error_page", "install", "serves"]

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the GUI's pages, its static files and its sign-in redirect to ``app``."""
    app.include_router(sign_in_router)
    app.include_router(live.router)  # first: /tasks/{id}/live is not a direction
    app.include_router(router)
    app.include_router(steering_router)
    app.include_router(resources.router)
    app.include_router(logs.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = sign_in_url(exc.next_url)
        if request.headers.get("hx-request") == "true":
            # htmx would follow a redirect and swap the form into a table: send the whole
            # page there instead.
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def serves(request: Request) -> bool:
    """Whether ``request`` is for the GUI (answered in HTML), not for the JSON API."""
    path = request.url.path
    return not (path == API_PREFIX or path.startswith(API_PREFIX + "/"))


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """An error as a page: what went wrong, in the words the API would use."""
    return render(
        request, "error.html", None, status_code=status_code, title=title, message=message
    )
