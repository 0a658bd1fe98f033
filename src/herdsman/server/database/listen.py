"""Cross-process wake-ups on PostgreSQL: one LISTEN connection per server process.

Every transaction that writes to the change feed sends ``NOTIFY herdsman_changes`` with the
workflows and (kind, status) pairs it wrote (:func:`herdsman.server.database.feed.notice`).
PostgreSQL delivers it when the transaction commits, to every listening connection. Each server
process keeps one such connection (psycopg 3, autocommit, outside the pool) and wakes its own
long-poll waiters whose filters match, so a follower served by process A hears of a commit made
by process B within milliseconds instead of at its next re-read.

While the connection is down the notifier falls back to re-reading every
``server.feed_recheck_seconds``; losing the connection and regaining it both wake every waiter,
because notifications sent meanwhile are lost. The listener reconnects with a growing pause (up
to :data:`MAX_RECONNECT_SECONDS`) until the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog
from sqlalchemy.engine import make_url

from herdsman.server.database.feed import (
    NOTIFY_CHANNEL,
    ChangeNotifier,
    parse_notice,
    sender_id,
)

__all__ = ["MAX_RECONNECT_SECONDS", "listen_for_changes", "listens"]

logger = structlog.get_logger(__name__)

FIRST_RECONNECT_SECONDS = 0.5
MAX_RECONNECT_SECONDS = 10.0


def listens(database_url: str) -> bool:
    """Whether this database delivers cross-process notifications (PostgreSQL only)."""
    return make_url(database_url).get_backend_name() == "postgresql"


def _conninfo(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL URL (its driver name dropped)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def listen_for_changes(
    database_url: str, notifier: ChangeNotifier, stop: asyncio.Event
) -> None:
    """Wake ``notifier``'s waiters on other processes' commits until ``stop`` is set."""
    conninfo = _conninfo(database_url)
    own = sender_id()
    pause = FIRST_RECONNECT_SECONDS
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                notifier.listening = True
                notifier.wake_all()  # anything committed before LISTEN took effect
                logger.info("change_listener_connected")
                pause = FIRST_RECONNECT_SECONDS
                await _deliver(conn, notifier, own, stop)
        except (psycopg.Error, OSError) as error:
            logger.warning("change_listener_lost", error=str(error), retry_in=pause)
        finally:
            if notifier.listening:
                notifier.listening = False
                notifier.wake_all()  # notifications may be lost until we listen again
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, MAX_RECONNECT_SECONDS)
    logger.info("change_listener_stopped")


async def _deliver(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    notifier: ChangeNotifier,
    own: str,
    stop: asyncio.Event,
) -> None:
    """Hand notifications to the notifier until ``stop``; raises when the connection fails."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        generator = conn.notifies()
        while True:
            receiving = asyncio.ensure_future(anext(generator))
            done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await receiving
                return
            notification = receiving.result()
            try:
                sender, written = parse_notice(notification.payload)
            except ValueError:
                logger.warning("change_notice_unreadable", payload=notification.payload[:200])
                notifier.wake_all()
                continue
            if sender != own:  # our own commits woke our waiters already
                notifier.wake_from_elsewhere(written)
    finally:
        stopping.cancel()
