"""What every ``herdsman`` command shares: consoles, settings loading and error reporting.

Errors are part of the interface. Without ``--debug`` a failed command prints one red line
saying what went wrong and one hint saying what to do next, and exits with status 1; a
traceback is for herdsman's developers, so only ``--debug`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import pydantic
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from herdsman.core.config import Settings, normalize_database_url
from herdsman.core.errors import (
    ConfigurationError,
    ConflictError,
    HerdsmanError,
    InvalidInputError,
    NotFoundError,
    ServerError,
    ServerUnavailableError,
)

__all__ = [
    "HerdsmanGroup",
    "console",
    "database_url_option",
    "describe_validation_error",
    "error_console",
    "exit_with",
    "load_settings",
    "redact_database_url",
]

F = TypeVar("F", bound=Callable[..., Any])

# Soft wrap: long values (URLs, paths) stay on one line when the output is piped or parsed.
console = Console(soft_wrap=True)
error_console = Console(stderr=True)

# What to do next, by the kind of error (first match in this order wins).
_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (
        ConfigurationError,
        "fix the config file (`herdsman config show` names it) or the HERDSMAN_* variables",
    ),
    (ServerUnavailableError, "check the server with `herdsman server status`"),
    (ServerError, "the server failed; its log says why (run again with --debug for details)"),
    (NotFoundError, "check the name or id"),
    (ConflictError, "the server's current state does not allow this"),
    (InvalidInputError, "fix the input and try again"),
)
_DEFAULT_HINT = "run again with `herdsman --debug ...` to see the traceback"


def load_settings() -> Settings:
    """Settings from the environment and the config file, with load errors made readable."""
    try:
        return Settings()
    except pydantic.ValidationError as error:
        raise ConfigurationError(f"invalid settings: {describe_validation_error(error)}") from error
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read settings: {error}") from error


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """One line naming each offending key, e.g. ``http.timeout: must be greater than 0``."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"{location or 'value'}: {item['msg']}")
    return "; ".join(problems)


def database_url_option(command: F) -> F:
    """``--database-url URL``, normalised to herdsman's driver for the engine on parsing."""
    return click.option(
        "--database-url",
        default=None,
        metavar="URL",
        callback=_normalize_database_url,
        help="SQLAlchemy database URL [default: database_url setting, else SQLite in data_dir].",
    )(command)


def _normalize_database_url(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    if not value:
        return None
    try:
        return normalize_database_url(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def exit_with(status: int) -> NoReturn:
    """End the command with ``status`` without printing anything more."""
    raise click.exceptions.Exit(status)


def redact_database_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class HerdsmanGroup(click.Group):
    """The root command group: turns exceptions into one red line unless ``--debug`` is on."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            _report(error)
            ctx.exit(1)


def _report(error: Exception) -> None:
    if isinstance(error, HerdsmanError):
        message = error.message
    else:
        message = f"{type(error).__name__}: {error}"
    hint = next((hint for kind, hint in _HINTS if isinstance(error, kind)), _DEFAULT_HINT)
    error_console.print(f"[bold red]error:[/] [red]{escape(message)}[/]", highlight=False)
    error_console.print(f"[dim]hint: {escape(hint)}[/]", highlight=False)
