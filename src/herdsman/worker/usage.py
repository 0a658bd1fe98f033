"""Memory of a command's process tree, sampled while it runs.

``wait4``'s ``ru_maxrss`` is the peak of the *largest single process* the command waited for,
so a task that forks eight 1 GiB workers would be reported at 1 GiB. The sampler sums the
resident memory of the whole tree every half second and keeps the peak; the worker reports the
larger of the two. Short spikes between samples are missed; that is the price of sampling.

A listener may be given every sum as it is taken: the limit watcher
(:mod:`herdsman.worker.limits`) uses the same samples to enforce a memory request, with a
shorter interval, rather than listing the tree a second time in a thread of its own. The
listener is called in the sampler's thread and must return at once.

psutil is imported in the sampler's own thread, after the command has started, so the worker's
start-up does not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    import psutil

__all__ = ["SAMPLE_SECONDS", "TreeMemorySampler"]

logger = structlog.get_logger(__name__)

SAMPLE_SECONDS = 0.5


class TreeMemorySampler:
    """Samples the summed RSS (bytes) of process ``pid`` and its descendants until stopped.

    ``listener``, when given, is called with each sum (see the module docstring).
    """

    def __init__(
        self,
        pid: int,
        *,
        interval: float = SAMPLE_SECONDS,
        listener: Callable[[int], None] | None = None,
    ) -> None:
        self._pid = pid
        self._interval = interval
        self._listener = listener
        self._peak = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="herdsman-rss", daemon=True)

    @property
    def peak(self) -> int:
        """The highest sum seen, in bytes; 0 if the tree was never sampled."""
        return self._peak

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread (at most one sample's duration)."""
        self._stopped.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        # The first sample waits one interval: listing a process tree reads every process in
        # /proc, which costs more than a short command itself, and wait4's figure covers
        # commands that end sooner.
        if self._stopped.wait(self._interval):
            return
        import psutil

        try:
            root = psutil.Process(self._pid)
        except psutil.Error:
            return  # it ended before the first sample; wait4's figure covers it
        while True:
            total = _tree_rss(root)
            if total is None:
                return
            self._peak = max(self._peak, total)
            self._notify(total)
            if self._stopped.wait(self._interval):
                return

    def _notify(self, total: int) -> None:
        if self._listener is None:
            return
        try:
            self._listener(total)
        except Exception:  # a faulty listener must not end the sampling of the usage
            logger.exception("tree_memory_listener_failed", pid=self._pid)


def _tree_rss(root: psutil.Process) -> int | None:
    """Summed RSS of ``root`` and its descendants; None once ``root`` has exited."""
    import psutil

    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # exited between listing and reading, or a zombie
            continue
    return total
