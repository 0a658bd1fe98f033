"""A workflow's archive, written from the database: every row that belongs to the workflow or
that its rows refer to (see :mod:`herdsman.core.archive` for the file format).

Retention (:mod:`herdsman.server.domain.retention`) writes one before it removes a workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import structlog
from sqlalchemy import Select, Table, select, union
from sqlalchemy.orm import Session

from herdsman.core.archive import ArchiveWriter
from herdsman.core.errors import NotFoundError
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.queries.workflows import workflow_summaries

__all__ = ["write_archive"]

logger = structlog.get_logger(__name__)

# Rows are read and written this many at a time, so memory stays flat however big the workflow.
_READ_ROWS = 5_000

_W = cast(Table, models.Workflow.__table__)
_WA = cast(Table, models.WorkflowAttribute.__table__)
_WR = cast(Table, models.WorkflowRun.__table__)
_AR = cast(Table, models.Array.__table__)
_T = cast(Table, models.Task.__table__)
_TA = cast(Table, models.TaskArg.__table__)
_TATTR = cast(Table, models.TaskAttribute.__table__)
_TI = cast(Table, models.TaskInstance.__table__)
_TIE = cast(Table, models.TaskInstanceErrorLog.__table__)
_SC = cast(Table, models.StatusChange.__table__)
_AU = cast(Table, models.Audit.__table__)
_TSC = cast(Table, models.TaskStatusCount.__table__)
_TSH = cast(Table, models.TaskStatusHistory.__table__)
_EGC = cast(Table, models.ErrorGroupCount.__table__)
_ETC = cast(Table, models.ErrorTaskCount.__table__)
_UT = cast(Table, models.UsageTotal.__table__)
_DAG = cast(Table, models.Dag.__table__)
_E = cast(Table, models.Edge.__table__)
_N = cast(Table, models.Node.__table__)
_NA = cast(Table, models.NodeArg.__table__)
_TR = cast(Table, models.TaskResources.__table__)
_TT = cast(Table, models.TaskTemplate.__table__)
_TTV = cast(Table, models.TaskTemplateVersion.__table__)
_TTA = cast(Table, models.TaskTemplateArg.__table__)
_ARG = cast(Table, models.Arg.__table__)
_TOOL = cast(Table, models.Tool.__table__)
_TV = cast(Table, models.ToolVersion.__table__)


def _archive_queries(workflow_id: int) -> list[tuple[str, Select[Any]]]:
    """Every row that belongs to the workflow or that its rows refer to, table by table."""
    tasks = select(_T.c.id).where(_T.c.workflow_id == workflow_id)
    runs = select(_WR.c.id).where(_WR.c.workflow_id == workflow_id)
    instances = select(_TI.c.id).where(_TI.c.workflow_run_id.in_(runs))
    dag = select(_W.c.dag_id).where(_W.c.id == workflow_id).scalar_subquery()
    tool_version = select(_W.c.tool_version_id).where(_W.c.id == workflow_id).scalar_subquery()
    versions = select(_AR.c.task_template_version_id).where(_AR.c.workflow_id == workflow_id)
    resources = union(
        select(_T.c.original_resources_id).where(_T.c.workflow_id == workflow_id),
        select(_T.c.task_resources_id).where(_T.c.workflow_id == workflow_id),
        select(_TI.c.task_resources_id).where(_TI.c.workflow_run_id.in_(runs)),
    )
    return [
        ("tool_version", select(_TV).where(_TV.c.id == tool_version)),
        (
            "tool",
            select(_TOOL).where(
                _TOOL.c.id.in_(select(_TV.c.tool_id).where(_TV.c.id == tool_version))
            ),
        ),
        ("workflow", select(_W).where(_W.c.id == workflow_id)),
        ("workflow_attribute", select(_WA).where(_WA.c.workflow_id == workflow_id)),
        ("task_template_version", select(_TTV).where(_TTV.c.id.in_(versions))),
        (
            "task_template",
            select(_TT).where(
                _TT.c.id.in_(select(_TTV.c.task_template_id).where(_TTV.c.id.in_(versions)))
            ),
        ),
        ("task_template_arg", select(_TTA).where(_TTA.c.task_template_version_id.in_(versions))),
        (
            "arg",
            select(_ARG).where(
                _ARG.c.id.in_(
                    select(_TTA.c.arg_id).where(_TTA.c.task_template_version_id.in_(versions))
                )
            ),
        ),
        ("array", select(_AR).where(_AR.c.workflow_id == workflow_id)),
        ("dag", select(_DAG).where(_DAG.c.id == dag)),
        ("edge", select(_E).where(_E.c.dag_id == dag)),
        ("task_resources", select(_TR).where(_TR.c.id.in_(resources))),
        (
            "node",
            select(_N).where(
                _N.c.id.in_(select(_T.c.node_id).where(_T.c.workflow_id == workflow_id))
            ),
        ),
        (
            "node_arg",
            select(_NA).where(
                _NA.c.node_id.in_(select(_T.c.node_id).where(_T.c.workflow_id == workflow_id))
            ),
        ),
        ("workflow_run", select(_WR).where(_WR.c.workflow_id == workflow_id)),
        ("task", select(_T).where(_T.c.workflow_id == workflow_id)),
        ("task_arg", select(_TA).where(_TA.c.task_id.in_(tasks))),
        ("task_attribute", select(_TATTR).where(_TATTR.c.task_id.in_(tasks))),
        ("task_instance", select(_TI).where(_TI.c.workflow_run_id.in_(runs))),
        ("task_instance_error_log", select(_TIE).where(_TIE.c.task_instance_id.in_(instances))),
        ("status_change", select(_SC).where(_SC.c.workflow_id == workflow_id)),
        ("audit", select(_AU).where(_AU.c.workflow_id == workflow_id)),
        ("task_status_count", select(_TSC).where(_TSC.c.workflow_id == workflow_id)),
        ("task_status_history", select(_TSH).where(_TSH.c.workflow_id == workflow_id)),
        ("error_group_count", select(_EGC).where(_EGC.c.workflow_id == workflow_id)),
        ("error_task_count", select(_ETC).where(_ETC.c.workflow_id == workflow_id)),
        ("usage_total", select(_UT).where(_UT.c.workflow_id == workflow_id)),
    ]


def write_archive(database: Database, workflow_id: int, path: Path) -> None:
    """Write the workflow's archive from one read transaction (one consistent view)."""

    def work(session: Session) -> None:
        found = workflow_summaries(session, [workflow_id], None, 1).workflows
        if not found:
            raise NotFoundError(f"workflow {workflow_id} is gone")
        with ArchiveWriter(path, workflow_id, found[0]) as writer:
            for table, query in _archive_queries(workflow_id):
                result = session.execute(query, execution_options={"yield_per": _READ_ROWS})
                for row in result.mappings():
                    writer.write(table, dict(row))

    database.read(work)
    logger.info("workflow_archived", workflow_id=workflow_id, archive=str(path))
