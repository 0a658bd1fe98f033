"""Tokens for tests: every server the suite starts signs with one key per test process.

``start_server_process`` gives its servers ``HERDSMAN_AUTH__KEY_FILE`` = :func:`key_file`, so a
test can make a token for any user and role without asking a server. Embedded servers started
by the library keep their own key in their data directory, as in real use.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import tempfile
from pathlib import Path

from herdsman.server.auth.keys import load_or_create_key
from herdsman.server.auth.tokens import Role, TokenSigner

__all__ = ["admin_token", "bearer", "key_file", "run_token", "user_token"]

LIFETIME = dt.timedelta(days=1)


@functools.cache
def key_file() -> Path:
    """This test process's server key (a fresh directory, removed by the OS's tmp cleaning)."""
    directory = Path(tempfile.mkdtemp(prefix=f"herdsman-test-key-{os.getpid()}-"))
    path = directory / "server.key"
    load_or_create_key(path)
    return path


def _signer() -> TokenSigner:
    return TokenSigner(load_or_create_key(key_file()))


def user_token(user: str | None = None, role: Role = Role.USER) -> str:
    """A token for ``user`` (default: the OS user running the tests)."""
    return _signer().issue_user_token(user or getpass.getuser(), role, LIFETIME)[0]


def admin_token(user: str | None = None) -> str:
    return user_token(user, Role.ADMIN)


def run_token(workflow_run_id: int, workflow_id: int, user: str | None = None) -> str:
    """The token a run's distributor and jobs carry (tests that start them by hand)."""
    return _signer().issue_run_token(
        user or getpass.getuser(), workflow_run_id, workflow_id, LIFETIME
    )[0]


def bearer(token: str | None = None) -> dict[str, str]:
    """Headers carrying ``token`` (default: the test user's), for tests that use httpx."""
    return {"authorization": f"Bearer {token or user_token()}"}
