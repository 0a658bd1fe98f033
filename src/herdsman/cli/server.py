"""``herdsman server ...``: run, inspect and stop a server, run its reaper, migrate its database."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from herdsman import __version__
from herdsman.cli.cluster import cluster
from herdsman.cli.common import (
    console,
    database_url_option,
    exit_with,
    load_settings,
    redact_database_url,
)
from herdsman.cli.database import require_current_schema
from herdsman.cli.formatting import timestamp
from herdsman.cli.tokens import token
from herdsman.client.embedded import (
    embedded_log_file,
    embedded_server_status,
    probe_health,
    stop_embedded_server,
)
from herdsman.core.logs import configure_logging

if TYPE_CHECKING:
    from herdsman.server.database.engine import Database

# The server's modules (web stack, database, migrations) are imported inside the commands that
# need them: every other herdsman command would otherwise pay seconds to import them.

__all__ = ["server", "start"]

_LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


@click.group()
def server() -> None:
    """Run and manage a herdsman server."""


@click.command()
@click.option("--host", default=None, help="Address to bind [default: server.host setting].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to bind; 0 picks a free one [default: server.port setting].",
)
@database_url_option
@click.option("--no-upgrade", is_flag=True, help="Do not migrate the schema at start.")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the URL, pid and database as JSON here once the server accepts connections.",
)
@click.option("--log-level", type=_LOG_LEVELS, default=None, help="[default: log_level setting]")
@click.option("--access-log", is_flag=True, help="Log every request (very chatty).")
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate (PEM); clients then use an https:// server_url.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The certificate's private key (PEM), unless the certificate file holds it.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Server processes sharing the port [default: server.workers setting, 1].",
)
def start(
    host: str | None,
    port: int | None,
    database_url: str | None,
    no_upgrade: bool,
    ready_file: Path | None,
    log_level: str | None,
    access_log: bool,
    certfile: Path | None,
    keyfile: Path | None,
    workers: int | None,
) -> None:
    """Run a server in the foreground until SIGTERM or Ctrl-C.

    Production servers use PostgreSQL or MariaDB/MySQL; several may serve one database, and
    --workers N runs N processes on one port (see docs/deployment.md).
    """
    from herdsman.server.runner import serve

    settings = load_settings()
    serve(
        host=host if host is not None else settings.server.host,
        port=port if port is not None else settings.server.port,
        database_url=database_url or settings.resolved_database_url(),
        upgrade_schema=not no_upgrade,
        ready_file=ready_file,
        log_level=log_level or settings.log_level,
        access_log=access_log,
        on_ready=_announce,
        certfile=certfile,
        keyfile=keyfile,
        workers=workers if workers is not None else settings.server.workers,
    )


def _announce(url: str) -> None:
    # No markup: an IPv6 URL's brackets would be read as rich markup.
    console.print(f"herdsman server listening on {url}", markup=False, highlight=False)
    console.print(
        f"web GUI: {url}/ (sign in with your token; herdsman server token issue makes one)",
        markup=False,
        highlight=False,
    )


server.add_command(start)
server.add_command(cluster)
server.add_command(token)


@server.command()
def status() -> None:
    """Whether the server clients use runs, where, its version and where its data is.

    Exit status 1 if it does not answer (the embedded server starts again when a workflow or
    a command needs it).
    """
    settings = load_settings()
    if settings.server_url:
        console.print(f"configured server: {escape(settings.server_url)}", highlight=False)
        running = _report_health(settings.server_url)
        _print_client_version()
        if not running:
            exit_with(1)
        return
    embedded = embedded_server_status(settings)
    if embedded is None:
        console.print("no embedded server is running", highlight=False)
    else:
        console.print(f"embedded server: {escape(embedded.url)}", highlight=False)
        started = f" (started {timestamp(embedded.started)} UTC)" if embedded.started else ""
        console.print(f"pid: {embedded.pid}{started}", highlight=False)
    running = embedded is not None and _report_health(embedded.url if embedded.running else None)
    database = embedded.database_url if embedded is not None else settings.resolved_database_url()
    console.print(f"data_dir: {escape(str(settings.data_dir))}", highlight=False)
    console.print(f"database: {escape(redact_database_url(database))}", highlight=False)
    console.print(f"log: {escape(str(embedded_log_file(settings)))}", highlight=False)
    if running:
        console.print("stop it with `herdsman server stop`", highlight=False)
        return
    _print_client_version()
    console.print(
        "the next workflow or command that needs a server starts one on this database",
        highlight=False,
    )
    exit_with(1)


def _report_health(url: str | None) -> bool:
    health = probe_health(url) if url is not None else None
    if health is None:
        console.print("running: [red]no[/] (it does not answer)")
        return False
    console.print(
        f"running: [green]yes[/] (herdsman {escape(health.version)} on {escape(health.database)})",
        highlight=False,
    )
    return True


def _print_client_version() -> None:
    console.print(f"herdsman: {__version__} (this client)", highlight=False)


@server.command()
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait.")
def stop(timeout: float) -> None:
    """Stop the embedded server.

    A server at a configured server_url is not affected: stop it where it was started.
    """
    settings = load_settings()
    if stop_embedded_server(settings, timeout=timeout):
        console.print(
            f"embedded server stopped; its data stays in {escape(str(settings.data_dir))}",
            highlight=False,
        )
    else:
        console.print("no embedded server was running")
    if settings.server_url:
        console.print(f"note: clients use the configured server {escape(settings.server_url)}")


@server.group()
def db() -> None:
    """Manage the server's database."""


