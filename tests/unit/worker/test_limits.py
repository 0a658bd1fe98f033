"""The limit watcher's decisions and life cycle, with a fake clock and a fake kill.

Nothing here runs a command or waits for a limit in real time: the clock jumps, and the
watcher's thread finds the runtime passed on its first look.
"""

from __future__ import annotations

import threading

import pytest

from herdsman.worker.limits import (
    LIMIT_SAMPLE_SECONDS,
    LimitExceeded,
    LimitWatcher,
    ResourceLimits,
    memory_exceeded,
    runtime_exceeded,
)
from herdsman.worker.usage import SAMPLE_SECONDS

GIB = 1024**3


class JumpingClock:
    """Each reading is ``step`` seconds after the previous one."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class FakeKill:
    """Stands in for terminating the command; answers whether there was a command to stop."""

    def __init__(self, *, command_alive: bool = True) -> None:
        self.calls = 0
        self.command_alive = command_alive
        self.called = threading.Event()

    def __call__(self) -> bool:
        self.calls += 1
        self.called.set()
        return self.command_alive


# --- limits from a request ------------------------------------------------------------------


def test_a_request_in_gib_becomes_bytes() -> None:
    limits = ResourceLimits.from_request(0.5, 90.0)

    assert limits == ResourceLimits(memory_bytes=GIB // 2, runtime_seconds=90.0)
    assert limits.active


def test_no_request_is_no_limit() -> None:
    assert not ResourceLimits.from_request(None, None).active
    assert ResourceLimits.from_request(None, 5.0).active
    assert ResourceLimits.from_request(2.0, None).active


# --- the decisions --------------------------------------------------------------------------


def test_memory_within_the_request_is_fine() -> None:
    limits = ResourceLimits(memory_bytes=GIB)

    assert memory_exceeded(limits, GIB // 2) is None
    assert memory_exceeded(limits, GIB) is None  # exactly the request is allowed
    assert memory_exceeded(ResourceLimits(), 100 * GIB) is None


def test_memory_above_the_request_says_what_was_used_and_requested() -> None:
    exceeded = memory_exceeded(ResourceLimits(memory_bytes=GIB), int(1.3 * GIB))

    assert exceeded == LimitExceeded(
        "memory",
        "the command used 1.3 GiB, more than its memory request of 1.0 GiB; "
        "killed so it can be retried with more memory",
    )


@pytest.mark.parametrize(
    ("used_gib", "limit_gib", "used_text", "limit_text"),
    [
        (0.29, 0.1, "0.3", "0.1"),
        (1.04, 1.0, "1.04", "1.00"),  # one decimal would show the two equal
        (0.3, 0.05, "0.30", "0.05"),  # one decimal would print the request as 0.1
        (12.0, 8.0, "12.0", "8.0"),
    ],
)
def test_memory_amounts_are_told_apart(
    used_gib: float, limit_gib: float, used_text: str, limit_text: str
) -> None:
    exceeded = memory_exceeded(
        ResourceLimits(memory_bytes=int(limit_gib * GIB)), int(used_gib * GIB)
    )

    assert exceeded is not None
    assert f"used {used_text} GiB, more than its memory request of {limit_text} GiB" in (
        exceeded.message
    )


def test_runtime_below_the_request_is_fine() -> None:
    assert runtime_exceeded(ResourceLimits(runtime_seconds=5), 4.9) is None
    assert runtime_exceeded(ResourceLimits(), 1e9) is None


def test_runtime_reached_says_what_was_requested() -> None:
    exceeded = runtime_exceeded(ResourceLimits(runtime_seconds=5), 5.0)

    assert exceeded == LimitExceeded(
        "runtime",
        "the command ran for more than its runtime request of 5 s; "
        "killed so it can be retried with more time",
    )


def test_a_long_runtime_request_is_also_shown_as_a_clock_time() -> None:
    exceeded = runtime_exceeded(ResourceLimits(runtime_seconds=5400), 5400.5)

    assert exceeded is not None
    assert "runtime request of 5400 s (01:30:00);" in exceeded.message


# --- the watcher ----------------------------------------------------------------------------


def test_the_sampling_follows_the_memory_limit() -> None:
    with_memory = LimitWatcher(ResourceLimits(memory_bytes=GIB))
    runtime_only = LimitWatcher(ResourceLimits(runtime_seconds=5))

    assert with_memory.sample_interval == LIMIT_SAMPLE_SECONDS
    assert with_memory.memory_listener is not None
    assert runtime_only.sample_interval == SAMPLE_SECONDS
    assert runtime_only.memory_listener is None


def test_without_limits_nothing_is_watched() -> None:
    watcher = LimitWatcher(ResourceLimits())
    kill = FakeKill()

    watcher.start(kill)
    watcher.stop()

    assert kill.calls == 0
    assert watcher.exceeded is None


def test_a_runtime_past_the_request_kills_the_command() -> None:
    watcher = LimitWatcher(ResourceLimits(runtime_seconds=5), clock=JumpingClock(10))
    kill = FakeKill()

    watcher.start(kill)
    kill.called.wait(30)
    watcher.stop()

    assert kill.calls == 1
    assert watcher.exceeded is not None
    assert watcher.exceeded.resource == "runtime"


def test_a_runtime_still_within_the_request_kills_nothing() -> None:
    # An hour's request with a clock that barely moves: the watcher waits until stopped.
    watcher = LimitWatcher(ResourceLimits(runtime_seconds=3600), clock=JumpingClock(0.001))
    kill = FakeKill()

    watcher.start(kill)
    watcher.stop()

    assert kill.calls == 0
    assert watcher.exceeded is None


def test_memory_above_the_request_kills_the_command_once() -> None:
    watcher = LimitWatcher(ResourceLimits(memory_bytes=GIB))
    kill = FakeKill()
    watcher.start(kill)

    watcher.observe_memory(GIB // 2)
    watcher.observe_memory(2 * GIB)
    watcher.observe_memory(3 * GIB)  # a later sample does not change the reason
    kill.called.wait(30)
    watcher.stop()

    assert kill.calls == 1
    assert watcher.exceeded is not None
    assert "used 2.0 GiB" in watcher.exceeded.message


def test_memory_within_the_request_kills_nothing() -> None:
    watcher = LimitWatcher(ResourceLimits(memory_bytes=GIB))
    kill = FakeKill()
    watcher.start(kill)

    watcher.observe_memory(GIB)
    watcher.stop()

    assert kill.calls == 0
    assert watcher.exceeded is None


def test_a_sample_taken_before_the_start_still_counts() -> None:
    # The sampler starts with the command, just before the watcher does.
    watcher = LimitWatcher(ResourceLimits(memory_bytes=GIB))
    kill = FakeKill()

    watcher.observe_memory(2 * GIB)
    watcher.start(kill)
    kill.called.wait(30)
    watcher.stop()

    assert watcher.exceeded is not None
    assert watcher.exceeded.resource == "memory"


def test_the_first_limit_exceeded_is_the_reason() -> None:
    # Memory is over before the watcher's first look at the (long passed) runtime.
    watcher = LimitWatcher(
        ResourceLimits(memory_bytes=GIB, runtime_seconds=5), clock=JumpingClock(10)
    )
    kill = FakeKill()

    watcher.observe_memory(2 * GIB)
    watcher.start(kill)
    kill.called.wait(30)
    watcher.stop()

    assert kill.calls == 1
    assert watcher.exceeded is not None
    assert watcher.exceeded.resource == "memory"


def test_a_command_that_had_already_ended_was_not_killed_for_a_limit() -> None:
    watcher = LimitWatcher(ResourceLimits(runtime_seconds=5), clock=JumpingClock(10))
    kill = FakeKill(command_alive=False)

    watcher.start(kill)
    kill.called.wait(30)
    watcher.stop()

    assert kill.calls == 1
    assert watcher.exceeded is None


def test_a_failing_kill_is_not_a_limit_kill() -> None:
    watcher = LimitWatcher(ResourceLimits(runtime_seconds=5), clock=JumpingClock(10))
    called = threading.Event()

    def broken_kill() -> bool:
        called.set()
        raise OSError("no such process group")

    watcher.start(broken_kill)
    called.wait(30)
    watcher.stop()

    assert watcher.exceeded is None
