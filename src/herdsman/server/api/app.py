"""The FastAPI application: routers under ``/api/v1`` and one mapping of errors to HTTP.

Every error answer has the same body, ``{"error": <exception class>, "message": <text a person
can act on>, "details": {...}}`` (:class:`~herdsman.core.schemas.errors.ErrorBodyOut`), which the
client turns back into the same exception: herdsman's own errors, malformed requests (422, the
offending field named), values a column cannot hold (422), unknown routes (404), bodies over
the size limit (413) and unexpected failures (500, logged with their traceback on the server).
Nothing a caller sends should produce a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from herdsman import __version__
from herdsman.core.config import (
    AuthSettings,
    GuiSettings,
    ReaperSettings,
    RetentionSettings,
    ServerSettings,
    Settings,
)
from herdsman.core.errors import HerdsmanError, InvalidInputError, NotFoundError
from herdsman.core.limits import InputLimits
from herdsman.core.schemas import API_PREFIX
from herdsman.server.api.access import AuditTrail, authorize, note_error
from herdsman.server.api.guard import RateLimiter
from herdsman.server.api.middleware import LimitRequestBody, UnexpectedErrors, error_body
from herdsman.server.api.routes import auth as auth_routes
from herdsman.server.api.routes import client, control, distributor, queries, swarm, worker
from herdsman.server.api.timing import RequestTimer, RequestTimings
from herdsman.server.auth.identity import Authenticator, Revocations
from herdsman.server.auth.oidc import OidcVerifier
from herdsman.server.auth.tokens import TokenSigner
from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.feed import ChangeNotifier
from herdsman.server.database.listen import listen_for_changes, listens
from herdsman.server.database.migrate import upgrade
from herdsman.server.domain.pending_reasons import PendingReasons
from herdsman.server.domain.reaper import reap_periodically
from herdsman.server.domain.retention import prune_periodically
from herdsman.server.gui import csrf, error_page, install, serves
from herdsman.server.queries.owners import OwnershipCache

__all__ = ["create_app", "database_of"]

logger = structlog.get_logger(__name__)


# A reaper pass under way at shutdown is given this long to finish before it is abandoned.
REAPER_STOP_SECONDS = 10.0


def create_app(
    database_url: str,
    *,
    key: bytes,
    upgrade_schema: bool = True,
    reaper: ReaperSettings | None = None,
    auth: AuthSettings | None = None,
    limits: InputLimits | None = None,
    gui: GuiSettings | None = None,
    retention: RetentionSettings | None = None,
    archive_dir: Path | None = None,
    server: ServerSettings | None = None,
) -> FastAPI:
    """An app serving ``database_url``; with ``upgrade_schema`` the schema is migrated first.

    ``key`` signs and verifies the server's tokens (see :mod:`herdsman.server.auth.keys`).
    ``reaper`` says whether and how often the app runs the reaper while it serves (from its
    lifespan's start to its end); None takes the ``reaper`` settings. Pass
    ``ReaperSettings(enabled=False)`` for an app that must not end runs on its own. ``auth``
    (None: the settings') says who may read and which sign-ins are accepted. ``limits``: the
    input it accepts; None takes the ``limits`` settings. ``gui``: what the GUI may read beyond
    the database (its log viewer's directories); None takes the ``gui`` settings. ``retention``
    (None: the settings') says whether the app archives and removes finished workflows by
    itself, into ``archive_dir`` (None: the settings'). ``server``: its pool, feed re-read
    interval and per-user limits; None takes the ``server`` settings.
    """
    if (
        reaper is None
        or auth is None
        or limits is None
        or gui is None
        or retention is None
        or server is None
    ):
        settings = Settings()
        reaper = reaper if reaper is not None else settings.reaper
        auth = auth if auth is not None else settings.auth
        limits = limits if limits is not None else settings.limits
        gui = gui if gui is not None else settings.gui
        server = server if server is not None else settings.server
        if retention is None:
            retention = settings.retention
            archive_dir = archive_dir or settings.resolved_archive_dir()
    database = make_database(
        database_url, pool_size=server.pool_size, pool_overflow=server.pool_overflow
    )
    if upgrade_schema:
        upgrade(database)
    notifier = ChangeNotifier(recheck_seconds=server.feed_recheck_seconds)
    revocations = Revocations(database)
    timings = None
    if server.timing_dir is not None:
        timings = RequestTimings(server.timing_dir, (database.write_engine, database.read_engine))
    app = FastAPI(
        title="herdsman",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        lifespan=_lifespan(
            database, notifier, reaper, revocations, retention, archive_dir, timings
        ),
    )
    app.state.database = database
    app.state.notifier = notifier
    app.state.limits = limits
    app.state.server_settings = server
    app.state.rate_limiter = RateLimiter(server.requests_per_second_per_user, server.request_burst)
    app.state.auth_settings = auth
    app.state.signer = TokenSigner(key)
    app.state.csrf_key = csrf.form_key(key)
    app.state.authenticator = Authenticator(app.state.signer, revocations, _oidc(auth))
    app.state.ownership = OwnershipCache(database)
    app.state.owners_only_read = auth.readers == "owners"
    app.state.log_roots = tuple(root.resolve() for root in gui.log_roots)
    app.state.pending_reasons = PendingReasons()
    guarded = [Depends(authorize)]
    app.include_router(client.public_router, prefix=API_PREFIX, dependencies=guarded)
    for routes in (auth_routes, client, swarm, distributor, worker, queries, control):
        app.include_router(routes.router, prefix=API_PREFIX, dependencies=guarded)
    install(app)  # the web GUI's pages at /, beside the API
    app.add_middleware(AuditTrail, database=database)
    _add_error_handlers(app)
    # The last added runs first: an unexpected error anywhere, the size limit included, is
    # answered in the error shape.
    app.add_middleware(LimitRequestBody, max_bytes=limits.max_request_bytes)
    app.add_middleware(UnexpectedErrors)
    if timings is not None:
        app.add_middleware(RequestTimer, timings=timings)
    return app


def _oidc(auth: AuthSettings) -> OidcVerifier | None:
    if not auth.oidc_issuer:
        return None
    return OidcVerifier(auth.oidc_issuer, auth.oidc_audience, auth.oidc_user_claim)


def _lifespan(
    database: Database,
    notifier: ChangeNotifier,
    reaper: ReaperSettings,
    revocations: Revocations,
    retention: RetentionSettings,
    archive_dir: Path | None,
    timings: RequestTimings | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Runs the reaper, the revocation list's refresher, (when enabled) retention and
    (PostgreSQL) the change listener beside the routes while the app serves."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await asyncio.to_thread(revocations.refresh)
        refresher = asyncio.create_task(
            revocations.refresh_periodically(stop), name="herdsman-revocations"
        )
        pruner = (
            asyncio.create_task(
                prune_periodically(
                    database,
                    interval=retention.interval,
                    stop=stop,
                    older_than_days=retention.older_than_days,
                    archive_dir=archive_dir,
                    chunk_size=retention.chunk_size,
                    feeds_older_than_days=retention.feed_days,
                ),
                name="herdsman-retention",
            )
            if retention.enabled
            else None
        )
        background = [refresher]
        if timings is not None:
            background.append(
                asyncio.create_task(timings.sample_periodically(stop), name="herdsman-timings")
            )
        if listens(database.url):
            background.append(
                asyncio.create_task(
                    listen_for_changes(database.url, notifier, stop), name="herdsman-listener"
                )
            )
        # What startup made lives as long as the server: out of the collector's full passes,
        # which would otherwise walk it all again every few requests.
        gc.freeze()
        try:
            if reaper.enabled:
                async with _reaping(database, notifier, reaper, stop):
                    yield
            else:
                logger.info("reaper_disabled")
                yield
        finally:
            stop.set()
            await asyncio.gather(*background)
            if pruner is not None:
                # A pass under way finishes its current chunk's transaction first.
                await _finish(pruner, "retention")
            if timings is not None:
                timings.write()

    return lifespan


@contextlib.asynccontextmanager
async def _reaping(
    database: Database, notifier: ChangeNotifier, reaper: ReaperSettings, stop: asyncio.Event
) -> AsyncIterator[None]:
    task = asyncio.create_task(
        reap_periodically(
            database,
            interval=reaper.interval,
            stop=stop,
            notifier=notifier,
            unattended_after=reaper.unattended_after,
        ),
        name="herdsman-reaper",
    )
    try:
        yield
    finally:
        stop.set()
        await _finish(task, "reaper")


async def _finish(task: asyncio.Task[None], name: str) -> None:
    """Wait for a background loop told to stop; a pass under way holds database
    connections, which the server closes next."""
    done, _ = await asyncio.wait({task}, timeout=REAPER_STOP_SECONDS)
    if not done:
        logger.warning("background_stop_timed_out", task=name, seconds=REAPER_STOP_SECONDS)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HerdsmanError)
    async def _herdsman_error(request: Request, exc: HerdsmanError) -> JSONResponse | HTMLResponse:
        note_error(request, exc)
        if serves(request):
            title = _ERROR_TITLES.get(exc.http_status, "Error")
            return error_page(request, exc.http_status, title, exc.message)
        body = error_body(type(exc).__name__, exc.message, exc.details)
        return JSONResponse(body, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse | HTMLResponse:
        problems = []
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                problems.append(f"body: not valid JSON ({error['msg']})")
                continue
            location = ".".join(str(part) for part in error["loc"] if part != "body")
            problems.append(f"{location or 'body'}: {error['msg']}")
        message = "invalid request: " + "; ".join(problems[:5])
        if len(problems) > 5:
            message += f"; and {len(problems) - 5} more"
        fields = [p.split(":", 1)[0] for p in problems]
        if serves(request):
            return error_page(request, 422, "Not a valid request", message)
        return JSONResponse(
            error_body("InvalidInputError", message, {"fields": fields}), status_code=422
        )

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        # Get-or-create routes ignore duplicates, so this is mostly a reference to a row that
        # does not exist (a foreign key): the caller's input is wrong. A unique violation means
        # a concurrent writer won a race the route did not expect: a conflict, worth a retry.
        logger.info("integrity_error", error=str(exc.orig))
        if _is_unique_violation(exc):
            message = f"the request conflicts with data written at the same time: {exc.orig}"
            return JSONResponse(error_body("ConflictError", message, {}), status_code=409)
        message = f"the request refers to something that does not exist: {exc.orig}"
        return JSONResponse(error_body("InvalidInputError", message, {}), status_code=422)

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: DataError) -> JSONResponse:
        # A value the column cannot hold (too long, out of range) that the schemas let through:
        # the input is wrong, whichever engine noticed it.
        logger.info("data_error", error=str(exc.orig))
        first_line = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        message = f"a value of the request does not fit the database: {first_line}"
        return JSONResponse(error_body(InvalidInputError.__name__, message, {}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(
        request: Request, exc: StarletteHTTPException
    ) -> JSONResponse | HTMLResponse:
        # Starlette's own answers: no such route, a method the route does not take.
        if serves(request) and exc.status_code == 404:
            return error_page(request, 404, "Not found", f"there is no page {request.url.path}")
        if exc.status_code == 404:
            name = NotFoundError.__name__
            message = (
                f"{request.method} {request.url.path} is not a route of this server; "
                f"see {API_PREFIX}/docs"
            )
        else:
            name = InvalidInputError.__name__ if exc.status_code < 500 else "ServerError"
            message = f"{request.method} {request.url.path}: {exc.detail}"
        # A body that is not JSON (FastAPI's 400) is malformed input like any other: the one
        # status every route declares for it.
        status_code = 422 if exc.status_code == 400 else exc.status_code
        return JSONResponse(
            error_body(name, message, {}), status_code=status_code, headers=exc.headers
        )


_ERROR_TITLES = {
    401: "Sign in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Not a valid request",
}


# SQLSTATE 23505 (PostgreSQL), MySQL error 1062, SQLite's message: a duplicate key.
def _is_unique_violation(exc: IntegrityError) -> bool:
    original = exc.orig
    if getattr(original, "sqlstate", None) == "23505":
        return True
    args = tuple(getattr(original, "args", ()))
    return (len(args) > 0 and args[0] == 1062) or "UNIQUE constraint failed" in str(original)
