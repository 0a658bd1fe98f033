"""Schemathesis hooks for tests/integration/test_api_fuzz.py (loaded by SCHEMATHESIS_HOOKS).

The change feed is a long poll: a generated ``timeout`` of up to 30 s would make each of its
cases wait that long for changes nobody makes. The fuzzer keeps every other value it draws.
"""

from __future__ import annotations

from typing import Any

import schemathesis

LONG_POLL_SECONDS = 0.5


@schemathesis.hook
def map_query(context: schemathesis.HookContext, query: dict[str, Any]) -> dict[str, Any]:
    operation = context.operation
    waits = operation is not None and operation.path.endswith("/changes")
    value = query.get("timeout") if isinstance(query, dict) else None
    if waits and isinstance(value, int | float) and not isinstance(value, bool):
        query["timeout"] = min(value, LONG_POLL_SECONDS)
    return query
