"""Changing concurrency limits while a workflow runs, and keeping them across a re-bind."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import create_engine, select

import herdsman
from herdsman import Tool, WorkflowValidationError
from herdsman.client.control import set_max_concurrently_running
from herdsman.client.workflow import Workflow
from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.limits import UNLIMITED
from herdsman.core.requester import Requester
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas.swarm import ConcurrencyOut
from herdsman.server.database import models

pytestmark = pytest.mark.integration


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest) -> Tool:
    tool = Tool(f"control-{request.node.name}-{time.time_ns()}", requester=requester)
    tool.set_default_cluster_name("dummy")
    return tool


def two_template_workflow(
    tool: Tool,
    *,
    limit: int = UNLIMITED,
    template_limits: dict[str, int] | None = None,
) -> Workflow:
    """Tasks of templates "prepare" and "fit"; the same workflow whenever called with ``tool``."""
    prepare = tool.get_task_template("prepare", "prepare {i}", node_args=["i"])
    fit = tool.get_task_template("fit", "fit {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=tool.name, max_concurrently_running=limit)
    for name, template_limit in (template_limits or {}).items():
        workflow.set_task_template_max_concurrency_limit(name, template_limit)
    workflow.add_tasks(prepare.create_tasks(i=range(3)))
    workflow.add_tasks(fit.create_tasks(i=range(2)))
    return workflow


def stored_limits(database_url: str, workflow_id: int) -> tuple[int, dict[str, int]]:
    """The workflow's limit and each template's array limit, read from the database."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            limit = connection.execute(
                select(models.Workflow.max_concurrently_running).where(
                    models.Workflow.id == workflow_id
                )
            ).scalar_one()
            arrays = connection.execute(
                select(models.Array.name, models.Array.max_concurrently_running).where(
                    models.Array.workflow_id == workflow_id
                )
            ).all()
    finally:
        engine.dispose()
    return limit, {name: array_limit for name, array_limit in arrays}


def array_ids(database_url: str, workflow_id: int) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(models.Array.name, models.Array.id).where(
                    models.Array.workflow_id == workflow_id
                )
            ).all()
    finally:
        engine.dispose()
    return {name: array_id for name, array_id in rows}


def test_the_running_swarm_learns_a_new_workflow_limit_from_its_heartbeat(
    tool: Tool, requester: Requester
) -> None:
    workflow = two_template_workflow(tool, limit=8)
    workflow_id = workflow.bind()
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )

    limits = set_max_concurrently_running(workflow_id, 3, requester=requester)

    assert limits.max_concurrently_running == 3
    beat = requester.post(
        f"/workflow_runs/{run.workflow_run_id}/heartbeat",
        sschemas.RunHeartbeatIn(next_report_seconds=3600),
        sschemas.RunHeartbeatOut,
    )
    assert beat.concurrency == limits


def test_a_template_limit_applies_to_that_template_only(tool: Tool, server: Any) -> None:
    workflow = two_template_workflow(tool, limit=8)
    workflow_id = workflow.bind()
    ids = array_ids(server.database_url, workflow_id)

    limits = workflow.set_max_concurrently_running(2, task_template_name="fit")

    assert limits == ConcurrencyOut(
        max_concurrently_running=8, array_limits={ids["prepare"]: UNLIMITED, ids["fit"]: 2}
    )
    assert stored_limits(server.database_url, workflow_id) == (8, {"prepare": UNLIMITED, "fit": 2})


def test_zero_pauses_launching(tool: Tool, requester: Requester) -> None:
    workflow_id = two_template_workflow(tool).bind()

    limits = set_max_concurrently_running(workflow_id, 0, requester=requester)

    assert limits.max_concurrently_running == 0


def test_the_public_function_is_exported(tool: Tool, requester: Requester) -> None:
    workflow_id = two_template_workflow(tool).bind()

    limits = herdsman.set_max_concurrently_running(workflow_id, 5, requester=requester)

    assert limits.max_concurrently_running == 5


