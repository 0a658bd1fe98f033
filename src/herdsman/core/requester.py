"""The one HTTP client every herdsman component uses to talk to the server.

It sends JSON encoded with orjson (bind requests are large), retries transport failures and
``503`` with exponential back-off (tenacity), and turns an error answer back into the
exception class the server named, so callers catch :mod:`herdsman.core.errors` types and never
inspect status codes. Every state-changing route is idempotent, which is what makes retrying
a request whose answer was lost safe.
"""

from __future__ import annotations

import ssl
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


class Requester:
    """Sends requests to one herdsman server. Thread-safe (one httpx connection pool).

    ``token`` is the bearer token every request carries; None takes the one configured
    (``HERDSMAN_TOKEN`` or the token file, see :meth:`Settings.resolved_token`), which is how
    the distributor and its jobs find their run's token. ``ca_bundle`` is a PEM file of CAs
    to trust for an ``https://`` server (None: the system's, or the ``http.ca_bundle``
    setting).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 120.0,
        retries: int = 5,
        ca_bundle: Path | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        if token is None or ca_bundle is None:
            settings = Settings()
            token = token if token is not None else settings.resolved_token()
            ca_bundle = ca_bundle if ca_bundle is not None else settings.http.ca_bundle
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            timeout=timeout,
            headers=headers,
            verify=ssl.create_default_context(cafile=ca_bundle) if ca_bundle is not None else True,
        )

    def close(self) -> None:
        self._client.close()

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
        retrying = Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=0.1, max=10),
            retry=retry_if_exception_type(_Retryable),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send_once(method, path, content, params)
        except RetryError as error:
            cause = error.last_attempt.exception()
            raise ServerUnavailableError(
                f"the herdsman server at {self.base_url} did not answer {method} {path} after "
                f"{self.retries} attempts ({cause}); check that it is running and reachable",
                details={"url": self.base_url},
            ) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(
        self, method: str, path: str, content: bytes | None, params: dict[str, Any] | None
    ) -> bytes:
        try:
            response = self._client.request(method, path, content=content, params=params)
        except httpx.TransportError as error:
            logger.debug("request_failed", method=method, path=path, error=str(error))
            raise _Retryable(str(error)) from error
        if response.status_code == 503:
            raise _Retryable(f"503 from {path}")
        if response.status_code >= 400:
            raise _error_from(response)
        return response.content


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
