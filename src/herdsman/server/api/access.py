"""Authentication and authorization of every request, and the audit trail they leave.

``authorize`` is a dependency of every router: it reads the bearer token, looks up who owns
what the path names, and asks :mod:`herdsman.server.auth.policy`. The caller is kept on the
request for the routes that need it (binding records the owner, instance reports are checked
against the run's token). ``AuditTrail`` is ASGI middleware that writes one audit row per
audited request once its answer is known, refused ones included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herdsman.core.errors import (
    AuthenticationError,
    HerdsmanError,
    InvalidInputError,
    PermissionDeniedError,
)
from herdsman.core.schemas import API_PREFIX
from herdsman.core.schemas.types import INT64_MAX
from herdsman.server.api.guard import UNMETERED_TAGS
from herdsman.server.auth.identity import Authenticator, Caller
from herdsman.server.auth.policy import POLICY, Entry, Rule, Target, check
from herdsman.server.database.engine import Database
from herdsman.server.domain import audit
from herdsman.server.queries.owners import (
    PATH_PARAMETERS,
    Ownership,
    OwnershipCache,
    instance_runs,
)

__all__ = [
    "AuditTrail",
    "CallerDep",
    "authorize",
    "bearer_scheme",
    "check_route",
    "remember_for_audit",
    "require_run_instances",
    "route_key",
    "set_audit_message",
]

logger = structlog.get_logger(__name__)

# Declares the scheme in the OpenAPI document; the check itself is ``authorize``'s.
bearer_scheme = HTTPBearer(auto_error=False, description="a herdsman user or run token")

_AUDIT_KEY = "herdsman_audit"


@dataclass
class _AuditEntry:
    caller: Caller | None
    method: str
    path: str
    workflow_id: int | None
    message: str = ""


def route_key(request: Request) -> tuple[str, str]:
    """The policy table's key of the route that matched ``request``."""
    path: str = request.scope["route"].path
    return request.method, path.removeprefix(API_PREFIX)


async def authorize(request: Request, _bearer: object = Depends(bearer_scheme)) -> None:
    """Refuse the request (401, 403) unless the policy lets its caller make it, and (429) when
    its user is over the request rate (:mod:`herdsman.server.api.guard` says which count)."""
    method, path = route_key(request)
    entry = POLICY.get((method, path))
    if entry is None:  # a route without a policy row is a bug; refuse rather than allow
        raise PermissionDeniedError(f"{method} {path} has no access rule")
    if entry.rule is Rule.PUBLIC:
        _remember_for_audit(request, entry, None, None)
        return
    state = request.app.state
    authenticator: Authenticator = state.authenticator
    caller: Caller | None = None
    target = Target()
    try:
        caller = authenticator.caller(request.headers.get("authorization"))
        request.state.caller = caller
        target = await _target(state.ownership, request, entry.rule, caller)
        check(entry.rule, caller, target, owners_only_read=state.owners_only_read)
        if not caller.is_run and UNMETERED_TAGS.isdisjoint(request.scope["route"].tags):
            state.rate_limiter.take(caller.user)
    except (AuthenticationError, PermissionDeniedError) as error:
        logger.warning(
            "request_refused",
            user=caller.user if caller else None,
            method=method,
            path=request.url.path,
            reason=error.message,
        )
        _remember_for_audit(request, Entry(entry.rule, audited=True), caller, target.workflow_id)
        raise
    _remember_for_audit(request, entry, caller, target.workflow_id)


async def check_route(request: Request, caller: Caller, key: tuple[str, str]) -> Target:
    """Apply to ``caller`` exactly the checks of the JSON route ``key`` (its POLICY row), with
    the target named by ``request``'s path parameters; the target, or 403 / 404.

    For pages that show what a JSON route answers: they must refuse whom that route refuses.
    """
    entry = POLICY[key]
    state = request.app.state
    target = await _target(state.ownership, request, entry.rule, caller)
    check(entry.rule, caller, target, owners_only_read=state.owners_only_read)
    return target


async def _target(cache: OwnershipCache, request: Request, rule: Rule, caller: Caller) -> Target:
    """The facts about the path's target the policy needs; a 404 for ids that do not exist."""
    if rule in (Rule.PUBLIC, Rule.SIGNED_IN, Rule.USER):
        return Target()
    for name, value in request.path_params.items():
        if name not in PATH_PARAMETERS:
            continue
        row_id = int(value) if str(value).isdigit() else 0
        if not 1 <= row_id <= INT64_MAX:
            raise InvalidInputError(
                f"{name} {value!r} is not an id (a whole number from 1 to {INT64_MAX})",
                details={"fields": [name]},
            )
        found = cache.cached(name, row_id)
        if found is None:
            found = await run_in_threadpool(cache.lookup, name, row_id)
        return _as_target(found)
    return Target()


def _as_target(ownership: Ownership) -> Target:
    return Target(ownership.workflow_id, ownership.owner, ownership.workflow_run_id)


def _remember_for_audit(
    request: Request, entry: Entry, caller: Caller | None, workflow_id: int | None
) -> None:
    if entry.audited:
        request.scope.setdefault("state", {})[_AUDIT_KEY] = _AuditEntry(
            caller, request.method, request.url.path, workflow_id
        )


def remember_for_audit(request: Request, caller: Caller, workflow_id: int | None) -> None:
    """Audit this request as an audited JSON route's: one row once it is answered, refused or
    not (for GUI forms that act as such a route does)."""
    _remember_for_audit(request, Entry(Rule.OWN_WORKFLOW, audited=True), caller, workflow_id)


def set_audit_message(request: Request, message: str) -> None:
    """The message of this request's audit row (what a successful change did)."""
    entry = request.scope.get("state", {}).get(_AUDIT_KEY)
    if isinstance(entry, _AuditEntry):
        entry.message = message


def note_error(request: Request, error: HerdsmanError) -> None:
    """Keep an error's message for the audit row of this request, if it has one."""
    entry = request.scope.get("state", {}).get(_AUDIT_KEY)
    if isinstance(entry, _AuditEntry):
        entry.message = error.message


async def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


class AuditTrail:
    """ASGI middleware: after an audited request is answered, record who, what and the answer."""

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self._app = app
        self._database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_recording)
        finally:
            entry = scope.get("state", {}).get(_AUDIT_KEY)
            if isinstance(entry, _AuditEntry):
                await run_in_threadpool(self._record, entry, status)

    def _record(self, entry: _AuditEntry, status: int) -> None:
        caller = entry.caller
        try:
            self._database.write(
                lambda s: audit.record(
                    s,
                    user=caller.user if caller else "",
                    role=caller.role.value if caller else "",
                    token_kind=caller.kind.value if caller else "",
                    method=entry.method,
                    path=entry.path,
                    workflow_id=entry.workflow_id,
                    status_code=status,
                    message=entry.message,
                )
            )
        except Exception as error:  # the answer is sent; a lost audit row is logged loudly
            logger.error("audit_write_failed", path=entry.path, error=str(error))


def require_run_instances(session: Session, caller: Caller, instance_ids: list[int]) -> None:
    """Refuse a run's token that names task instances of another run (admins pass)."""
    if not caller.is_run:
        return
    others = instance_runs(session, instance_ids) - {caller.workflow_run_id}
    if others:
        raise PermissionDeniedError(
            f"the token of workflow run {caller.workflow_run_id} may not report on task "
            f"instances of workflow run(s) {sorted(others)}",
            details={"workflow_run_ids": sorted(others)},
        )
