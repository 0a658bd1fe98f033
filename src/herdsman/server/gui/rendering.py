"""The GUI's Jinja2 templates and the filters they format values with.

Templates autoescape everything: names, args, commands and output tails are the users' own
text and may hold markup.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from herdsman import __version__
from herdsman.core.limits import UNLIMITED
from herdsman.core.units import format_bytes
from herdsman.server.auth.identity import Caller
from herdsman.server.gui import status

__all__ = ["FORM_NOT_SENT", "NOTICES", "TEMPLATES", "render", "render_blocks", "templates"]

TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)

FORM_NOT_SENT = "form-not-sent"
# The one-line notices a page shows when its URL names one (``?notice=...``): fixed words, so a
# link cannot make a page say anything else.
NOTICES = {
    FORM_NOT_SENT: "Your sign-in had expired, so the form you sent was not applied; "
    "look at the page again and send it once more.",
}


def _when(value: dt.datetime | str | None) -> str:
    """A time in UTC to the second, as the CLI shows them."""
    if value is None or value == "":
        return ""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def _bytes(value: float | None) -> str:
    return "" if value is None else format_bytes(value)


def _counted(count: int, noun: str) -> str:
    """``1 task``, ``2 tasks``: a count with its noun, plural unless one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _limit(value: int) -> str:
    """A concurrency limit as a person reads it: the largest one is no limit at all."""
    return "unlimited" if value >= UNLIMITED else str(value)


templates.env.filters.update(
    when=_when, duration=_duration, size=_bytes, counted=_counted, limit=_limit
)
templates.env.globals.update(
    bucket=status.bucket_of,
    status_name=status.status_name,
    bar=status.bar,
    time_left=status.time_left,
    buckets=list(status.Bucket),
    version=__version__,
)


def render(
    request: Request,
    name: str,
    caller: Caller | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Template ``name`` with ``context``, the signed-in ``caller`` (None on sign-in and
    error pages before sign-in) and the request."""
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return templates.TemplateResponse(
        request, name, {"caller": caller, "notice": notice, **context}, status_code=status_code
    )


OUT_OF_BAND = Markup(' hx-swap-oob="true"')


def render_blocks(
    name: str, blocks: tuple[str, ...], context: dict[str, Any], *, out_of_band: bool = True
) -> str:
    """Blocks of template ``name`` alone, for a live update: each block's elements carry
    ``{{ oob }}``, here ``hx-swap-oob``, so htmx puts each in place of the element with its
    id. A block imports the macros it uses itself (a block rendered alone does not see the
    template's top-level imports). Without ``out_of_band`` the blocks are a plain fragment,
    for a request that swaps them in itself."""
    template = templates.env.get_template(name)
    out: list[str] = []
    for block in blocks:
        run = template.new_context(
            {**templates.env.globals, **context, "oob": OUT_OF_BAND if out_of_band else ""}
        )
        out.append("".join(template.blocks[block](run)))
    return "".join(out)
