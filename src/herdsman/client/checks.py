"""Checks of the authoring API's arguments, shared by Tool, TaskTemplate and Workflow.

They run when a setting is given, so a wrong value fails at the line that wrote it, with a
message naming the argument, rather than at bind time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from herdsman.core.errors import WorkflowValidationError

__all__ = [
    "attributes",
    "compute_resources",
    "fallback_queues",
    "optional_whole_number",
    "whole_number",
]


def whole_number(value: object, name: str, minimum: int) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkflowValidationError(f"{name} {value!r} must be a whole number >= {minimum}")
    return value


def optional_whole_number(value: object, name: str, minimum: int) -> int | None:
    """None for None, else as :func:`whole_number`."""
    return None if value is None else whole_number(value, name, minimum)


def attributes(value: Mapping[str, Any] | Iterable[str] | None, name: str) -> dict[str, str]:
    """Attributes as text: a mapping of name -> value, or names alone (empty values)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(key): v if type(v) is str else str(v) for key, v in value.items()}
    if isinstance(value, str):
        raise WorkflowValidationError(
            f"{name} {value!r} must be a dict of name -> value or a list of names"
        )
    return {str(key): "" for key in value}


def compute_resources(value: object) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise WorkflowValidationError(
            f"compute_resources must be a dict like {{'memory': '2G', 'cores': 1}}, not "
            f"{type(value).__name__}"
        )
    return value


def fallback_queues(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(q, str) for q in value):
        raise WorkflowValidationError(f"fallback_queues {value!r} must be a list of queue names")
    return list(value)
