"""The tree memory sampler and its listener, on a real process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import psutil
import pytest

from herdsman.worker.command import become_subreaper
from herdsman.worker.usage import TreeMemorySampler

# A parent holding ~50 MiB with a child holding ~50 MiB: the tree's sum is above 100 MiB.
_TREE = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'b = bytearray(50 * 2**20); import time; time.sleep(60)'])\n"
    "b = bytearray(50 * 2**20)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    """The tree, in a session of its own so that one killpg ends the parent and the child.

    This process becomes a subreaper (as the wrapper's tests make it anyway), so the child,
    orphaned when both die, is reaped here at once instead of whenever init gets to it.
    """
    become_subreaper()
    process = subprocess.Popen([sys.executable, "-c", _TREE], start_new_session=True)
    try:
        yield process
    finally:
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            children = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        psutil.wait_procs(children, timeout=10)


def test_the_listener_gets_the_sum_of_the_tree(tree: subprocess.Popen[bytes]) -> None:
    big_enough = threading.Event()
    sums: list[int] = []

    def listen(total: int) -> None:
        sums.append(total)
        if total > 100 * 2**20:
            big_enough.set()

    sampler = TreeMemorySampler(tree.pid, interval=0.05, listener=listen)
    sampler.start()
    try:
        assert big_enough.wait(60), f"the tree's sums stayed small: {sums}"
    finally:
        sampler.stop()

    assert sampler.peak == max(sums)


def test_a_failing_listener_does_not_stop_the_sampling(tree: subprocess.Popen[bytes]) -> None:
    calls = threading.Semaphore(0)

    def broken(_total: int) -> None:
        calls.release()
        raise RuntimeError("listener bug")

    sampler = TreeMemorySampler(tree.pid, interval=0.05, listener=broken)
    sampler.start()
    try:
        assert calls.acquire(timeout=60)
        assert calls.acquire(timeout=60)  # called again after it raised
    finally:
        sampler.stop()
