"""Single sign-on: the server takes the tokens of a site's OpenID Connect issuer, and only those.

The suite runs its own issuer on loopback: an RSA key of its own, a discovery document and a
JWKS endpoint, as a real issuer publishes them. A server configured with that issuer and an
audience accepts the issuer's signed tokens as the user their claim names, and refuses every
forgery an attacker could try: another key, another audience, an expired token, no
signature, the issuer's public key used as an HMAC secret, and a token without the user claim.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.conftest import ProcessRegistry, start_server_process
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX

pytestmark = pytest.mark.integration

AUDIENCE = "herdsman-test"
KEY_ID = "test-key-1"


@dataclass(frozen=True)
class Issuer:
    """A loopback OpenID Connect issuer and its private key."""

    url: str
    key: rsa.RSAPrivateKey

    def token(self, **changes: Any) -> str:
        """A token of this issuer for alice; ``changes`` replace or (with None) drop claims."""
        now = dt.datetime.now(dt.UTC)
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "0f3c",
            "preferred_username": "alice",
            "iat": now,
            "exp": now + dt.timedelta(minutes=10),
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KEY_ID})


def _serve(documents: dict[str, dict[str, Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = documents.get(self.path)
            body = json.dumps(document).encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KEY_ID, use="sig", alg="RS256")
    documents: dict[str, dict[str, Any]] = {"/jwks": {"keys": [jwk]}}
    http = _serve(documents)
    url = f"http://127.0.0.1:{http.server_address[1]}"
    documents["/.well-known/openid-configuration"] = {"issuer": url, "jwks_uri": f"{url}/jwks"}
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield Issuer(url, key)
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture
def sso_server(
    engine: str,
    fresh_database_url: str,
    processes: ProcessRegistry,
    issuer: Issuer,
    tmp_path: Path,
) -> Iterator[str]:
    """A server that takes the loopback issuer's tokens for AUDIENCE; its URL."""
    if engine != "sqlite":
        pytest.skip("single sign-on does not touch the database; SQLite is enough")
    process, info = start_server_process(
        processes,
        database_url=fresh_database_url,
        state_dir=tmp_path / "server",
        extra_env={
            "HERDSMAN_AUTH__OIDC_ISSUER": issuer.url,
            "HERDSMAN_AUTH__OIDC_AUDIENCE": AUDIENCE,
        },
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


def whoami(url: str, token: str) -> httpx.Response:
    return httpx.get(
        f"{url}{API_PREFIX}/auth/whoami",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_the_issuers_token_signs_in_as_the_user_its_claim_names(
    sso_server: str, issuer: Issuer
) -> None:
    answer = whoami(sso_server, issuer.token())
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"] == "alice"
    assert answer.json()["role"] == "user"
    # The server's own tokens still work beside the issuer's.
    assert whoami(sso_server, user_token(getpass.getuser())).json()["user"] == getpass.getuser()


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_with_public_key(issuer: Issuer) -> str:
    """The algorithm confusion attack: HS256 keyed with the issuer's (public) key. Put
    together by hand, since PyJWT refuses to sign HS256 with a PEM key."""
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expires = int(time.time()) + 600
    claims = {"iss": issuer.url, "aud": AUDIENCE, "preferred_username": "alice", "exp": expires}
    header = _base64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEY_ID}).encode())
    payload = _base64url(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_base64url(signature)}"


def _forgeries(issuer: Issuer) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": issuer.url,
        "aud": AUDIENCE,
        "preferred_username": "alice",
        "exp": now + dt.timedelta(minutes=10),
    }
    return {
        "signed by another key": jwt.encode(
            claims, other_key, algorithm="RS256", headers={"kid": KEY_ID}
        ),
        "for another audience": issuer.token(aud="another-service"),
        "expired": issuer.token(iat=now - dt.timedelta(hours=2), exp=now - dt.timedelta(hours=1)),
        "without an expiry": issuer.token(exp=None),
        "without the user claim": issuer.token(preferred_username=None),
        "unsigned (alg none)": jwt.encode(claims, None, algorithm="none"),
        "HS256 keyed with the issuer's public key": _hmac_with_public_key(issuer),
    }


def test_every_forgery_of_the_issuers_token_is_refused(sso_server: str, issuer: Issuer) -> None:
    answers = {name: whoami(sso_server, token) for name, token in _forgeries(issuer).items()}
    refused = {name: answer.status_code for name, answer in answers.items()}
    assert refused == dict.fromkeys(answers, 401), {n: a.text for n, a in answers.items()}


def test_a_signed_in_user_cannot_change_another_users_workflow(
    sso_server: str, issuer: Issuer
) -> None:
    with Requester(sso_server, token=user_token(getpass.getuser())) as owner:
        tool = Tool("sso-owner", requester=owner)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("work", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"owned-{time.time_ns()}")
        workflow.add_tasks([template.create_task(n=1)])
        workflow_id = workflow.bind()
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    with httpx.Client(base_url=sso_server + API_PREFIX, headers=headers, timeout=30) as alice:
        assert alice.get(f"/workflows/{workflow_id}").status_code == 200
        assert alice.post(f"/workflows/{workflow_id}/stop").status_code == 403