@db.command("upgrade")
@database_url_option
def db_upgrade(database_url: str | None) -> None:
    """Migrate the database schema to the latest version (a no-op when it is current)."""
    from herdsman.server.database.engine import make_database
    from herdsman.server.database.migrate import upgrade

    settings = load_settings()
    url = database_url or settings.resolved_database_url()
    database = make_database(url)
    try:
        upgrade(database)
    finally:
        database.dispose()
    console.print(f"database {escape(redact_database_url(url))} is up to date", highlight=False)


@server.command("reaper")
@database_url_option
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between passes [default: reaper.interval setting].",
)
@click.option("--once", is_flag=True, help="Do one pass now, print what it did, and exit.")
@click.option("--log-level", type=_LOG_LEVELS, default=None, help="[default: log_level setting]")
def reaper_command(
    database_url: str | None, interval: float | None, once: bool, log_level: str | None
) -> None:
    """End runs whose swarm stopped heartbeating; settle resumed runs and finished workflows.

    Every server does this in the background unless the reaper.enabled setting is false.
    Deployments that disable it in their servers run one of these against the same database
    instead; several at once are safe. Runs until SIGTERM or Ctrl-C; the first pass comes one
    interval after the start, so swarms cut off by an outage can heartbeat again first.
    """
    from herdsman.server.database.engine import make_database
    from herdsman.server.domain.reaper import reap

    settings = load_settings()
    url = database_url or settings.resolved_database_url()
    database = make_database(url)
    try:
        require_current_schema(database)
        if once:
            report = reap(database, unattended_after=settings.reaper.unattended_after)
            for run in (*report.lapsed, *report.terminated):
                console.print(
                    f"workflow run {run.workflow_run_id} (workflow {run.workflow_id}): "
                    f"{run.previous.value} -> {run.status.value}",
                    highlight=False,
                )
            for workflow_id in report.completed_workflows:
                console.print(f"workflow {workflow_id}: -> D", highlight=False)
            console.print(f"reaper: {report.summary()}", highlight=False)
            return
        configure_logging(log_level or settings.log_level)
        every = interval if interval is not None else settings.reaper.interval
        console.print(
            f"herdsman reaper on {escape(redact_database_url(url))}, every {every:g} s",
            highlight=False,
        )
        asyncio.run(_reap_until_signalled(database, every, settings.reaper.unattended_after))
    finally:
        database.dispose()


