"""Bearer tokens from a site's OpenID Connect issuer (single sign-on), checked with its JWKS.

The issuer's signing keys are found through its discovery document
(``<issuer>/.well-known/openid-configuration`` → ``jwks_uri``) and cached by PyJWT's JWKS
client. A token is taken as an OIDC token when its ``iss`` claim names the configured issuer;
every other token is one of this server's own.
"""

from __future__ import annotations

import httpx
import jwt

from herdsman.core.errors import AuthenticationError

__all__ = ["OidcVerifier"]

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]
LEEWAY_SECONDS = 30


class OidcVerifier:
    """Verifies the ID or access tokens of one issuer for one audience."""

    def __init__(self, issuer: str, audience: str | None, user_claim: str) -> None:
        self._issuer = issuer.rstrip("/")
        self._audience = audience
        self._user_claim = user_claim
        self._jwks: jwt.PyJWKClient | None = None

    def claims_to_verify(self, token: str) -> bool:
        """Whether ``token`` says it comes from this issuer (its signature is not checked yet)."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return str(unverified.get("iss", "")).rstrip("/") == self._issuer

    def user_of(self, token: str) -> str:
        """The user a valid token of this issuer names; AuthenticationError otherwise."""
        try:
            key = self._client().get_signing_key_from_jwt(token)
            payload = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss"], "verify_aud": self._audience is not None},
            )
        except (jwt.InvalidTokenError, jwt.PyJWKClientError, httpx.HTTPError) as error:
            raise AuthenticationError(f"the single sign-on token is not valid ({error})") from None
        user = payload.get(self._user_claim)
        if not isinstance(user, str) or not user:
            raise AuthenticationError(
                f"the single sign-on token has no '{self._user_claim}' claim naming the user"
            )
        return user

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            discovery = httpx.get(
                f"{self._issuer}/.well-known/openid-configuration", timeout=10
            ).raise_for_status()
            self._jwks = jwt.PyJWKClient(discovery.json()["jwks_uri"], cache_keys=True)
        return self._jwks
