"""The NOTIFY payload of the change feed, and the notifier's cross-process wake-ups."""

from __future__ import annotations

import asyncio

from herdsman.core.changes import ChangeFilter
from herdsman.server.database.feed import ChangeNotifier, notice, parse_notice, sender_id


def test_a_notice_reads_back_as_what_was_written() -> None:
    written = {7: frozenset({("T", "D"), ("I", "R")}), 12: frozenset({("R", "R")})}

    sender, parsed = parse_notice(notice(written))

    assert sender == sender_id()
    assert parsed == written


def test_a_notice_too_long_for_postgresql_wakes_everyone() -> None:
    written = {workflow_id: frozenset({("T", "D")}) for workflow_id in range(1, 2_000)}

    payload = notice(written)

    assert len(payload.encode()) < 8_000
    assert parse_notice(payload) == (sender_id(), None)


def test_waiters_woken_from_elsewhere_only_for_what_they_want() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        notifier = ChangeNotifier()
        finished = notifier.watch(1, ChangeFilter.parse("T:D"))
        launched = notifier.watch(1, ChangeFilter.parse("I:O"))
        other = notifier.watch(2, ChangeFilter.parse("T"))
        notifier.wake_from_elsewhere({1: frozenset({("T", "D")})})
        return finished.is_set(), launched.is_set(), other.is_set()

    assert asyncio.run(scenario()) == (True, False, False)


def test_the_recheck_interval_applies_only_while_not_listening() -> None:
    notifier = ChangeNotifier(recheck_seconds=0.5)
    assert notifier.recheck_seconds == 0.5
    notifier.listening = True
    assert notifier.recheck_seconds is None
