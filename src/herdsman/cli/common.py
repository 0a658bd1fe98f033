"""What every ``herdsman`` command shares: consoles, settings loading and error reporting.

Errors are part of the interface. Without ``--debug`` a failed command prints one red line
saying what went wrong and one hint saying what to do next, and exits with status 1; a
traceback is for herdsman's developers, so only ``--debug`` shows it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar, cast

import click
import pydantic
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from herdsman.core.config import Settings, normalize_database_url
from herdsman.core.config import load_settings as core_load_settings
from herdsman.core.errors import (
    ConfigurationError,
    ConflictError,
    HerdsmanError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RunInterrupted,
    ServerError,
    ServerUnavailableError,
    TooManyRequestsError,
)
from herdsman.core.requester import Requester

__all__ = [
    "CommandGroup",
    "HerdsmanGroup",
    "console",
    "database_url_option",
    "describe_validation_error",
    "error_console",
    "exit_with",
    "json_option",
    "load_settings",
    "new_table",
    "output_option",
    "print_json",
    "redact_database_url",
    "server_requester",
    "task_option",
    "with_full_summaries",
    "workflow_option",
]

F = TypeVar("F", bound=Callable[..., Any])

_PIPE_WIDTH = 1000

# Soft wrap: long values (URLs, paths) stay on one line when the output is piped or parsed.
# Piped output has no terminal width; rich would assume 80 columns and squeeze tables into
# cut-off cells, so a pipe gets room for every table at its natural width instead.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
error_console = Console(stderr=True, soft_wrap=True)

# What to do next, by the kind of error (first match in this order wins).
_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (
        ConfigurationError,
        "fix the config file (`herdsman config show` names it) or the HERDSMAN_* variables",
    ),
    (ServerUnavailableError, "check the server with `herdsman server status`"),
    (ServerError, "the server failed; its log says why (run again with --debug for details)"),
    (NotFoundError, "check the name or id"),
    (PermissionDeniedError, "ask the workflow's owner to do this"),
    (TooManyRequestsError, "wait a little, or ask the server's operator about the limit"),
    (ConflictError, "the server's current state does not allow this"),
    (InvalidInputError, "fix the input and try again"),
)
_DEFAULT_HINT = "run again with `herdsman --debug ...` to see the traceback"
INTERRUPTED_EXIT = 130  # what a shell reports for a command ended by Ctrl-C (128 + SIGINT)


def load_settings() -> Settings:
    """Settings from the environment and the config file, with load errors made readable."""
    return core_load_settings()


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """One line naming each offending key, e.g. ``http.timeout: must be greater than 0``."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"{location or 'value'}: {item['msg']}")
    return "; ".join(problems)