async def _reap_until_signalled(
    database: Database, interval: float, unattended_after: float
) -> None:
    from herdsman.server.domain.reaper import reap_periodically

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await reap_periodically(
        database, interval=interval, stop=stop, unattended_after=unattended_after
    )


@server.command("prune")
@database_url_option
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Remove workflows that ended more than DAYS ago [default: retention.older_than_days].",
)
@click.option(
    "--archive-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each workflow's archive here first [default: retention.archive_dir, else "
    "data_dir/archive].",
)
@click.option(
    "--no-archive", is_flag=True, help="Remove without writing archives (the data is lost)."
)
@click.option(
    "--feeds-older-than",
    "feeds_older_than",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Also remove the change feed (the status history followers read) of kept workflows "
    "that ended more than DAYS ago [default: retention.feed_days, else keep].",
)
@click.option("--dry-run", is_flag=True, help="Only list the workflows that would be removed.")
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Rows removed per transaction [default: retention.chunk_size].",
)
def prune_command(
    database_url: str | None,
    older_than: float | None,
    archive_dir: Path | None,
    no_archive: bool,
    feeds_older_than: float | None,
    dry_run: bool,
    chunk_size: int | None,
) -> None:
    """Archive, then remove, workflows that ended (done, failed, halted) long enough ago.

    A workflow that any live run or attempt holds is never touched. Each removed workflow
    first goes to ARCHIVE_DIR/workflow-ID.jsonl.gz (read it back with `herdsman workflow show
    --archive FILE`); rows are removed a chunk per transaction, so workflows that run
    meanwhile are not held up. Safe to interrupt and run again. Servers do the same by
    themselves when the retention.enabled setting is true.
    """
    from herdsman.server.database.engine import make_database
    from herdsman.server.domain.retention import PrunedWorkflow, prune

    settings = load_settings()
    url = database_url or settings.resolved_database_url()
    days = older_than if older_than is not None else settings.retention.older_than_days
    if no_archive and archive_dir is not None:
        raise click.UsageError("--archive-dir and --no-archive exclude each other")
    target = None if no_archive else (archive_dir or settings.resolved_archive_dir())
    if not no_archive and target is None:
        raise click.UsageError(
            "the retention.archive setting is off: pass --archive-dir DIR, or --no-archive "
            "to remove without archives"
        )

    def report(pruned: PrunedWorkflow) -> None:
        where = f" -> {pruned.archive}" if pruned.archive else ""
        console.print(
            f"workflow {pruned.workflow_id}: removed {pruned.total_rows:,} rows in "
            f"{pruned.seconds:.1f} s{where}",
            markup=False,
            highlight=False,
        )

    database = make_database(url)
    try:
        require_current_schema(database)
        found = prune(
            database,
            older_than_days=days,
            archive_dir=target,
            dry_run=dry_run,
            chunk_size=chunk_size or settings.retention.chunk_size,
            on_pruned=report,
            feeds_older_than_days=(
                feeds_older_than if feeds_older_than is not None else settings.retention.feed_days
            ),
        )
    finally:
        database.dispose()
    if dry_run:
        for candidate in found.candidates:
            console.print(
                f"workflow {candidate.workflow_id}: {candidate.status}, ended "
                f"{timestamp(candidate.status_date.isoformat())}, {candidate.num_tasks:,} tasks",
                markup=False,
                highlight=False,
            )
        number = len(found.candidates)
        console.print(
            f"dry run: {number} {'workflow' if number == 1 else 'workflows'} ended more than "
            f"{days:g} days ago would be removed",
            highlight=False,
        )
        return
    for workflow_id, reason in found.skipped.items():
        console.print(f"workflow {workflow_id}: skipped, {reason}", markup=False, highlight=False)
    console.print(f"prune: {found.summary()}", highlight=False)
