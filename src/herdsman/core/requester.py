"""The one HTTP client every herdsman component uses to talk to the server.

It sends JSON encoded with orjson (bind requests are large), retries transport failures and
``503`` with exponential back-off (tenacity), and turns an error answer back into the
exception class the server named, so callers catch :mod:`herdsman.core.errors` types and never
inspect status codes. Every state-changing route is idempotent, which is what makes retrying
a request whose answer was lost safe.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import structlog
from pydantic import BaseModel
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from herdsman.core.config import Settings
from herdsman.core.errors import ServerUnavailableError, error_class_by_name
from herdsman.core.schemas import API_PREFIX

__all__ = ["Body", "Requester", "encode_json"]

logger = structlog.get_logger(__name__)


M = TypeVar("M", bound=BaseModel)

Body = BaseModel | dict[str, Any] | bytes
"""A request body: a model, a dict of plain values (encoded by orjson), or JSON bytes."""


class _Retryable(Exception):
    """A transport failure or 503 worth another attempt."""


Recover = Callable[[str], "str | None"]
"""Called with the URL that stopped answering; returns the URL to try again, or None."""

# How often one request may ask ``recover`` for a server before it gives up.
MAX_RECOVERIES = 3


class Requester:
    """Sends requests to one herdsman server. Thread-safe (one httpx connection pool).

    ``token`` is the bearer token every request carries; None takes the one configured
    (``HERDSMAN_TOKEN`` or the token file, see :meth:`Settings.resolved_token`), which is how
    the distributor and its jobs find their run's token. ``ca_bundle`` is a PEM file of CAs
    to trust for an ``https://`` server (None: the system's, or the ``http.ca_bundle``
    setting).

    ``recover``: what to do when the server stopped answering (after ``retries`` attempts):
    the embedded server's owner passes a function that starts it again on the same database
    (:class:`herdsman.client.embedded.EmbeddedRecovery`) and returns its URL, which may
    have changed; the request is then sent again there. Without it, the request fails with
    :class:`ServerUnavailableError`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 120.0,
        retries: int = 5,
        ca_bundle: Path | None = None,
        recover: Recover | None = None,
    ) -> None:
        if token is None or ca_bundle is None:
            settings = Settings()
            token = token if token is not None else settings.resolved_token()
            ca_bundle = ca_bundle if ca_bundle is not None else settings.http.ca_bundle
        self._headers = {"content-type": "application/json"}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_bundle) if ca_bundle is not None else True
        )
        self.retries = retries
        self._timeout = timeout
        self._recover = recover
        self._lock = threading.Lock()
        self._retired: list[httpx.Client] = []
        self.base_url = base_url.rstrip("/")
        self._client = self._new_client(self.base_url)

    @property
    def recover(self) -> Recover | None:
        """What this requester calls when its server stopped answering (see the class)."""
        return self._recover

    def _new_client(self, base_url: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url + API_PREFIX,
            timeout=self._timeout,
            headers=self._headers,
            verify=self._verify,
        )

    def close(self) -> None:
        for client in (*self._retired, self._client):
            client.close()

    def __enter__(self) -> Requester:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        return reply.model_validate_json(self._send("GET", path, None, params))

    def put(self, path: str, body: Body, reply: type[M]) -> M:
        return reply.model_validate_json(self._send("PUT", path, body, None))

    def post(self, path: str, body: Body | None, reply: type[M]) -> M:
        return reply.model_validate_json(self._send("POST", path, body, None))

    def _send(
        self,
        method: str,
        path: str,
        body: Body | None,
        params: dict[str, Any] | None,
    ) -> bytes:
        content = None if body is None else encode_json(body)
        recoveries = 0
        while True:
            response, failure = self._attempts(method, path, content, params)
            if response is not None:
                break
            if self._recover is None or recoveries >= MAX_RECOVERIES:
                # Raised here, outside the retry machinery and without its chain: the message
                # says all there is to say, and the frames of tenacity and httpx do not.
                raise ServerUnavailableError(
                    f"the herdsman server at {self.base_url} did not answer {method} {path} "
                    f"after {self.retries} attempts ({failure}); check that it is running and "
                    "reachable",
                    details={"url": self.base_url},
                ) from None
            recoveries += 1
            self._switch_to(self._recover(self.base_url))
        if response.status_code >= 400:
            raise _error_from(response)
        return response.content

    def _attempts(
        self, method: str, path: str, content: bytes | None, params: dict[str, Any] | None
    ) -> tuple[httpx.Response | None, str]:
        """The answer (any status but 503), or None and the last failure after the retries."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=0.1, max=10),
            retry=retry_if_exception_type(_Retryable),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, path, content, params), ""
        except RetryError as error:
            return None, str(error.last_attempt.exception())
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(
        self, method: str, path: str, content: bytes | None, params: dict[str, Any] | None
    ) -> httpx.Response:
        client = self._client
        try:
            response = client.request(method, path, content=content, params=params)
        except httpx.TransportError as error:
            logger.debug("request_failed", method=method, path=path, error=str(error))
            raise _Retryable(str(error)) from error
        if response.status_code == 503:
            raise _Retryable(f"503 from {path}")
        return response

    def _switch_to(self, url: str | None) -> None:
        """Talk to ``url`` from now on (the recovered server); None keeps the current one."""
        if url is None:
            return
        url = url.rstrip("/")
        with self._lock:
            if url == self.base_url:
                return
            # The old client is closed with the requester, not now: another thread may still
            # be sending through it (it fails over to the new one on its next attempt).
            self._retired.append(self._client)
            self._client = self._new_client(url)
            logger.info("requester_server_moved", old_url=self.base_url, url=url)
            self.base_url = url


def encode_json(body: Body) -> bytes:
    """The JSON a request sends for ``body``; bytes are taken as JSON encoded already.

    A caller that must know a body's size (bind keeps each under the server's limit) encodes
    it once with this and hands the bytes over.
    """
    if isinstance(body, bytes):
        return body
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def _error_from(response: httpx.Response) -> Exception:
    try:
        payload = response.json()
        name, message = payload["error"], payload["message"]
        details = payload.get("details") or {}
    except (ValueError, KeyError, TypeError):
        name = "ServerError"
        message = f"{response.request.method} {response.request.url.path} failed with HTTP "
        message += f"{response.status_code}: {response.text[:500]}"
        details = {}
    return error_class_by_name(name)(
        message, details={**details, "http_status": response.status_code}
    )
