"""Bounded field types of the wire schemas: every number fits the column it lands in.

A value a column cannot hold must be refused when the request is validated (422), not by the
database in the middle of a transaction (a 500 on one engine, a silent truncation on another).
Ids of tables that grow with use are 64-bit (BIGINT) on every engine; the catalogue tables
(clusters, queues, tools, argument names) and counters such as limits, attempts and pids are
32-bit INTEGER columns.

Text a person writes (names, arguments, commands, attributes) is :data:`Text`: no NUL
character (PostgreSQL cannot store one, and no command line can carry one) and no lone
surrogate (not encodable, so not storable either); such text is refused. The bulk bind routes
check their columns of values in one pass instead (see :mod:`herdsman.server.api.input_limits`),
since a validator per value would cost more than the rest of their validation.

Text a program reports about a command it ran (output tails, error messages, log paths) is
:data:`ReportedText`: such characters are replaced, and overlong text is cut, since refusing
the report would lose the attempt's outcome over a byte the command happened to print.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from herdsman.core.limits import MAX_NAME_CHARACTERS, utf8_size

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "CatalogueId",
    "Count",
    "Edge",
    "Id",
    "IdOrZero",
    "Int32",
    "Limit32",
    "LongText",
    "Name",
    "OptionalName",
    "ReportedText",
    "Seconds",
    "Text",
    "UtcDateTime",
    "check_text",
    "clean_reported_text",
]

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""The id of a row of a table that grows with use (64-bit)."""

IdOrZero = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""An id where 0 stands for "none" or "from the start" (a cursor, a "keep" marker)."""

CatalogueId = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""The id of a cluster, queue, tool or argument name (32-bit)."""

Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
"""Any value of a 32-bit column: exit codes (negative for signals), array steps."""

Edge = Annotated[
    tuple[int, int],
    WithJsonSchema({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}),
]
"""An (upstream, downstream) pair of ids. Described as a pair of integers rather than with
``prefixItems``, which says the same for two integers, but not every OpenAPI tool reads."""


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]
"""A moment in UTC, sent with its offset. The database keeps naive UTC times; an answer
without the offset would be read as local time by a browser, and is not an RFC 3339
``date-time``."""

Limit32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A non-negative 32-bit setting or counter: concurrency limits, pids."""

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A non-negative count or size of a 64-bit column: tasks, bytes."""

Seconds = Annotated[float, Field(gt=0, le=366 * 24 * 3600, allow_inf_nan=False)]
"""A positive duration of at most a year: a report-by time must be a date the engines hold."""


def check_text(value: str) -> str:
    """``value`` unchanged; ValueError if it holds a NUL character or a lone surrogate."""
    if "\x00" in value:
        raise ValueError("contains a NUL character, which no command line or database can carry")
    if utf8_size(value) is None:
        raise ValueError("contains a lone surrogate (\\ud800-\\udfff), which is not text")
    return value


Text = Annotated[str, AfterValidator(check_text)]
"""Free text: anything but NUL characters and lone surrogates."""

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_CHARACTERS),
    AfterValidator(check_text),
]
"""A non-empty name that fits a VARCHAR(255)."""

OptionalName = Annotated[
    str, StringConstraints(max_length=MAX_NAME_CHARACTERS), AfterValidator(check_text)
]
"""A name that may be empty ("" for none)."""

# A TEXT column of MySQL/MariaDB holds 64 KiB: this many characters fit even at four bytes each.
LONG_TEXT_CHARACTERS = 16_383

LongText = Annotated[
    str, StringConstraints(max_length=LONG_TEXT_CHARACTERS), AfterValidator(check_text)
]
"""Free text stored in a TEXT column: descriptions, workflow args, messages."""


def clean_reported_text(value: object) -> object:
    """NUL characters and lone surrogates replaced (U+FFFD, "?"), and cut to what a TEXT
    column holds; values other than strings unchanged (for the type check to refuse)."""
    if not isinstance(value, str):
        return value
    value = value[:LONG_TEXT_CHARACTERS]
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if utf8_size(value) is None:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


ReportedText = Annotated[str, BeforeValidator(clean_reported_text)]
"""Text a program reports about a command: made storable rather than refused."""
