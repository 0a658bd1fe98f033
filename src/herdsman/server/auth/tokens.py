"""Signed bearer tokens (JWT, HS256 with the server's key): who, with which role, until when.

A token is only as good as its signature, its expiry and its absence from the revocation
list; the claims say everything else. Run tokens carry the run and workflow they belong to,
so checking one needs no database.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass

import jwt

from herdsman.core.errors import AuthenticationError

__all__ = ["ISSUER", "Claims", "Role", "TokenKind", "TokenSigner"]

ISSUER = "herdsman"
ALGORITHM = "HS256"
# Clocks of login nodes and servers differ by a little; a token is not refused for that.
LEEWAY_SECONDS = 30


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class TokenKind(enum.StrEnum):
    USER = "user"
    RUN = "run"


@dataclass(frozen=True)
class Claims:
    """What a verified token says."""

    user: str
    role: Role
    kind: TokenKind
    token_id: str
    expires: dt.datetime
    workflow_run_id: int | None = None
    workflow_id: int | None = None


class TokenSigner:
    """Issues and verifies the tokens of one server key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue_user_token(self, user: str, role: Role, lifetime: dt.timedelta) -> tuple[str, Claims]:
        claims = Claims(user, role, TokenKind.USER, _new_id(), _expiry(lifetime))
        return self._sign(claims), claims

    def issue_run_token(
        self, user: str, workflow_run_id: int, workflow_id: int, lifetime: dt.timedelta
    ) -> tuple[str, Claims]:
        claims = Claims(
            user,
            Role.USER,
            TokenKind.RUN,
            _new_id(),
            _expiry(lifetime),
            workflow_run_id=workflow_run_id,
            workflow_id=workflow_id,
        )
        return self._sign(claims), claims

    def verify(self, token: str) -> Claims:
        """The claims of a token this server signed; AuthenticationError for any other."""
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "jti", "iss"]},
            )
            claims = Claims(
                user=str(payload["sub"]),
                role=Role(payload.get("role", Role.USER)),
                kind=TokenKind(payload.get("kind", TokenKind.USER)),
                token_id=str(payload["jti"]),
                expires=dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC),
                workflow_run_id=_optional_int(payload.get("run")),
                workflow_id=_optional_int(payload.get("wf")),
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError(
                "your token has expired; get a new one ('herdsman login' or from the "
                "server's operator)"
            ) from None
        except (jwt.InvalidTokenError, ValueError, TypeError) as error:
            raise AuthenticationError(f"the token is not valid for this server ({error})") from None
        if claims.kind is TokenKind.RUN and (
            claims.workflow_run_id is None or claims.workflow_id is None
        ):
            raise AuthenticationError("the run token names no run")
        return claims

    def _sign(self, claims: Claims) -> str:
        payload: dict[str, object] = {
            "iss": ISSUER,
            "sub": claims.user,
            "role": claims.role.value,
            "kind": claims.kind.value,
            "jti": claims.token_id,
            "iat": int(dt.datetime.now(dt.UTC).timestamp()),
            "exp": int(claims.expires.timestamp()),
        }
        if claims.workflow_run_id is not None:
            payload["run"] = claims.workflow_run_id
            payload["wf"] = claims.workflow_id
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)


def _new_id() -> str:
    return secrets.token_hex(16)


def _expiry(lifetime: dt.timedelta) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + lifetime).replace(microsecond=0)


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an id: {value!r}")
    return value
