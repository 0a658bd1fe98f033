"""CSRF tokens for the GUI's forms that change something.

The sign-in cookie is SameSite=Strict and forms from another origin are refused already; a
token in each form is the third guard, for browsers and proxies that send neither. It is an
HMAC of the signed-in session's token under a key derived from the server's signing key: it
changes with each sign-in, needs no storage, holds across server restarts and processes, and
no page of another site can compute it (the cookie is HttpOnly).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["FIELD", "form_key", "matches", "token_for"]

FIELD = "csrf_token"


def form_key(server_key: bytes) -> bytes:
    """The key of the CSRF tokens, derived from the server's signing key (never the key)."""
    return hmac.new(server_key, b"herdsman gui csrf v1", hashlib.sha256).digest()


def token_for(key: bytes, session_token: str) -> str:
    """The CSRF token of the session signed in with ``session_token``."""
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def matches(key: bytes, session_token: str, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (compared in constant time)."""
    if not sent or not session_token:
        return False
    return hmac.compare_digest(token_for(key, session_token), sent)
