"""Wire schemas of signing in: who the server thinks you are, and tokens it hands out."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from herdsman.core.schemas.types import UtcDateTime

__all__ = ["MungeLoginIn", "TokenOut", "WhoAmIOut"]


class WhoAmIOut(BaseModel):
    user: str
    role: str
    kind: str
    workflow_run_id: int | None = None


class MungeLoginIn(BaseModel):
    """A MUNGE credential (``munge -n``) that proves the caller's uid to the server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credential: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenOut(BaseModel):
    token: str
    token_id: str
    user: str
    role: str
    expires: UtcDateTime
