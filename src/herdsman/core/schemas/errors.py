"""The body of every error answer, whatever its status (see :mod:`herdsman.core.errors`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ErrorBodyOut"]


class ErrorBodyOut(BaseModel):
    """``error`` names the exception class (the client raises it again), ``message`` says
    what to do, ``details`` carries what a program may act on (the current status of a refused
    transition, the fields of invalid input, ...)."""

    error: str
    message: str
    details: dict[str, Any] = {}
