"""The ``herdsman`` command: one root group; each command group lives in its own module."""

from __future__ import annotations

import click

from herdsman import __version__
from herdsman.cli.common import HerdsmanGroup, with_full_summaries
from herdsman.cli.config import config
from herdsman.cli.login import login, whoami
from herdsman.cli.resources import resources
from herdsman.cli.server import server
from herdsman.cli.task import task
from herdsman.cli.workflow import jobmon_workflow_resume, workflow
from herdsman.core.config import Settings
from herdsman.core.logs import configure_logging

__all__ = ["cli"]


@click.group(cls=HerdsmanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="herdsman")
def cli(debug: bool) -> None:
    """herdsman: run workflows of many command-line tasks on clusters, to the end."""
    configure_logging("debug" if debug else _log_level_setting())


def _log_level_setting() -> str:
    # Read leniently: a broken config file must not stop `herdsman config set` from fixing it.
    try:
        return Settings().log_level
    except Exception:
        return "warning"


@cli.command("version")
def version() -> None:
    """Print herdsman's version (as `herdsman --version`)."""
    click.echo(__version__)


cli.add_command(workflow)
cli.add_command(task)
cli.add_command(resources)
cli.add_command(server)
cli.add_command(config)
cli.add_command(login)
cli.add_command(whoami)
cli.add_command(jobmon_workflow_resume)
with_full_summaries(cli)

# Names of the older command set (Jobmon's), accepted (hidden) so existing scripts keep working;
# the commands take Jobmon's options too. `workflow_resume` is a command of its own: Jobmon's
# -t means another timeout than herdsman's --timeout.
cli.legacy_names = {
    "workflow_status": ("workflow", "status"),
    "workflow_tasks": ("workflow", "tasks"),
    "workflow_reset": ("workflow", "reset"),
    "concurrency_limit": ("workflow", "concurrency"),
    "get_filepaths": ("workflow", "logs"),
    "task_status": ("task", "status"),
    "update_task_status": ("task", "update"),
    "task_dependencies": ("task", "dependencies"),
    "task_template_resources": ("resources", "usage"),
    "create_resource_yaml": ("resources", "yaml"),
}
