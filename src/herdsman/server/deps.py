"""Request dependencies: the database of the app serving the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from herdsman.server.database import Database

__all__ = ["DatabaseDep"]


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(_database)]
