"""Schema migrations (Alembic), run by ``herdsman server db upgrade`` or at server start."""

from __future__ import annotations

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from herdsman.server.database.engine import Database

__all__ = ["alembic_config", "upgrade"]

logger = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Serialises concurrent upgrades on engines with advisory locks; SQLite serialises by itself
# through its write lock (the upgrade runs in one BEGIN IMMEDIATE transaction).
_LOCK_KEY = 0x6865726473


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe when several servers start at once."""
    config = alembic_config(database.url)
    with database.write_engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        elif database.dialect == "mysql":
            got = connection.execute(text("SELECT GET_LOCK('herdsman_migrate', 300)")).scalar()
            if got != 1:
                raise RuntimeError(
                    "another process held the schema migration lock for 300 s; is a "
                    "'herdsman server db upgrade' stuck?"
                )
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        finally:
            if database.dialect == "mysql":
                connection.execute(text("SELECT RELEASE_LOCK('herdsman_migrate')"))
    logger.info("database_upgraded", revision=revision, dialect=database.dialect)
