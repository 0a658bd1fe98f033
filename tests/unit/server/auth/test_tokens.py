from __future__ import annotations

import datetime as dt

import jwt
import pytest

from herdsman.core.errors import AuthenticationError
from herdsman.server.auth.tokens import Role, TokenKind, TokenSigner

KEY = b"k" * 32
DAY = dt.timedelta(days=1)


def test_a_user_token_says_who_with_which_role() -> None:
    signer = TokenSigner(KEY)
    token, issued = signer.issue_user_token("ana", Role.ADMIN, DAY)
    claims = signer.verify(token)
    assert claims == issued
    assert (claims.user, claims.role, claims.kind) == ("ana", Role.ADMIN, TokenKind.USER)
    assert claims.workflow_run_id is None


def test_a_run_token_names_its_run_and_workflow() -> None:
    signer = TokenSigner(KEY)
    token, _ = signer.issue_run_token("ana", 7, 3, DAY)
    claims = signer.verify(token)
    assert (claims.kind, claims.workflow_run_id, claims.workflow_id) == (TokenKind.RUN, 7, 3)
    assert claims.role is Role.USER


def test_every_token_has_its_own_id() -> None:
    signer = TokenSigner(KEY)
    first = signer.verify(signer.issue_user_token("ana", Role.USER, DAY)[0])
    second = signer.verify(signer.issue_user_token("ana", Role.USER, DAY)[0])
    assert first.token_id != second.token_id


def test_an_expired_token_is_refused() -> None:
    signer = TokenSigner(KEY)
    token, _ = signer.issue_user_token("ana", Role.USER, dt.timedelta(minutes=-5))
    with pytest.raises(AuthenticationError, match="expired"):
        signer.verify(token)


def test_a_token_of_another_key_is_refused() -> None:
    token, _ = TokenSigner(b"x" * 32).issue_user_token("ana", Role.ADMIN, DAY)
    with pytest.raises(AuthenticationError, match="not valid"):
        TokenSigner(KEY).verify(token)


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "ana", "role": "admin"},  # no expiry, no id
        {"sub": "ana", "jti": "1", "exp": 4_000_000_000},  # no issuer
        {"iss": "herdsman", "sub": "ana", "jti": "1", "exp": 4_000_000_000, "role": "root"},
        {"iss": "herdsman", "sub": "ana", "jti": "1", "exp": 4_000_000_000, "kind": "run"},
        {"iss": "herdsman", "sub": "a", "jti": "1", "exp": 4 * 10**9, "kind": "run", "run": "1"},
    ],
)
def test_malformed_claims_are_refused(payload: dict[str, object]) -> None:
    token = jwt.encode(payload, KEY, algorithm="HS256")
    with pytest.raises(AuthenticationError):
        TokenSigner(KEY).verify(token)


def test_an_unsigned_token_is_refused() -> None:
    payload = {"iss": "herdsman", "sub": "ana", "jti": "1", "exp": 4_000_000_000, "role": "admin"}
    token = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(AuthenticationError):
        TokenSigner(KEY).verify(token)
