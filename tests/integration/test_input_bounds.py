"""Every route, probed with integers past what columns hold, answers 4xx in the error shape.

The routes are read from the app itself (``app.routes``), so a new route is probed without
anyone adding it here. Each is sent its path parameters, its query parameters and a body built
from its OpenAPI schema, with every integer set to the probe:

* 2**63, one past the largest 64-bit id: refused as invalid input (422) on every engine, by
  validation, before the database sees it;
* 2**31, one past the largest 32-bit value: a valid 64-bit id that names nothing (404), or a
  value out of a 32-bit column's range (422), or a refusal by the server's state (409) --
  never a 5xx, and always a status the route declares in the OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from tests.support.tokens import admin_token, bearer

from herdsman.core.config import ReaperSettings
from herdsman.server.api.app import create_app

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

PAST_64_BITS = 2**63
PAST_32_BITS = 2**31


def _app(tmp_path: Path) -> FastAPI:
    """The app whose routes are probed; never started, so it touches no database."""
    return create_app(
        f"sqlite:///{tmp_path / 'unused.sqlite'}",
        key=b"k" * 32,
        upgrade_schema=False,
        reaper=ReaperSettings(enabled=False),
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _app(tmp_path_factory.mktemp("probe-app"))


def _operations(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, walking included routers where FastAPI nests them."""
    yield from _walk(app.routes, "")


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, str]]:
    for route in routes:
        # Routes left out of the OpenAPI document are the web GUI's pages (HTML, not the API).
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods):
                yield method, prefix + route.path_format
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.1xx keeps included routers as routes
            yield from _walk(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]


class _Probe:
    """Builds a request for one operation with every integer set to ``value``."""

    def __init__(self, spec: dict[str, Any], value: int) -> None:
        self.spec = spec
        self.value = value
        self.integers = 0  # of the last request built

    def request(self, method: str, path: str) -> tuple[str, dict[str, Any], Any]:
        self.integers = 0
        operation = self.spec["paths"][path][method.lower()]
        url = path
        params: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            value = self.example(parameter["schema"])
            if parameter["in"] == "path":
                url = re.sub(r"\{" + parameter["name"] + r"(:path)?\}", str(value), url)
            elif parameter["in"] == "query":
                params[parameter["name"]] = value
        body = None
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            body = self.example(content["application/json"]["schema"])
        return url, params, body

    def example(self, schema: dict[str, Any]) -> Any:
        schema = self._resolve(schema)
        for combined in ("anyOf", "oneOf", "allOf"):
            if combined in schema:
                options = [self._resolve(option) for option in schema[combined]]
                usable = [option for option in options if option.get("type") != "null"]
                return self.example(usable[0] if usable else options[0])
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "integer":
            self.integers += 1
            return self.value
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        if kind == "string":
            return "0" * 64 if "pattern" in schema else "x"
        if kind == "array":
            if "prefixItems" in schema:
                return [self.example(item) for item in schema["prefixItems"]]
            return [self.example(schema.get("items", {}))]
        if kind == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            found = {name: self.example(sub) for name, sub in properties.items()}
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and not properties:
                found[str(self.value)] = self.example(extra)
            return found
        return "x"

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            *_, kind, name = schema["$ref"].split("/")
            if kind == "$defs":
                schema = self._definition(name)
            else:
                schema = self.spec["components"]["schemas"][name]
        return schema

    def _definition(self, name: str) -> dict[str, Any]:
        # Bodies parsed by the handlers themselves embed their schema with local $defs.
        for path in self.spec["paths"].values():
            for operation in path.values():
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if name in schema.get("$defs", {}):
                    found: dict[str, Any] = schema["$defs"][name]
                    return found
        return self.spec["components"]["schemas"][name]  # type: ignore[no-any-return]


def _send(server: RunningServer, method: str, url: str, params: Any, body: Any) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.url}{url}",
        params=params,
        json=body,
        headers=bearer(admin_token()),
        timeout=60,
    )


def _assert_error_shape(response: httpx.Response) -> None:
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]


def test_every_route_is_probed(app: FastAPI) -> None:
    operations = set(_operations(app))
    documented = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }

    assert operations == documented
    assert len(operations) > 40


def test_an_integer_past_64_bits_is_422_on_every_route(server: RunningServer, app: FastAPI) -> None:
    probe = _Probe(app.openapi(), PAST_64_BITS)
    answers = {}
    for method, path in _operations(app):
        url, params, body = probe.request(method, path)
        if probe.integers == 0:
            continue  # nothing to probe (health, PUT /tools)
        response = _send(server, method, url, params, body)
        answers[f"{method} {path}"] = response.status_code
        _assert_error_shape(response)

    assert answers and set(answers.values()) == {422}, answers


def test_an_integer_past_32_bits_is_never_a_server_error(
    server: RunningServer, app: FastAPI
) -> None:
    spec = app.openapi()
    probe = _Probe(spec, PAST_32_BITS)
    undeclared = {}
    for method, path in _operations(app):
        url, params, body = probe.request(method, path)
        response = _send(server, method, url, params, body)
        assert response.status_code < 500, (method, path, response.text)
        declared = spec["paths"][path][method.lower()]["responses"]
        if str(response.status_code) not in declared:
            undeclared[f"{method} {path}"] = response.status_code
        if response.status_code >= 400:
            _assert_error_shape(response)

    assert undeclared == {}


def test_an_id_past_32_bits_names_nothing_rather_than_being_refused(
    server: RunningServer,
) -> None:
    for path in ("/workflows/{id}", "/tasks/{id}", "/workflow_runs/{id}"):
        response = httpx.get(
            f"{server.url}/api/v1{path.format(id=PAST_32_BITS)}", headers=bearer(), timeout=30
        )

        assert response.status_code == 404, response.text
        assert response.json()["error"] == "NotFoundError"


def test_routes_the_server_does_not_have_answer_in_the_error_shape(server: RunningServer) -> None:
    missing = httpx.get(f"{server.url}/api/v1/no_such_route", timeout=30)
    wrong_method = httpx.delete(f"{server.url}/api/v1/health", timeout=30)

    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFoundError"
    assert "/api/v1/no_such_route" in missing.json()["message"]
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "InvalidInputError"


def test_the_openapi_document_declares_each_route_s_error_answers(app: FastAPI) -> None:
    spec = app.openapi()
    for method, path in _operations(app):
        operation = spec["paths"][path][method.lower()]
        declared = set(operation["responses"])
        assert {"422", "500"} <= declared, (method, path)
        if path != "/api/v1/health":
            assert {"401", "403", "413"} <= declared, (method, path)
        if re.search(r"\{\w+_id\}", path):
            assert "404" in declared, (method, path)
        for status in declared - {"200"}:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBodyOut"}, (method, path, status)