def test_an_unknown_template_names_the_workflows_templates(
    tool: Tool, requester: Requester
) -> None:
    workflow_id = two_template_workflow(tool).bind()

    with pytest.raises(NotFoundError, match=r"no task template 'fitt'.*: fit, prepare") as caught:
        set_max_concurrently_running(workflow_id, 1, task_template_name="fitt", requester=requester)
    assert caught.value.details["http_status"] == 404


def test_a_template_name_with_a_slash_reaches_the_server(tool: Tool, requester: Requester) -> None:
    workflow_id = two_template_workflow(tool).bind()

    with pytest.raises(NotFoundError, match="no task template 'a/b c'"):
        set_max_concurrently_running(
            workflow_id, 1, task_template_name="a/b c", requester=requester
        )


def test_an_unknown_workflow_is_not_found(requester: Requester) -> None:
    with pytest.raises(NotFoundError, match="workflow 987654 does not exist"):
        set_max_concurrently_running(987_654, 1, requester=requester)
    with pytest.raises(NotFoundError, match="workflow 987654 does not exist"):
        set_max_concurrently_running(987_654, 1, task_template_name="fit", requester=requester)


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_a_limit_must_be_a_whole_number(requester: Requester, limit: Any) -> None:
    with pytest.raises(InvalidInputError, match="must be a whole number >= 0"):
        set_max_concurrently_running(1, limit, requester=requester)


def test_the_server_refuses_a_negative_limit(tool: Tool, requester: Requester) -> None:
    workflow_id = two_template_workflow(tool).bind()

    with pytest.raises(InvalidInputError, match="max_concurrently_running"):
        requester.put(
            f"/workflows/{workflow_id}/max_concurrently_running",
            {"max_concurrently_running": -1},
            ConcurrencyOut,
        )


def test_an_unbound_workflow_cannot_be_changed(tool: Tool) -> None:
    workflow = two_template_workflow(tool)

    with pytest.raises(WorkflowValidationError, match="not bound"):
        workflow.set_max_concurrently_running(3)


def test_a_limit_changed_at_run_time_survives_a_rebind_of_the_same_value(
    tool: Tool, server: Any
) -> None:
    workflow_id = two_template_workflow(tool, limit=10, template_limits={"fit": 4}).bind()
    set_max_concurrently_running(workflow_id, 3, requester=tool.requester)
    set_max_concurrently_running(workflow_id, 1, task_template_name="fit", requester=tool.requester)

    # The same script again (a resume): it binds the values it bound before.
    again = two_template_workflow(tool, limit=10, template_limits={"fit": 4}).bind()

    assert again == workflow_id
    assert stored_limits(server.database_url, workflow_id) == (3, {"prepare": UNLIMITED, "fit": 1})


def test_a_new_value_in_the_script_replaces_the_run_time_limit(tool: Tool, server: Any) -> None:
    workflow_id = two_template_workflow(tool, limit=10, template_limits={"fit": 4}).bind()
    set_max_concurrently_running(workflow_id, 3, requester=tool.requester)
    set_max_concurrently_running(workflow_id, 1, task_template_name="fit", requester=tool.requester)

    # The user edited the script: new limits for the workflow and for "fit".
    two_template_workflow(tool, limit=7, template_limits={"fit": 5}).bind()

    # "prepare" has no limit of its own: only the workflow's binds it.
    assert stored_limits(server.database_url, workflow_id) == (7, {"prepare": UNLIMITED, "fit": 5})

    # Those are now the values last bound: a later run-time change survives them again.
    set_max_concurrently_running(workflow_id, 2, requester=tool.requester)
    two_template_workflow(tool, limit=7, template_limits={"fit": 5}).bind()

    assert stored_limits(server.database_url, workflow_id) == (2, {"prepare": UNLIMITED, "fit": 5})
