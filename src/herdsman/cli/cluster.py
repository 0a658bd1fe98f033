"""``herdsman server cluster ...``: list, show, add and tune the clusters tasks run on.

These are operator commands: like ``herdsman server db upgrade`` they work on the server's
database directly (``--database-url``, else the ``database_url`` setting), since changing a
cluster changes how every user's next run is submitted. A change reaches each workflow run
when its distributor starts.

``add-queue`` adds a queue by hand (local clusters have no queues to read);
``sync-queues`` loads a cluster's queues and their limits from the cluster itself (Slurm's
partitions), through its plugin: the plugin reads the cluster, this command writes the
database.

``KEY=VALUE`` arguments take JSON values where the text is JSON (``workers=4``,
``enforce_limits=false``, ``sbatch_args='["--requeue"]'``) and the text itself otherwise
(``partition=all.q``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from herdsman.cli.common import (
    console,
    database_url_option,
    json_option,
    new_table,
    print_json,
)
from herdsman.cli.database import on_database
from herdsman.core.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from herdsman.core.schemas.client import ClusterOut, QueueIn

__all__ = ["cluster", "parse_assignments"]


@click.group()
def cluster() -> None:
    """List, show, add and tune clusters (operator commands on the server's database)."""


@cluster.command("list")
@database_url_option
@json_option
def list_command(database_url: str | None, as_json: bool) -> None:
    """Every cluster: its plugin, parameters and queues."""
    from herdsman.server.domain import clusters

    found = on_database(database_url, clusters.list_clusters, write=False)
    if as_json:
        print_json({"clusters": [record.model_dump(mode="json") for record in found]})
        return
    table = new_table("NAME", "PLUGIN", "QUEUES", "PARAMETERS")
    for record in found:
        table.add_row(
            escape(record.name),
            escape(record.plugin),
            escape(", ".join(queue.name for queue in record.queues)),
            escape(_compact(record.parameters)),
        )
    console.print(table)


@cluster.command("show")
@click.argument("name")
@database_url_option
@json_option
def show_command(name: str, database_url: str | None, as_json: bool) -> None:
    """One cluster: its parameters, and its queues with their limits."""
    from herdsman.server.domain import clusters

    record = on_database(database_url, lambda s: clusters.get_cluster(s, name), write=False)
    _print_cluster(record, as_json)


@cluster.command("add")
@click.argument("name")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--plugin", required=True, help="The cluster plugin that submits its tasks.")
@database_url_option
@json_option
def add_command(
    name: str, assignments: tuple[str, ...], plugin: str, database_url: str | None, as_json: bool
) -> None:
    """Add a cluster NAME run by PLUGIN, with a queue 'default', and optional parameters."""
    from herdsman.server.domain import clusters

    parameters = parse_assignments(assignments)
    record = on_database(
        database_url,
        lambda s: clusters.add_cluster(s, name, plugin, parameters, check=_check_parameters),
        write=True,
    )
    _print_cluster(record, as_json)


@cluster.command("set")
@click.argument("name")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove a parameter.")
@database_url_option
@json_option
def set_command(
    name: str,
    assignments: tuple[str, ...],
    unset: tuple[str, ...],
    database_url: str | None,
    as_json: bool,
) -> None:
    """Set (or with --unset remove) parameters of cluster NAME; the others stay."""
    from herdsman.server.domain import clusters

    values = parse_assignments(assignments)
    if not values and not unset:
        raise InvalidInputError("name at least one KEY=VALUE to set or --unset KEY to remove")
    record = on_database(
        database_url,
        lambda s: clusters.update_parameters(s, name, values, unset, check=_check_parameters),
        write=True,
    )
    _print_cluster(record, as_json)


@cluster.command("sync-queues")
@click.argument("name")
@database_url_option
@json_option
def sync_queues_command(name: str, database_url: str | None, as_json: bool) -> None:
    """Add or update cluster NAME's queues from what its cluster says (Slurm: its partitions).

    Run it where the cluster's commands work (for Slurm, on a host with scontrol), once and
    again when partitions change. Queues are never deleted: tasks refer to them.
    """
    from herdsman.server.domain import clusters

    record = on_database(database_url, lambda s: clusters.get_cluster(s, name), write=False)
    queues = _read_queues(record.plugin, record.parameters)
    outcome = on_database(database_url, lambda s: clusters.sync_queues(s, name, queues), write=True)
    if as_json:
        print_json({"cluster": name, "queues": outcome})
        return
    for queue, what in outcome.items():
        console.print(f"{escape(queue)}: {what}", highlight=False)


@cluster.command("add-queue")
@click.argument("name")
@click.argument("queue")
@click.argument("limits", nargs=-1, metavar="[RESOURCE=LOW,HIGH]...")
@database_url_option
@json_option
def add_queue_command(
    name: str, queue: str, limits: tuple[str, ...], database_url: str | None, as_json: bool
) -> None:
    """Add QUEUE to cluster NAME, or change its limits (memory in GiB, runtime in seconds).

    For clusters whose queues cannot be read from the cluster, such as the local ones
    (sequential, multiprocess, dummy): a new queue takes the default queue's limits except the
    ones given, e.g. `herdsman server cluster add-queue multiprocess long.q runtime=1,604800`.
    Local clusters also take any queue name they lack as their default queue.
    """
    from herdsman.server.domain import clusters

    bounds = _parse_limits(limits)
    record = on_database(
        database_url, lambda s: clusters.add_queue(s, name, queue, bounds), write=True
    )
    _print_cluster(record, as_json)


def _parse_limits(limits: Sequence[str]) -> dict[str, list[float]]:
    parsed: dict[str, list[float]] = {}
    for text in limits:
        key, sep, value = text.partition("=")
        parts = value.split(",")
        try:
            if not sep or not key.strip() or len(parts) != 2:
                raise ValueError(text)
            parsed[key.strip()] = [float(part) for part in parts]
        except ValueError:
            raise InvalidInputError(
                f"{text!r} is not RESOURCE=LOW,HIGH; write, e.g., memory=0,64 or runtime=1,86400"
            ) from None
    return parsed


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` texts as a dict; a value is JSON where it parses as JSON, else text."""
    parsed: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"{assignment!r} is not KEY=VALUE; write, e.g., workers=4 or partition=all.q"
            )
        try:
            parsed[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key.strip()] = text
    return parsed


def _check_parameters(plugin: str, parameters: Mapping[str, Any]) -> None:
    """Refuse what the plugin installed here would refuse when a run starts."""
    from herdsman.distributor.plugin import check_parameters

    try:
        check_parameters(plugin, parameters)
    except ConfigurationError as error:  # the operator's input, not a config file
        raise InvalidInputError(error.message, details=error.details) from error


def _read_queues(plugin: str, parameters: Mapping[str, Any]) -> list[QueueIn]:
    """The queues the cluster's plugin, installed here, reads from its cluster."""
    from herdsman.distributor.plugin import read_queues

    try:
        return read_queues(plugin, parameters)
    except ConfigurationError as error:  # the operator's choice of cluster, not a config file
        raise InvalidInputError(error.message, details=error.details) from error


def _print_cluster(record: ClusterOut, as_json: bool) -> None:
    if as_json:
        print_json(record)
        return
    console.print(
        f"cluster {escape(record.name)} (plugin {escape(record.plugin)})", highlight=False
    )
    parameters = new_table("PARAMETER", "VALUE")
    for key, value in sorted(record.parameters.items()):
        parameters.add_row(escape(key), escape(json.dumps(value)))
    if record.parameters:
        console.print(parameters)
    else:
        console.print("no parameters: the plugin's defaults apply")
    queues = new_table("QUEUE", "DEFAULT", "LIMITS")
    for queue in record.queues:
        queues.add_row(
            escape(queue.name), "yes" if queue.is_default else "", escape(_compact(queue.limits))
        )
    console.print(queues)


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":")) if value else ""
