"""``herdsman server token issue|revoke``: the operator hands out and withdraws user tokens.

Both work on the server's host, as the user the server runs as: issuing signs with the
server's key file (``auth.key_file``), revoking writes to its database.
"""

from __future__ import annotations

import datetime as dt
import re

import click
from rich.markup import escape

from herdsman.cli.common import console, database_url_option, error_console, load_settings
from herdsman.cli.database import on_database

__all__ = ["parse_lifetime", "token"]

_LIFETIME = re.compile(r"^(?P<count>\d+)(?P<unit>[mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_lifetime(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` as a duration; ValueError for anything else."""
    match = _LIFETIME.match(text.strip())
    if match is None or int(match.group("count")) == 0:
        raise ValueError(f"{text!r} is not a lifetime; write e.g. 30d, 12h, 90m or 2w")
    return dt.timedelta(**{_UNITS[match.group("unit")]: int(match.group("count"))})


def _lifetime(_ctx: click.Context, _param: click.Parameter, value: str) -> dt.timedelta:
    try:
        return parse_lifetime(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.group()
def token() -> None:
    """Issue and revoke users' tokens (run on the server's host, as its user)."""


@token.command()
@click.option("--user", "user", required=True, help="The user the token names.")
@click.option(
    "--role",
    type=click.Choice(["user", "admin"]),
    default="user",
    show_default=True,
    help="An admin may change and run anyone's workflows.",
)
@click.option(
    "--expires",
    "lifetime",
    default="30d",
    show_default=True,
    callback=_lifetime,
    help="How long the token is valid: 90m, 12h, 30d, 2w.",
)
def issue(user: str, role: str, lifetime: dt.timedelta) -> None:
    """Print a new token for USER; give it to them to keep in HERDSMAN_TOKEN or token_file."""
    from herdsman.server.auth.keys import load_or_create_key
    from herdsman.server.auth.tokens import Role, TokenSigner

    key = load_or_create_key(load_settings().resolved_key_file())
    signed, claims = TokenSigner(key).issue_user_token(user, Role(role), lifetime)
    error_console.print(
        f"token for {escape(user)} ({role}), id {claims.token_id}, valid until "
        f"{claims.expires:%Y-%m-%d %H:%M} UTC:",
        highlight=False,
    )
    click.echo(signed)


@token.command()
@click.argument("token_or_id")
@database_url_option
def revoke(token_or_id: str, database_url: str | None) -> None:
    """Refuse a token from now on, by the token itself or by its id (shown when issued).

    Servers notice within seconds.
    """
    from herdsman.server.auth.identity import revoke as add_revocation
    from herdsman.server.auth.keys import load_or_create_key
    from herdsman.server.auth.tokens import TokenSigner

    token_id, expires = token_or_id, None
    if "." in token_or_id:  # a whole token: check it is ours and take its id
        key = load_or_create_key(load_settings().resolved_key_file())
        claims = TokenSigner(key).verify(token_or_id)
        token_id, expires = claims.token_id, claims.expires.replace(tzinfo=None)
    added = on_database(database_url, lambda s: add_revocation(s, token_id, expires), write=True)
    console.print(
        f"token {token_id} revoked" if added else f"token {token_id} was already revoked",
        highlight=False,
    )
