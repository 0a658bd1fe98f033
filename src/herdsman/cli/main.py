"""The ``herdsman`` command: one root group; each command group lives in its own module."""

from __future__ import annotations

import click

from herdsman import __version__
from herdsman.cli.common import HerdsmanGroup
from herdsman.cli.config import config
from herdsman.cli.server import server
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


cli.add_command(server)
cli.add_command(config)
