"""Steering a workflow from the GUI: stop it, change its limits, change task statuses by
filter.

Each form does what a JSON route of :mod:`herdsman.server.api.routes.control` does, through
the same owner actions, and is guarded as that route is: its POLICY rule (the owner or an
admin) applied with :func:`~herdsman.server.api.access.check_route`, and one audit row per
request, refusals included. On top, a form must come from this server's pages (its Origin)
and carry the session's CSRF token (:mod:`herdsman.server.gui.csrf`).

A status change names its tasks by the tasks page's filters, never by ids: the preview counts
on the server what the change will do, the confirmation posts the filter and that count back,
and the server changes the tasks a chunk at a time, refusing if the count moved since.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core import lifecycle
from herdsman.core.errors import InvalidInputError, PermissionDeniedError
from herdsman.core.schemas.control import ConcurrencyLimitIn
from herdsman.core.schemas.types import Id
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus
from herdsman.server.api.access import check_route, remember_for_audit, set_audit_message
from herdsman.server.auth.identity import Caller
from herdsman.server.auth.policy import Rule, Target, check
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.database.feed import ChangeRecorder, FeedWriter
from herdsman.server.domain import owner_actions
from herdsman.server.gui import csrf
from herdsman.server.gui.rendering import render, templates
from herdsman.server.gui.session import COOKIE, PageCaller, same_origin
from herdsman.server.queries import workflows
from herdsman.server.queries.lookups import with_template_names
from herdsman.server.queries.tasks import TaskFilter

__all__ = ["STEER_RULES", "StatusForm", "describe_filter", "parse_status_form", "router"]

logger = structlog.get_logger(__name__)

_UPDATES = ("POST", "/workflows/{workflow_id}/task_updates")

# (method, GUI path) -> the JSON routes (POLICY keys) whose rules the form applies.
STEER_RULES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("POST", "/workflows/{workflow_id}/stop"): (("POST", "/workflows/{workflow_id}/stop"),),
    ("POST", "/workflows/{workflow_id}/limits"): (
        ("PUT", "/workflows/{workflow_id}/max_concurrently_running"),
        (
            "PUT",
            "/workflows/{workflow_id}/task_templates/{template_name:path}/max_concurrently_running",
        ),
    ),
    ("GET", "/workflows/{workflow_id}/status-change"): (_UPDATES,),
    ("POST", "/workflows/{workflow_id}/status-change"): (_UPDATES,),
}

MAX_FORM_BYTES = 256 * 1024
_FORM_KEY = "herdsman_form"


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The fields of the urlencoded form posted, each with all its values (read once)."""
    cached = request.scope.get("state", {}).get(_FORM_KEY)
    if isinstance(cached, dict):
        return cached
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError(f"the form is larger than {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    request.scope.setdefault("state", {})[_FORM_KEY] = fields
    return fields


def _one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[-1].strip() if values else ""


async def _steer_access(request: Request, caller: PageCaller) -> None:
    """Refuse the form (403, 404) unless its JSON routes' rules allow the caller; for a POST,
    audit it and refuse it without this server's origin and the session's CSRF token."""
    method: str = request.method
    path: str = request.scope["route"].path
    keys = STEER_RULES.get((method, path))
    if keys is None:
        raise PermissionDeniedError(f"{method} {path} has no access rule")
    raw_id = str(request.path_params.get("workflow_id", ""))
    workflow_id = int(raw_id) if raw_id.isdigit() else None
    try:
        for rule_key in keys:
            target = await check_route(request, caller, rule_key)
            workflow_id = target.workflow_id
    except PermissionDeniedError as error:
        if method == "POST":
            remember_for_audit(request, caller, workflow_id)
        logger.warning(
            "gui_steering_refused", user=caller.user, path=request.url.path, reason=error.message
        )
        raise
    if method != "POST":
        return
    remember_for_audit(request, caller, workflow_id)
    same_origin(request)
    fields = await form_fields(request)
    csrf_key: bytes = request.app.state.csrf_key
    if not csrf.matches(csrf_key, request.cookies.get(COOKIE, ""), _one(fields, csrf.FIELD)):
        logger.warning("gui_csrf_refused", user=caller.user, path=request.url.path)
        raise PermissionDeniedError(
            "this form's CSRF token is missing or belongs to another sign-in; reload the page "
            "and send the form again"
        )


router = APIRouter(include_in_schema=False, dependencies=[Depends(_steer_access)])


def _writer(request: Request) -> FeedWriter:
    return FeedWriter(request.app.state.database, request.app.state.notifier)


def _back(workflow_id: int) -> RedirectResponse:
    """After a change, the workflow's page at its history, where the change is listed."""
    return RedirectResponse(f"/workflows/{workflow_id}#history-table", status_code=303)


@router.post("/workflows/{workflow_id}/stop")
async def stop_form(request: Request, caller: PageCaller, workflow_id: Id) -> Response:
    """Stop the workflow's live run, as ``POST /workflows/{id}/stop``."""
    write = _writer(request)
    out = await run_in_threadpool(
        write,
        lambda s, changes: owner_actions.stop_workflow(s, workflow_id, caller.user, changes),
    )
    set_audit_message(request, f"stopped from the GUI; the run is {out.status}")
    return _back(workflow_id)


def _limit(name: str, value: str) -> int:
    try:
        return ConcurrencyLimitIn(max_concurrently_running=int(value)).max_concurrently_running
    except (ValueError, ValidationError):
        raise InvalidInputError(
            f"{name} {value!r} is not a limit (a whole number from 0)", details={"fields": [name]}
        ) from None


@router.post("/workflows/{workflow_id}/limits")
async def limits_form(request: Request, caller: PageCaller, workflow_id: Id) -> Response:
    """Change the workflow's limit and its templates' limits, as the two PUT routes do; only
    the values that differ from those in force are set."""
    fields = await form_fields(request)
    wanted_workflow = _one(fields, "workflow_limit")
    names = [name.strip() for name in fields.get("template", [])]
    values = [value.strip() for value in fields.get("template_limit", [])]
    if len(names) != len(values):
        raise InvalidInputError("each template of the form needs its limit")
    workflow_limit = _limit("workflow_limit", wanted_workflow) if wanted_workflow else None
    template_limits = {
        name: _limit(f"limit of {name}", value)
        for name, value in zip(names, values, strict=True)
        if value
    }

    def change(session: Session, changes: ChangeRecorder) -> list[str]:
        done: list[str] = []
        current = _current_limits(session, workflow_id)
        if workflow_limit is not None and workflow_limit != current.get(None):
            owner_actions.set_workflow_limit(
                session, workflow_id, workflow_limit, caller.user, changes
            )
            done.append(f"workflow limit {current.get(None)} -> {workflow_limit}")
        for name, limit in template_limits.items():
            if limit != current.get(name):
                owner_actions.set_template_limit(
                    session, workflow_id, name, limit, caller.user, changes
                )
                done.append(f"{name} limit {current.get(name)} -> {limit}")
        return done

    done = await run_in_threadpool(_writer(request), change)
    set_audit_message(request, "; ".join(done) if done else "limits unchanged")
    return _back(workflow_id)


def _current_limits(session: Session, workflow_id: int) -> dict[str | None, int]:
    """The workflow's limit (key None) and each template's (its first array's)."""
    current: dict[str | None, int] = {}
    current[None] = (
        session.scalar(
            select(models.Workflow.max_concurrently_running).where(
                models.Workflow.id == workflow_id
            )
        )
        or 0
    )
    rows = session.execute(
        with_template_names(select(models.TaskTemplate.name, models.Array.max_concurrently_running))
        .where(models.Array.workflow_id == workflow_id)
        .order_by(models.Array.id)
    ).tuples()
    for name, limit in rows:
        current.setdefault(name, limit)
    return current


@dataclass(frozen=True)
class StatusForm:
    """A status change as its form names it: which tasks (the tasks page's filters), the
    status to set, whether a done change takes upstream tasks along."""

    filters: TaskFilter
    target: TaskStatus | None
    recursive: bool


def _whole(name: str, value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInputError(
            f"{name} {value!r} is not a whole number", details={"fields": [name]}
        )
    return int(value)


def parse_status_form(fields: dict[str, list[str]]) -> StatusForm:
    """A :class:`StatusForm` from form or query fields; InvalidInputError naming the field."""
    statuses = tuple(s.strip() for s in fields.get("status", []) if s.strip())
    unknown = [s for s in statuses if s not in {t.value for t in TaskStatus}]
    if unknown:
        raise InvalidInputError(
            f"status {unknown[0]!r} is not a task status", details={"fields": ["status"]}
        )
    target_text = _one(fields, "target")
    if target_text and target_text not in (TaskStatus.DONE.value, TaskStatus.REGISTERING.value):
        raise InvalidInputError(
            f"target {target_text!r}: tasks are set to D (done) or G (registering, to run again)",
            details={"fields": ["target"]},
        )
    filters = TaskFilter(
        statuses=statuses,
        template=_one(fields, "template") or None,
        name=_one(fields, "name") or None,
        min_attempts=_whole("attempts", _one(fields, "attempts")),
        signature=_one(fields, "signature") or None,
    )
    return StatusForm(
        filters=filters,
        target=TaskStatus(target_text) if target_text else None,
        recursive=_one(fields, "recursive") in ("1", "on", "true"),
    )


def describe_filter(filters: TaskFilter) -> str:
    """The filter in words, for the audit trail and the preview."""
    parts = []
    if filters.statuses:
        parts.append("status " + "/".join(filters.statuses))
    if filters.template:
        parts.append(f"template {filters.template}")
    if filters.name:
        parts.append(f"name containing {filters.name!r}")
    if filters.min_attempts is not None:
        parts.append(f"at least {filters.min_attempts} attempts")
    if filters.signature:
        parts.append(f"error {filters.signature}")
    return ", ".join(parts) if parts else "all tasks"


def _form_query(form: StatusForm) -> list[tuple[str, str]]:
    """The form's fields, to post back (hidden inputs) or link to."""
    f = form.filters
    pairs = [("status", s) for s in f.statuses]
    pairs += [
        (name, value)
        for name, value in (
            ("template", f.template),
            ("name", f.name),
            ("attempts", None if f.min_attempts is None else str(f.min_attempts)),
            ("signature", f.signature),
            ("target", form.target.value if form.target else None),
            ("recursive", "1" if form.recursive else None),
        )
        if value
    ]
    return pairs


Text = Annotated[str | None, Query(max_length=255)]


@router.get("/workflows/{workflow_id}/status-change", response_class=HTMLResponse)
async def status_change_page(
    request: Request,
    caller: PageCaller,
    workflow_id: Id,
    status_: Annotated[list[str] | None, Query(alias="status", max_length=20)] = None,
    template: Text = None,
    name: Text = None,
    attempts: Text = None,
    signature: Text = None,
    target: Text = None,
    recursive: Text = None,
) -> HTMLResponse:
    """Choose tasks by filter and a status; with a status chosen, a preview of the change
    counted on the server and the button that applies it."""
    fields = {
        key: [value]
        for key, value in (
            ("template", template),
            ("name", name),
            ("attempts", attempts),
            ("signature", signature),
            ("target", target),
            ("recursive", recursive),
        )
        if value
    }
    fields["status"] = list(status_ or [])
    form = parse_status_form(fields)

    def read(session: Session) -> dict[str, Any]:
        found: dict[str, Any] = {
            "detail": workflows.workflow_detail(session, workflow_id),
            "templates": workflows.template_names(session, workflow_id),
            "plan": None,
        }
        if form.target is not None:
            found["plan"] = owner_actions.plan_tasks_by_filter(
                session, workflow_id, form.filters, form.target, recursive=form.recursive
            )
        return found

    database: Database = request.app.state.database
    found = await run_in_threadpool(database.read, read)
    return render(
        request,
        "status_change.html",
        caller,
        **found,
        workflow_id=workflow_id,
        form=form,
        described=describe_filter(form.filters),
        hidden=_form_query(form),
        tasks_url=f"/workflows/{workflow_id}/tasks?"
        + urlencode([(k, v) for k, v in _form_query(form) if k not in ("target", "recursive")]),
        task_statuses=list(TaskStatus),
    )


@router.post("/workflows/{workflow_id}/status-change")
async def status_change(request: Request, caller: PageCaller, workflow_id: Id) -> Response:
    """Apply a previewed status change: the filter and the preview's count come back, the
    tasks are found and changed on the server, a chunk at a time."""
    fields = await form_fields(request)
    form = parse_status_form(fields)
    if form.target is None:
        raise InvalidInputError("choose the status to set (D or G)", details={"fields": ["target"]})
    target = form.target
    expected = _whole("expected", _one(fields, "expected"))
    write = _writer(request)
    out = await run_in_threadpool(
        write,
        lambda s, changes: owner_actions.update_tasks_by_filter(
            s,
            workflow_id,
            form.filters,
            target,
            caller.user,
            changes,
            recursive=form.recursive,
            expected=expected,
        ),
    )
    set_audit_message(
        request,
        f"{out.changed} tasks set to {target.value} ({out.chosen} chosen by "
        f"{describe_filter(form.filters)}{', upstream too' if form.recursive else ''})",
    )
    return _back(workflow_id)


# What the pages' templates ask: whether the caller may steer, the form's token, a live run.
def may_steer(caller: Caller | None, workflow_id: int, owner: str) -> bool:
    """Whether ``caller`` passes the steering routes' rule for this workflow (the owner or an
    admin): the same check, so no control shows that the server would refuse."""
    if caller is None:
        return False
    try:
        check(Rule.OWN_WORKFLOW, caller, Target(workflow_id, owner), owners_only_read=False)
    except PermissionDeniedError:
        return False
    return True


@pass_context
def _csrf_token(context: Context) -> str:
    request: Request = context["request"]
    key: bytes = request.app.state.csrf_key
    return csrf.token_for(key, request.cookies.get(COOKIE, ""))


def _run_is_live(status: str) -> bool:
    return WorkflowRunStatus(status) in lifecycle.LIVE_WORKFLOW_RUN_STATUSES


templates.env.globals.update(
    may_steer=may_steer,
    csrf_token=_csrf_token,
    csrf_field=csrf.FIELD,
    run_is_live=_run_is_live,
)
