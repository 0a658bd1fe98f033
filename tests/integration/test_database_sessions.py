"""The server's own database sessions: PostgreSQL plans with its page cost, and keeps the
connection options the URL gives."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from herdsman.server.database.engine import POSTGRESQL_RANDOM_PAGE_COST, make_database

pytestmark = pytest.mark.integration


def test_postgresql_sessions_plan_for_memory_and_keep_the_urls_options(
    engine: str, fresh_database_url: str
) -> None:
    if engine != "postgresql":
        pytest.skip("a PostgreSQL planner setting")
    separator = "&" if "?" in fresh_database_url else "?"
    url = f"{fresh_database_url}{separator}options=-c%20statement_timeout%3D123456"
    database = make_database(url)
    try:
        with database.reading() as session:
            cost = session.execute(text("SHOW random_page_cost")).scalar_one()
            timeout = session.execute(text("SHOW statement_timeout")).scalar_one()
    finally:
        database.dispose()
    assert float(cost) == POSTGRESQL_RANDOM_PAGE_COST
    assert timeout == "123456ms"
