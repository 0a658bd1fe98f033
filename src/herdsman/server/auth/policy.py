"""Who may call which route: one table, and the rules that read it.

Pure: the caller and the facts about the target (its workflow's owner, its run) come in, a
decision goes out; :mod:`herdsman.server.api.access` looks the facts up. Every route of the API
has a row here, and a test checks that none is missing.

* Reading is for any signed-in user (or only owners, with ``auth.readers = owners``) and for a
  run's machinery within its own workflow.
* Everything that changes a workflow is for its owner — the user who bound it — or an admin.
  Starting a run does not make anyone an owner.
* The routes of the distributor and the worker take a run's token, for that run only (or an
  admin's).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from herdsman.core.errors import PermissionDeniedError
from herdsman.server.auth.identity import Caller

__all__ = ["POLICY", "Entry", "Rule", "Target", "check"]


class Rule(enum.Enum):
    PUBLIC = "anyone"
    SIGNED_IN = "any valid token"
    USER = "any user"
    READ_WORKFLOW = "readers of the workflow and its runs' machinery"
    OWN_WORKFLOW = "the workflow's owner or an admin"
    OWN_DAG = "the DAG's owner or an admin"
    RUN = "the run's machinery or an admin"


@dataclass(frozen=True)
class Entry:
    """A route's rule, and whether its calls go to the audit trail (state changes by people;
    the machinery's reports and the swarm's ticks are too many and are in the change feed)."""

    rule: Rule
    audited: bool = False


@dataclass(frozen=True)
class Target:
    """What a route acts on, as far as the policy needs: its workflow's owner, its run, and
    for a DAG its owner. None where the route has no such target."""

    workflow_id: int | None = None
    owner: str | None = None
    workflow_run_id: int | None = None


_READ = Entry(Rule.READ_WORKFLOW)
_OWN = Entry(Rule.OWN_WORKFLOW, audited=True)
_OWN_QUIET = Entry(Rule.OWN_WORKFLOW)
_RUN = Entry(Rule.RUN)
_BIND = Entry(Rule.USER, audited=True)
_BIND_QUIET = Entry(Rule.USER)

# (method, path as the router declares it) → who may call. Paths are without the /api/v1 prefix.
POLICY: dict[tuple[str, str], Entry] = {
    ("GET", "/health"): Entry(Rule.PUBLIC),
    ("POST", "/auth/munge"): Entry(Rule.PUBLIC, audited=True),
    ("GET", "/auth/whoami"): Entry(Rule.SIGNED_IN),
    ("GET", "/clusters/{name}"): Entry(Rule.SIGNED_IN),
    # binding
    ("PUT", "/tools"): _BIND_QUIET,
    ("POST", "/tools/{tool_id}/versions"): _BIND_QUIET,
    ("PUT", "/task_templates"): _BIND_QUIET,
    ("PUT", "/task_template_versions"): _BIND_QUIET,
    ("PUT", "/nodes"): _BIND_QUIET,
    ("PUT", "/dags"): _BIND_QUIET,
    ("PUT", "/dags/{dag_id}/edges"): Entry(Rule.OWN_DAG),
    ("POST", "/dags/{dag_id}/complete"): Entry(Rule.OWN_DAG),
    ("PUT", "/workflows"): _BIND,
    ("PUT", "/task_resources"): _BIND_QUIET,
    ("PUT", "/workflows/{workflow_id}/arrays"): _OWN_QUIET,
    ("PUT", "/workflows/{workflow_id}/tasks"): _OWN,
    ("POST", "/workflows/{workflow_id}/bound"): _OWN,
    # what a resume would do: reads, and checks the workflow's owner itself
    ("POST", "/workflow_plans"): _BIND_QUIET,
    # the swarm, on the owner's behalf
    ("POST", "/workflows/{workflow_id}/runs"): _OWN,
    ("POST", "/workflow_runs/{run_id}/link"): _OWN,
    ("POST", "/workflow_runs/{run_id}/force_release"): _OWN,
    ("POST", "/workflow_runs/{run_id}/token"): _OWN,
    ("GET", "/workflow_runs/{run_id}"): _READ,
    ("PUT", "/workflow_runs/{run_id}/status"): _OWN,
    ("POST", "/workflow_runs/{run_id}/heartbeat"): _OWN_QUIET,
    ("POST", "/workflow_runs/{run_id}/queue"): _OWN_QUIET,
    ("GET", "/workflows/{workflow_id}/changes"): _READ,
    ("GET", "/workflows/{workflow_id}/swarm_tasks"): _READ,
    ("GET", "/workflows/{workflow_id}/swarm_edges"): _READ,
    ("POST", "/workflows/{workflow_id}/adjusted_resources"): _OWN_QUIET,
    ("POST", "/task_resources/query"): Entry(Rule.USER),
    # the owner, from the CLI or the GUI
    ("PUT", "/workflows/{workflow_id}/max_concurrently_running"): _OWN,
    (
        "PUT",
        "/workflows/{workflow_id}/task_templates/{template_name:path}/max_concurrently_running",
    ): _OWN,
    ("POST", "/workflows/{workflow_id}/stop"): _OWN,
    ("POST", "/workflows/{workflow_id}/reset"): _OWN,
    ("POST", "/workflows/{workflow_id}/task_updates"): _OWN,
    ("PUT", "/workflows/{workflow_id}/attributes"): _OWN,
    ("PUT", "/tasks/{task_id}/attributes"): _OWN,
    # reads for the CLI and the GUI
    ("GET", "/workflows/{workflow_id}"): _READ,
    ("GET", "/workflows/{workflow_id}/clusters"): _READ,
    ("GET", "/workflows/{workflow_id}/killed_for_resources"): _READ,
    ("GET", "/workflows/{workflow_id}/tasks"): _READ,
    ("GET", "/workflows/{workflow_id}/edges"): _READ,
    ("GET", "/workflows/{workflow_id}/errors"): _READ,
    ("GET", "/workflows/{workflow_id}/error_groups"): _READ,
    ("GET", "/workflows/{workflow_id}/timeline"): _READ,
    ("GET", "/workflows/{workflow_id}/usage_totals"): _READ,
    ("GET", "/workflows/{workflow_id}/log_paths"): _READ,
    ("GET", "/workflows/{workflow_id}/error_messages"): _READ,
    ("GET", "/workflows/{workflow_id}/history"): _READ,
    ("GET", "/tasks/{task_id}"): _READ,
    ("GET", "/tasks/{task_id}/attempts"): _READ,
    ("GET", "/tasks/{task_id}/dependencies"): _READ,
    ("GET", "/workflow_summaries"): Entry(Rule.USER),
    ("GET", "/resource_usage"): Entry(Rule.USER),
    # the distributor and the worker
    ("POST", "/workflow_runs/{run_id}/claim"): _RUN,
    ("POST", "/workflow_runs/{run_id}/triage"): _RUN,
    ("POST", "/workflow_runs/{run_id}/pending_reasons"): _RUN,
    ("POST", "/task_instances/launched"): _RUN,
    ("POST", "/task_instances/submit_failed"): _RUN,
    ("POST", "/task_instances/finish_without_running"): _RUN,
    ("POST", "/task_instances/triaged"): _RUN,
    ("POST", "/task_instances/killed"): _RUN,
    ("POST", "/task_instances/reports"): _RUN,
    ("POST", "/task_instances/{instance_id}/running"): _RUN,
    ("POST", "/task_instances/{instance_id}/heartbeat"): _RUN,
    ("POST", "/task_instances/{instance_id}/done"): _RUN,
    ("POST", "/task_instances/{instance_id}/error"): _RUN,
}


def check(rule: Rule, caller: Caller, target: Target, *, owners_only_read: bool) -> None:
    """Raise PermissionDeniedError unless ``caller`` may act on ``target`` under ``rule``.

    A RUN route without a run in its path (instance ids in the body) passes here for a run's
    token; the route then checks that every instance belongs to that run.
    """
    if rule in (Rule.PUBLIC, Rule.SIGNED_IN):
        return
    if caller.is_admin:
        return
    if rule is Rule.RUN:
        _check_run(caller, target)
    elif caller.is_run:
        _check_run_reads(rule, caller, target)
    elif rule is Rule.READ_WORKFLOW:
        if owners_only_read and target.owner is not None and target.owner != caller.user:
            raise _not_owner(caller, target, "read")
    elif rule in (Rule.OWN_WORKFLOW, Rule.OWN_DAG) and target.owner != caller.user:
        raise _not_owner(caller, target, "change")


def _check_run(caller: Caller, target: Target) -> None:
    if not caller.is_run:
        raise PermissionDeniedError(
            "only the distributor and the jobs of a workflow run (with the run's token) or an "
            f"admin may report on task instances; {caller.user} signed in as a user"
        )
    if target.workflow_run_id is not None and target.workflow_run_id != caller.workflow_run_id:
        raise PermissionDeniedError(
            f"the token of workflow run {caller.workflow_run_id} may not act on workflow run "
            f"{target.workflow_run_id}",
            details={"workflow_run_id": target.workflow_run_id},
        )


def _check_run_reads(rule: Rule, caller: Caller, target: Target) -> None:
    if rule is Rule.READ_WORKFLOW and target.workflow_id == caller.workflow_id:
        return
    raise PermissionDeniedError(
        f"the token of workflow run {caller.workflow_run_id} may only report on that run and "
        "read its workflow"
    )


def _not_owner(caller: Caller, target: Target, verb: str) -> PermissionDeniedError:
    what = f"workflow {target.workflow_id}" if target.workflow_id is not None else "this"
    return PermissionDeniedError(
        f"only the owner of {what} ({target.owner or 'another user'}) or an admin may {verb} "
        f"it; you are {caller.user}",
        details={"workflow_id": target.workflow_id, "user": caller.user},
    )