def json_option(command: F) -> F:
    """``--json``: print the answer as JSON on stdout, for scripts, instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
    )(command)


def output_option(command: F) -> F:
    """``--json`` (also ``-n``), or Jobmon's ``-o/--output json|table``: how to print the answer.

    The command receives one ``as_json`` flag either way.
    """

    @functools.wraps(command)
    def merged(*args: Any, **kwargs: Any) -> Any:
        output: str | None = kwargs.pop("output")
        kwargs["as_json"] = kwargs["as_json"] or output == "json"
        return command(*args, **kwargs)

    with_output = click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"], case_sensitive=False),
        default=None,
        help="json: as --json; table: the default.",
    )(merged)
    return cast(
        F,
        click.option(
            "-n",
            "--json",
            "as_json",
            is_flag=True,
            help="Print JSON for scripts instead of tables.",
        )(with_output),
    )


def workflow_option(
    *,
    multiple: bool = False,
    required: bool = True,
    help: str | None = None,
    positional: bool = True,
) -> Callable[[F], F]:
    """``-w/--workflow-id ID``; with ``multiple`` it may be repeated and arrives as a tuple.

    With ``positional`` the ids may also be given as arguments: ``herdsman workflow status 3``
    is ``herdsman workflow status -w 3``.
    """
    return _id_option(
        "workflow", multiple=multiple, required=required, help=help, positional=positional
    )


def task_option(*, multiple: bool = False, positional: bool = True) -> Callable[[F], F]:
    """``-t/--task-id ID`` (required); with ``multiple`` it may be repeated, as a tuple.

    With ``positional`` the ids may also be given as arguments (``herdsman task status 7``).
    """
    return _id_option("task", multiple=multiple, required=True, help=None, positional=positional)


def _id_option(
    noun: str, *, multiple: bool, required: bool, help: str | None, positional: bool
) -> Callable[[F], F]:
    name = f"{noun}_ids" if multiple else f"{noun}_id"
    # Jobmon's spellings too: --workflow_id (even for several), --task_id, --task_ids.
    jobmon = f"--{noun}_ids" if multiple and noun == "task" else f"--{noun}_id"
    option = click.option(
        f"-{noun[0]}",
        f"--{noun}-id",
        jobmon,
        name,
        type=click.IntRange(min=1),
        multiple=multiple,
        required=required and not positional,
        metavar="ID",
        help=help or f"{noun.capitalize()} id" + (" (repeat for several)." if multiple else "."),
    )
    if not positional:
        return option

    def decorate(command: F) -> F:
        given_name = f"{noun}_id_arguments"

        @functools.wraps(command)
        def merged(*args: Any, **kwargs: Any) -> Any:
            given: tuple[int, ...] = kwargs.pop(given_name)
            option_value = kwargs.get(name)
            from_option: list[int]
            if multiple:
                from_option = list(option_value or ())
            else:
                from_option = [] if option_value is None else [option_value]
            ids = list(dict.fromkeys([*given, *from_option]))
            flag = f"-{noun[0]}"
            if required and not ids:
                raise click.UsageError(
                    f"give the {noun} id, as an argument or with {flag} (e.g. `... 3` or "
                    f"`... {flag} 3`)"
                )
            if not multiple and len(ids) > 1:
                raise click.UsageError(f"give one {noun} id, not {len(ids)}")
            kwargs[name] = tuple(ids) if multiple else (ids[0] if ids else None)
            return command(*args, **kwargs)

        with_argument = click.argument(
            given_name,
            nargs=-1,
            type=click.IntRange(min=1),
            metavar=f"[{noun.upper()}_ID]" + ("..." if multiple else ""),
        )(merged)
        return cast(F, option(with_argument))

    return decorate


def print_json(value: pydantic.BaseModel | object) -> None:
    """Write ``value`` as indented JSON on stdout, plain: no colours, no wrapping."""
    if isinstance(value, pydantic.BaseModel):
        text = value.model_dump_json(indent=2)
    else:
        text = json.dumps(value, indent=2, default=str)
    click.echo(text)


def new_table(*columns: str, title: str | None = None) -> Table:
    """A borderless table with bold headers: easy to read, and to ``grep`` and ``awk``.

    A column named with a leading ``>`` (``">TASKS"``) holds numbers and is right-aligned.
    """
    table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for column in columns:
        if column.startswith(">"):
            table.add_column(column[1:], justify="right")
        else:
            table.add_column(column)
    return table


@contextmanager
def server_requester() -> Iterator[Requester]:
    """A requester for the configured server (the embedded one starts if none is set)."""
    from herdsman.client.embedded import default_requester

    with default_requester(load_settings()) as requester:
        yield requester


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
    # Imported here: SQLAlchemy takes a third of a second to import, and most commands never
    # print a database URL.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class CommandGroup(click.Group):
    """A command group whose help lists each command with its whole first sentence.

    click cuts a command's summary to the width left on the line and ends it with ``...``;
    here the summary is the docstring's first sentence, wrapped onto the next lines instead.
    """

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=_NO_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def with_full_summaries(group: click.Group) -> None:
    """Make ``group`` and every group under it a :class:`CommandGroup` (for groups defined
    with plain ``click.group()``)."""
    if type(group) is click.Group:
        group.__class__ = CommandGroup
    for command in group.commands.values():
        if isinstance(command, click.Group):
            with_full_summaries(command)


_NO_LIMIT = 10_000


class HerdsmanGroup(CommandGroup):
    """The root command group: turns exceptions into one red line unless ``--debug`` is on.

    It also answers to older command names (``legacy_names``: old name -> path of the new
    command), hidden from the help, with a note on stderr naming the new command; stdout
    stays clean for ``--json``.
    """

    legacy_names: dict[str, tuple[str, ...]] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        path = self.legacy_names.get(cmd_name)
        if found is not None or path is None:
            return found
        command: click.Command | None = self
        for part in path:
            if not isinstance(command, click.Group):
                return None
            command = command.get_command(ctx, part)
        if command is not None:
            error_console.print(
                f"note: `{cmd_name}` is now `herdsman {' '.join(path)}`", highlight=False
            )
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except RunInterrupted:
            if ctx.params.get("debug"):
                raise
            # The run has said in one line what became of it; nothing to add.
            ctx.exit(INTERRUPTED_EXIT)
        except KeyboardInterrupt:
            if ctx.params.get("debug"):
                raise
            error_console.print("interrupted", highlight=False)
            ctx.exit(INTERRUPTED_EXIT)
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
