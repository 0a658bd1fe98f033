"""``herdsman resources ...``: what tasks really used, and a resources file made from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import yaml
from rich.markup import escape

from herdsman.cli.common import (
    console,
    json_option,
    new_table,
    print_json,
    server_requester,
    workflow_option,
)
from herdsman.cli.formatting import duration, gib
from herdsman.client import queries
from herdsman.core.schemas.queries import StatisticsOut

__all__ = ["resources"]

_STRATEGIES = click.Choice(["avg", "max", "p95"], case_sensitive=False)


@click.group()
def resources() -> None:
    """Resource usage of done tasks, and resource files made from it."""


@resources.command("usage")
@click.option("-t", "--template", required=True, help="Task template name.")
@workflow_option(
    multiple=True,
    required=False,
    help="Only these workflows' tasks (repeatable) [default: every workflow].",
)
@json_option
def usage(template: str, workflow_ids: tuple[int, ...], as_json: bool) -> None:
    """Runtime and peak memory of the template's done attempts: min, mean, median, p95, max."""
    with server_requester() as requester:
        found = queries.resource_usage(requester, template, workflow_ids)
    if as_json:
        print_json(found)
        return
    if not found.templates:
        console.print(f"no done attempts of task template {template!r} yet", highlight=False)
        return
    table = new_table(
        "TEMPLATE", "CLUSTER", "RESOURCE", ">N", ">MIN", ">MEAN", ">MEDIAN", ">P95", ">MAX"
    )
    for entry in found.templates:
        for name, stats, shown in (
            ("runtime", entry.runtime, duration),
            ("memory", entry.memory, gib),
        ):
            table.add_row(
                escape(entry.task_template), escape(entry.cluster), name, *_cells(stats, shown)
            )
    console.print(table)


def _cells(stats: StatisticsOut | None, shown: Callable[[float], str]) -> list[str]:
    if stats is None:
        return ["0", "-", "-", "-", "-", "-"]
    values = (stats.min, stats.mean, stats.median, stats.p95, stats.max)
    return [str(stats.count), *(shown(value) for value in values)]


@resources.command("yaml")
@workflow_option(required=False, help="Every task template of this workflow.")
@click.option("-t", "--template", default=None, help="This task template (in every workflow).")
@click.option(
    "--mem-strategy",
    type=_STRATEGIES,
    default="max",
    show_default=True,
    help="Which statistic of peak memory to request.",
)
@click.option(
    "--runtime-strategy",
    type=_STRATEGIES,
    default="max",
    show_default=True,
    help="Which statistic of runtime to request.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the file here instead of printing it.",
)
@json_option
def yaml_(
    workflow_id: int | None,
    template: str | None,
    mem_strategy: str,
    runtime_strategy: str,
    output: Path | None,
    as_json: bool,
) -> None:
    """A resources file from what done tasks used, ready for ``yaml_file=``.

    Memory is peak resident memory rounded up to whole MiB, runtime wall time rounded up to
    whole seconds; both per task template and cluster.
    """
    if workflow_id is None and template is None:
        raise click.UsageError("give -w/--workflow-id, -t/--template, or both")
    with server_requester() as requester:
        found = queries.resource_usage(
            requester, template, [workflow_id] if workflow_id is not None else []
        )
    text = queries.resources_yaml(
        found,
        memory=queries.strategy(mem_strategy),
        runtime=queries.strategy(runtime_strategy),
    )
    if output is not None:
        output.write_text(text)
        console.print(f"resources written to {output}", markup=False, highlight=False)
    elif as_json:
        print_json(yaml.safe_load(text))
    else:
        click.echo(text, nl=False)
