"""``herdsman login`` and ``herdsman whoami``: get a token for a shared server, and check it.

On a cluster with MUNGE (every Slurm cluster has it), ``login`` proves the user's uid to the
server with a ``munge -n`` credential and keeps the token the server answers in the token file
(mode 0600). Elsewhere the server's operator issues tokens (``herdsman server token issue``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import click
from rich.markup import escape

from herdsman.cli.common import console, load_settings, server_requester
from herdsman.client import queries
from herdsman.core.requester import Requester
from herdsman.core.schemas.auth import MungeLoginIn, TokenOut

__all__ = ["login", "save_token", "whoami"]

MUNGE_SECONDS = 10


@click.command()
def login() -> None:
    """Sign in to the configured shared server with MUNGE and keep the token."""
    settings = load_settings()
    if not settings.server_url:
        raise click.ClickException(
            "no server_url is configured: the embedded server needs no login (its token is in "
            "its ready file); set server_url to your site's server first"
        )
    credential = _munge_credential()
    with Requester(settings.server_url, token="", ca_bundle=settings.http.ca_bundle) as anonymous:
        answer = anonymous.post("/auth/munge", MungeLoginIn(credential=credential), TokenOut)
    save_token(settings.token_file, answer.token)
    console.print(
        f"signed in to {escape(settings.server_url)} as {escape(answer.user)} until "
        f"{answer.expires:%Y-%m-%d %H:%M} UTC; the token is in {escape(str(settings.token_file))}",
        highlight=False,
    )


@click.command()
def whoami() -> None:
    """Show who the server takes you to be."""
    with server_requester() as requester:
        me = queries.whoami(requester)
        url = requester.base_url
    console.print(f"{escape(me.user)} ({me.role}) on {escape(url)}", highlight=False)


def save_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only (created so, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        os.fchmod(stream.fileno(), 0o600)
        stream.write(token + "\n")


def _munge_credential() -> str:
    try:
        result = subprocess.run(
            ["munge", "-n"], capture_output=True, text=True, timeout=MUNGE_SECONDS, check=False
        )
    except FileNotFoundError:
        raise click.ClickException(
            "'munge' is not installed here; ask the server's operator for a token "
            "(herdsman server token issue) and put it in HERDSMAN_TOKEN or the token file"
        ) from None
    except subprocess.TimeoutExpired:
        raise click.ClickException("munge did not answer; is munged running?") from None
    if result.returncode != 0:
        raise click.ClickException(f"munge failed: {result.stderr.strip()}")
    return result.stdout.strip()
