"""The caller of a request, from its bearer token, and the list of revoked tokens.

Verifying a token needs no database: its signature, expiry and claims say who it is. The only
shared state is the revocation list, which every server process re-reads every few seconds, so
a revoked token stops working everywhere within ``REVOCATION_REFRESH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from herdsman.core.errors import AuthenticationError
from herdsman.server.auth.oidc import OidcVerifier
from herdsman.server.auth.tokens import Claims, Role, TokenKind, TokenSigner
from herdsman.server.database import models
from herdsman.server.database.engine import Database

__all__ = ["REVOCATION_REFRESH_SECONDS", "Authenticator", "Caller", "Revocations"]

logger = structlog.get_logger(__name__)

REVOCATION_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a user (with a role), or the machinery of one workflow run."""

    user: str
    role: Role
    kind: TokenKind
    workflow_run_id: int | None = None
    workflow_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind is TokenKind.USER and self.role is Role.ADMIN

    @property
    def is_run(self) -> bool:
        return self.kind is TokenKind.RUN

    @classmethod
    def of(cls, claims: Claims) -> Caller:
        return cls(
            claims.user, claims.role, claims.kind, claims.workflow_run_id, claims.workflow_id
        )


class Revocations:
    """The ids of revoked tokens, as last read from the database."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._revoked: frozenset[str] = frozenset()

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._revoked

    def refresh(self) -> None:
        self._revoked = frozenset(self._database.read(_revoked_ids))

    async def refresh_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as error:  # a database hiccup must not end the refresher
                logger.warning("revocations_refresh_failed", error=str(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REVOCATION_REFRESH_SECONDS)


def _revoked_ids(session: Session) -> list[str]:
    now = models.utcnow()
    session.execute(delete(models.RevokedToken).where(models.RevokedToken.expires_date < now))
    return list(session.scalars(select(models.RevokedToken.token_id)))


def revoke(session: Session, token_id: str, expires: dt.datetime | None) -> bool:
    """Add a token id to the revocation list; False when it was there already."""
    if session.get(models.RevokedToken, token_id) is not None:
        return False
    session.add(models.RevokedToken(token_id=token_id, expires_date=expires))
    return True


class Authenticator:
    """Turns a bearer token into a Caller, or raises AuthenticationError."""

    def __init__(
        self, signer: TokenSigner, revocations: Revocations, oidc: OidcVerifier | None = None
    ) -> None:
        self.signer = signer
        self.revocations = revocations
        self._oidc = oidc

    def caller(self, authorization: str | None) -> Caller:
        token = _bearer(authorization)
        if self._oidc is not None and self._oidc.claims_to_verify(token):
            return Caller(self._oidc.user_of(token), Role.USER, TokenKind.USER)
        claims = self.signer.verify(token)
        if claims.token_id in self.revocations:
            raise AuthenticationError("this token has been revoked; ask for a new one")
        return Caller.of(claims)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError(
            "this request carries no credentials; send 'Authorization: Bearer <token>' (the "
            "herdsman client does so with the token of your server: see 'herdsman login')"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("credentials must be 'Authorization: Bearer <token>'")
    return token.strip()
