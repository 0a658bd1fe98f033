"""``herdsman resources ...``: what tasks really used, and a resources file made from it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
from herdsman.client.queries import Strategy
from herdsman.core.schemas.queries import StatisticsOut, TemplateUsageOut

__all__ = ["resources"]

F = TypeVar("F", bound=Callable[..., Any])

_STRATEGIES = click.Choice(["avg", "p90", "p95", "p99", "max"], case_sensitive=False)


def _usage_filters(command: F) -> F:
    """``--tool`` and ``--node-arg``: which templates' and tasks' attempts count."""
    command = click.option(
        "--node-arg",
        "node_args",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_node_args,
        help="Only tasks whose node has this node-arg value (repeatable).",
    )(command)
    return click.option(
        "--tool",
        default=None,
        help="Only this tool's templates [default: every tool's, each kept apart].",
    )(command)


def _parse_node_args(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in values:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE")
        found[name] = value
    return found


def _strategy_options(command: F, *, headroom: float) -> F:
    for resource, noun in (("runtime", "runtime"), ("mem", "peak memory")):
        command = click.option(
            f"--{resource}-strategy",
            type=_STRATEGIES,
            default="max",
            show_default=True,
            help=f"Which statistic of {noun} to request.",
        )(command)
    return click.option(
        "--headroom",
        type=click.FloatRange(min=0),
        default=headroom,
        show_default=True,
        help="Percent added to the statistic for the suggested request.",
    )(command)


@click.group()
def resources() -> None:
    """Resource usage of done tasks, and resource files made from it."""


@resources.command("usage")
@click.option("-t", "--template", default=None, help="Task template name.")
@workflow_option(
    multiple=True,
    required=False,
    help="Only these workflows' tasks (repeatable) [default: every workflow].",
)
@_usage_filters
@functools.partial(_strategy_options, headroom=20.0)
@json_option
def usage(
    template: str | None,
    workflow_ids: tuple[int, ...],
    tool: str | None,
    node_args: dict[str, str],
    mem_strategy: str,
    runtime_strategy: str,
    headroom: float,
    as_json: bool,
) -> None:
    """Runtime and peak memory of done attempts, per tool, template and cluster: min, mean,
    median, p95 and max, then p90 and p99 and the request they suggest, with its headroom.

    Give a template (-t), a tool (--tool), workflows (-w), or several of them. Templates of
    different tools are kept apart even when they share a name.
    """
    if template is None and tool is None and not workflow_ids:
        raise click.UsageError("give -t/--template, --tool, -w/--workflow-id, or several")
    with server_requester() as requester:
        found = queries.resource_usage(
            requester, template, workflow_ids, tool=tool, node_args=node_args
        )
    if as_json:
        print_json(found)
        return
    if not found.templates:
        console.print("no done attempts match yet", highlight=False)
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
    memory, runtime = queries.strategy(mem_strategy), queries.strategy(runtime_strategy)
    for entry in found.templates:
        _print_suggestion(entry, memory, runtime, headroom)


def _print_suggestion(
    entry: TemplateUsageOut, memory: Strategy, runtime: Strategy, headroom: float
) -> None:
    """The template's tool, its p90 and p99, and the request they suggest, headroom stated."""
    console.print(
        f"\ntool {escape(entry.tool)}, template {escape(entry.task_template)} on "
        f"{escape(entry.cluster)} ({entry.attempts} done attempts):",
        highlight=False,
    )
    for name, stats, shown, strategy, suggested in (
        ("runtime", entry.runtime, duration, runtime, _runtime_text),
        ("memory", entry.memory, gib, memory, _memory_text),
    ):
        if stats is None:
            console.print(f"  {name}: not recorded", highlight=False)
            continue
        console.print(
            f"  {name}: p90 {shown(stats.p90)}, p99 {shown(stats.p99)}; suggested request "
            f"{suggested(stats, strategy, headroom / 100)} "
            f"({strategy} {shown(_statistic(stats, strategy))} + {headroom:g} % headroom)",
            highlight=False,
        )


def _runtime_text(stats: StatisticsOut, strategy: Strategy, headroom: float) -> str:
    return duration(queries.suggested_runtime(stats, strategy, headroom))


def _memory_text(stats: StatisticsOut, strategy: Strategy, headroom: float) -> str:
    return gib(queries.suggested_memory(stats, strategy, headroom))


def _statistic(stats: StatisticsOut, strategy: Strategy) -> float:
    """The statistic a strategy names."""
    return stats.mean if strategy == "avg" else float(getattr(stats, strategy))


def _cells(stats: StatisticsOut | None, shown: Callable[[float], str]) -> list[str]:
    if stats is None:
        return ["0", "-", "-", "-", "-", "-"]
    values = (stats.min, stats.mean, stats.median, stats.p95, stats.max)
    return [str(stats.count), *(shown(value) for value in values)]


@resources.command("yaml")
@workflow_option(required=False, help="Every task template of this workflow.")
@click.option("-t", "--template", default=None, help="This task template (in every workflow).")
@_usage_filters
@functools.partial(_strategy_options, headroom=0.0)
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
    tool: str | None,
    node_args: dict[str, str],
    mem_strategy: str,
    runtime_strategy: str,
    headroom: float,
    output: Path | None,
    as_json: bool,
) -> None:
    """A resources file from what done tasks used, ready for ``yaml_file=``.

    Memory is peak resident memory rounded up to whole MiB, runtime wall time rounded up to
    whole seconds, each the chosen statistic plus --headroom percent; both per task template
    and cluster. A file names templates only, so templates of one name in two tools need
    --tool.
    """
    if workflow_id is None and template is None and tool is None:
        raise click.UsageError("give -w/--workflow-id, -t/--template, --tool, or several")
    with server_requester() as requester:
        found = queries.resource_usage(
            requester,
            template,
            [workflow_id] if workflow_id is not None else [],
            tool=tool,
            node_args=node_args,
        )
    text = queries.resources_yaml(
        found,
        memory=queries.strategy(mem_strategy),
        runtime=queries.strategy(runtime_strategy),
        headroom=headroom / 100,
    )
    if output is not None:
        output.write_text(text)
        console.print(f"resources written to {output}", markup=False, highlight=False)
    elif as_json:
        print_json(yaml.safe_load(text))
    else:
        click.echo(text, nl=False)
