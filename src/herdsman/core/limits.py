"""How large a request and the text in it may be: the limits the server enforces.

One value object, :class:`InputLimits`, is a server setting (``limits``). The server
refuses what exceeds it (413 for a request body, 422 for a value), and tells clients its limits
in ``GET /health``, so a client refuses the same values when a workflow is validated, before
anything is bound, and keeps every request it sends under the body limit.

Why these defaults: a task's command runs as ``bash -c COMMAND``, and Linux refuses any single
argument of more than ``MAX_ARG_STRLEN`` bytes (128 KiB, its terminating NUL included) with
"Argument list too long". A longer command could be bound, but every attempt would then fail
to start. The command limit therefore stays below that; an argument value is pasted into the
command, so it can never usefully be longer than the command, and 10 kB is already far more
than file names and parameters need.

:func:`text_problem` is the one test of a text value both sides apply: NUL characters (no
command line and no PostgreSQL text column can carry one), lone surrogates (not text: they
cannot be encoded as UTF-8) and the length in UTF-8 bytes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_ARG_STRLEN",
    "MAX_NAME_CHARACTERS",
    "MIB",
    "UNLIMITED",
    "InputLimits",
    "text_problem",
    "utf8_size",
]

MAX_ARG_STRLEN = 131_072
"""Linux's limit on one argument of a new process, in bytes, its terminating NUL included."""

MAX_NAME_CHARACTERS = 255
"""Names (of tools, templates, arguments, tasks, workflows, attributes) fit a VARCHAR(255)."""

MIB = 1024 * 1024

UNLIMITED = 2**31 - 1
"""A concurrency limit that limits nothing: the largest value a limit column holds (Jobmon's
2,147,483,647). The default of a workflow's limit, and of a template's, whose tasks are then
bound by the workflow's limit alone."""

# A value stored in a TEXT column of MySQL/MariaDB holds at most 64 KiB.
_MAX_TEXT_COLUMN_BYTES = 65_535


class InputLimits(BaseModel):
    """The sizes a server accepts, in bytes (text is counted in UTF-8).

    ``max_request_bytes``: one request body; bind splits its requests to stay under it.
    ``max_command_bytes``: a task's command and a template's command template.
    ``max_arg_value_bytes``: one value of a node, task or op arg.
    ``max_attribute_value_bytes``: one value of a workflow or task attribute.
    """

    model_config = ConfigDict(frozen=True)

    max_request_bytes: int = Field(default=64 * MIB, ge=MIB, le=2**31 - 1)
    max_command_bytes: int = Field(default=100_000, ge=1_000, le=MAX_ARG_STRLEN - 1)
    max_arg_value_bytes: int = Field(default=10_000, ge=100, le=_MAX_TEXT_COLUMN_BYTES)
    max_attribute_value_bytes: int = Field(default=10_000, ge=100, le=_MAX_TEXT_COLUMN_BYTES)

    @model_validator(mode="after")
    def _values_fit_commands(self) -> InputLimits:
        if self.max_arg_value_bytes > self.max_command_bytes:
            raise ValueError(
                f"max_arg_value_bytes ({self.max_arg_value_bytes}) must not exceed "
                f"max_command_bytes ({self.max_command_bytes}): every value is pasted into "
                "its task's command"
            )
        return self


def utf8_size(text: str) -> int | None:
    """Bytes of ``text`` in UTF-8; None when it holds a lone surrogate, which has none."""
    if text.isascii():  # a flag of the string: no pass over it
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def text_problem(text: str, max_bytes: int, setting: str) -> str | None:
    """Why ``text`` cannot be stored or put on a command line, or None when it can.

    The answer completes a sentence naming the value ("task 'x': node arg 'y' ..."), and names
    ``setting`` as what sets the limit.
    """
    if "\x00" in text:
        return (
            f"contains a NUL character at position {text.index(chr(0))}; no command line or "
            "database text can carry one"
        )
    size = utf8_size(text)
    if size is None:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not text; fix its decoding"
    if size > max_bytes:
        return f"is {size} bytes long; the limit is {max_bytes} (setting {setting})"
    return None
