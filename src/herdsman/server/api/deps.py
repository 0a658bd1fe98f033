"""Request dependencies and helpers shared by the route modules."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from herdsman.core.config import ServerSettings
from herdsman.core.limits import InputLimits
from herdsman.server.database.engine import Database
from herdsman.server.database.feed import ChangeNotifier, FeedWriter

__all__ = [
    "DatabaseDep",
    "FeedWriterDep",
    "LimitsDep",
    "NotifierDep",
    "ServerSettingsDep",
    "json_body",
    "parse_json_body",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


# Dependencies are coroutines although they do no I/O: FastAPI runs plain functions in its
# thread pool, one hop per dependency per request, which cost more than the routes' queries.
async def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(_database)]


async def _limits(request: Request) -> InputLimits:
    limits: InputLimits = request.app.state.limits
    return limits


LimitsDep = Annotated[InputLimits, Depends(_limits)]


async def _server_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.server_settings
    return settings


ServerSettingsDep = Annotated[ServerSettings, Depends(_server_settings)]


async def _notifier(request: Request) -> ChangeNotifier:
    notifier: ChangeNotifier = request.app.state.notifier
    return notifier


NotifierDep = Annotated[ChangeNotifier, Depends(_notifier)]


async def _feed_writer(database: DatabaseDep, notifier: NotifierDep) -> FeedWriter:
    return FeedWriter(database, notifier)


FeedWriterDep = Annotated[FeedWriter, Depends(_feed_writer)]


async def parse_json_body(request: Request, model: type[M]) -> M:
    """Parse and validate a request body in one pass of pydantic's JSON parser.

    Bulk bind bodies hold columns of up to a hundred thousand values; FastAPI's own path
    (``json.loads`` into Python objects, then validation) takes several times longer.
    """
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that a handler parses with parse_json_body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
