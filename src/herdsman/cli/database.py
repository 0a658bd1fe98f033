"""How operator commands reach the server's database directly, without a server.

The reaper and the ``herdsman server cluster`` commands work on the database itself. They
never migrate it: servers (or ``herdsman server db upgrade``) own the schema, so a database
whose schema is not this herdsman's is refused before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from herdsman.cli.common import load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from herdsman.server.database.engine import Database

# The server's modules (web stack, database, migrations) are imported inside the functions
# that need them: every other herdsman command would otherwise pay seconds to import them.

__all__ = ["on_database", "require_current_schema"]

T = TypeVar("T")


def on_database(database_url: str | None, work: Callable[[Session], T], *, write: bool) -> T:
    """Run ``work`` in one transaction on the database (``--database-url``, else the
    ``database_url`` setting), once its schema is known to be current."""
    from herdsman.server.database.engine import make_database

    url = database_url or load_settings().resolved_database_url()
    database = make_database(url)
    try:
        require_current_schema(database)
        return database.write(work) if write else database.read(work)
    finally:
        database.dispose()


def require_current_schema(database: Database) -> None:
    """Refuse a database whose schema is older (or newer) than this herdsman's."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from herdsman.server.database.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(database.url)).get_heads())
    with database.read_engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != heads:
        shown = ", ".join(sorted(current)) or "none (an empty database)"
        raise click.ClickException(
            f"the database schema is at revision {shown}, but this herdsman needs "
            f"{', '.join(sorted(heads))}; run `herdsman server db upgrade` with the same "
            "database URL (or upgrade herdsman) first"
        )
