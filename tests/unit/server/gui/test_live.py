"""The live streams' pure parts: the shared fragment cache, the event format, and the loop's
coalescing (driven with a fake database and pause, so no test waits on the clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from types import SimpleNamespace
from typing import Any

import pytest

from herdsman.server.database.feed import ChangeNotifier
from herdsman.server.gui import live


def test_a_fragment_is_computed_once_for_all_who_ask_at_once() -> None:
    cache = live.FragmentCache()
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # others ask while this one computes
        return f"fragment {calls}"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(cache.get(("w", 1, 7), compute) for _ in range(20))))

    assert asyncio.run(main()) == ["fragment 1"] * 20
    assert calls == 1
    assert cache.computed == 1


def test_each_feed_position_is_its_own_fragment_and_old_ones_are_dropped() -> None:
    cache = live.FragmentCache(entries=2)
    computed: list[int] = []

    def at(position: int) -> Callable[[], Any]:
        async def compute() -> str:
            computed.append(position)
            return str(position)

        return compute

    async def main() -> None:
        for position in (1, 2, 1, 3, 1):
            assert await cache.get(("w", 1, position), at(position)) == str(position)

    asyncio.run(main())
    # 1 and 2 computed; 1 again from the cache; 3 pushes out 2 (1 was used last); 1 kept.
    assert computed == [1, 2, 3]


def test_a_failed_fragment_is_not_kept() -> None:
    cache = live.FragmentCache()
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("database went away")
        return "ok"

    async def main() -> str:
        with pytest.raises(RuntimeError, match="went away"):
            await cache.get("key", flaky)
        return await cache.get("key", flaky)

    assert asyncio.run(main()) == "ok"
    assert attempts == 2


def test_events_put_every_line_in_its_own_data_field() -> None:
    assert live.sse_event("update", "<p>a</p>\n<p>b</p>") == (
        "event: update\ndata: <p>a</p>\ndata: <p>b</p>\n\n"
    )
    assert live.sse_event("update", "") == "event: update\ndata: \n\n"


class FakeDatabase:
    def __init__(self, positions: list[int]) -> None:
        self.positions = positions
        self.reads = 0

    def read(self, query: Callable[[Any], Hashable]) -> Hashable:
        self.reads += 1
        return query(None)


def _updates(
    monkeypatch: pytest.MonkeyPatch, positions: list[int], wanted: int
) -> tuple[list[str], list[str]]:
    """Run ``follow`` over a feed at ``positions`` (one per read) until ``wanted`` updates;
    what happened in order: reads, events, pauses and waits."""
    log: list[str] = []
    database = FakeDatabase(positions)
    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(database=database, notifier=ChangeNotifier())),
        url=SimpleNamespace(path="/workflows/1/live"),
    )

    def position(_: object) -> Hashable:
        index = min(database.reads - 1, len(positions) - 1)
        log.append(f"read {positions[index]}")
        return positions[index]

    async def fragment(at: Hashable) -> str:
        return f"counts at {at}"

    async def pause(seconds: float) -> None:
        log.append(f"pause {seconds}")

    async def wait_any(events: object, timeout: float) -> None:
        log.append("wait")
        await asyncio.sleep(0)

    monkeypatch.setattr(live, "_pause", pause)
    monkeypatch.setattr(live, "_wait_any", wait_any)

    async def main() -> list[str]:
        events: AsyncIterator[str] = live.follow(
            request,  # type: ignore[arg-type]
            [1],
            position,
            fragment,
        )
        sent = []
        async for event in events:
            if event.startswith("event:"):
                sent.append(event)
                log.append("event")
                if len(sent) == wanted:
                    break
        await events.aclose()  # type: ignore[attr-defined]
        return sent

    return asyncio.run(main()), log


def test_a_busy_feed_sends_one_event_per_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    sent, log = _updates(monkeypatch, [1, 2, 3, 4, 5], wanted=3)
    assert [event.splitlines()[1] for event in sent] == [
        "data: counts at 1",
        "data: counts at 2",
        "data: counts at 3",
    ]
    # Every event is followed by the coalescing pause before the feed is read again.
    assert log[:8] == [
        "read 1",
        "event",
        f"pause {live.MIN_INTERVAL_SECONDS}",
        "read 2",
        "event",
        f"pause {live.MIN_INTERVAL_SECONDS}",
        "read 3",
        "event",
    ]


def test_a_quiet_feed_sends_nothing_and_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    sent, log = _updates(monkeypatch, [4, 4, 4, 4, 9], wanted=2)
    assert [event.splitlines()[1] for event in sent] == ["data: counts at 4", "data: counts at 9"]
    assert log == [
        "read 4",
        "event",
        f"pause {live.MIN_INTERVAL_SECONDS}",
        "read 4",
        "wait",
        "read 4",
        "wait",
        "read 4",
        "wait",
        "read 9",
        "event",
    ]


def test_a_stream_ends_after_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "STREAM_LIFETIME_SECONDS", 0.0)
    sent, log = _updates(monkeypatch, [1, 2], wanted=1)
    assert sent == []  # ended before reading: the browser reconnects, checked again
    assert log == []


def test_a_fragment_abandoned_by_its_viewer_is_computed_by_the_next() -> None:
    cache = live.FragmentCache()
    started = asyncio.Event()
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await asyncio.sleep(3600)  # cancelled: its viewer goes away
        return "fragment"

    async def main() -> str:
        first = asyncio.ensure_future(cache.get("key", compute))
        await started.wait()
        second = asyncio.ensure_future(cache.get("key", compute))
        await asyncio.sleep(0)  # the second now waits on the first's computation
        first.cancel()
        return await second

    assert asyncio.run(main()) == "fragment"
    assert calls == 2
