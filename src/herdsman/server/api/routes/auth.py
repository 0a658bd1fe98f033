"""Routes of identity: who am I, sign in with MUNGE, and a run's own token."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from herdsman.core.errors import PermissionDeniedError
from herdsman.core.schemas import auth as schemas
from herdsman.core.schemas.types import Id
from herdsman.server.api.access import CallerDep
from herdsman.server.api.responses import METERED_ERRORS, errors
from herdsman.server.auth.munge import user_of_credential
from herdsman.server.auth.tokens import Claims, Role, TokenSigner

__all__ = ["router"]

router = APIRouter(tags=["auth"], responses=METERED_ERRORS)


@router.get("/auth/whoami")
def get_whoami(caller: CallerDep) -> schemas.WhoAmIOut:
    return schemas.WhoAmIOut(
        user=caller.user,
        role=caller.role.value,
        kind=caller.kind.value,
        workflow_run_id=caller.workflow_run_id,
    )


@router.post("/auth/munge")
async def post_munge_login(body: schemas.MungeLoginIn, request: Request) -> schemas.TokenOut:
    """A user token for the uid that made the MUNGE credential (when the server allows it)."""
    settings = request.app.state.auth_settings
    if not settings.munge:
        raise PermissionDeniedError(
            "this server does not sign users in with MUNGE; ask its operator for a token"
        )
    user = await run_in_threadpool(user_of_credential, body.credential)
    signer: TokenSigner = request.app.state.signer
    lifetime = dt.timedelta(days=settings.login_token_days)
    token, claims = signer.issue_user_token(user, Role.USER, lifetime)
    return _token_out(token, claims)


@router.post("/workflow_runs/{run_id}/token", responses=errors(404))
def post_run_token(run_id: Id, request: Request) -> schemas.TokenOut:
    """The token of this run's distributor and jobs; only the run's owner (or an admin) asks.

    It names the workflow's owner, whoever asked: the jobs act for the owner.
    """
    ownership = request.app.state.ownership.lookup("run_id", run_id)
    signer: TokenSigner = request.app.state.signer
    lifetime = dt.timedelta(days=request.app.state.auth_settings.run_token_days)
    token, claims = signer.issue_run_token(ownership.owner, run_id, ownership.workflow_id, lifetime)
    return _token_out(token, claims)


def _token_out(token: str, claims: Claims) -> schemas.TokenOut:
    return schemas.TokenOut(
        token=token,
        token_id=claims.token_id,
        user=claims.user,
        role=claims.role.value,
        expires=claims.expires,
    )
