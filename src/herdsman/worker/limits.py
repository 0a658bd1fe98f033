"""Enforcing a task's memory and runtime requests where no scheduler does.

On a cluster with a scheduler, a job that outgrows its memory or time is killed by the
scheduler, and the plugin maps that exit to Z so the task is retried with more. The local
clusters (``sequential``, ``multiprocess``) have no scheduler: without enforcement a task would
pass on a laptop and die on the cluster, or a runaway task would take the machine's memory from
every other task. So, when the plugin asks for it, the wrapper enforces the requests itself:

* Memory: the summed RSS of the command's process tree, as sampled by
  :class:`~herdsman.worker.usage.TreeMemorySampler`, against the request. The sampler then
  runs every :data:`LIMIT_SAMPLE_SECONDS` instead of every half second, because a command can
  allocate gigabytes in half a second. Its first sample still waits one interval: a command
  that ends sooner never pays for listing the tree, and cannot outgrow much in that time.
  Summed RSS counts a page shared by several processes (a fork's copy-on-write memory) once
  per process, so it errs on the high side, as a sampled figure should when it kills.
* Runtime: wall time since the command started, by a timer, against the request.

The first limit exceeded is acted on: the command's process group is terminated (SIGTERM,
the kill grace, SIGKILL), and :attr:`LimitWatcher.exceeded` holds the reason, which the wrapper
reports as a Z error with a message that says what was used, what was requested and what a
retry needs. The kill runs in the watcher's own thread, never in the sampler's: the thread
that waits for the command stops the sampler before it reaps the group, so a kill waiting in
the sampler for the group to empty would wait for itself.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from herdsman.worker.usage import SAMPLE_SECONDS

__all__ = [
    "LIMIT_SAMPLE_SECONDS",
    "LimitExceeded",
    "LimitWatcher",
    "ResourceLimits",
    "memory_exceeded",
    "runtime_exceeded",
]

logger = structlog.get_logger(__name__)

LIMIT_SAMPLE_SECONDS = 0.2
"""Seconds between memory samples while a memory request is enforced."""

_GIB = 1024**3


@dataclass(frozen=True)
class ResourceLimits:
    """What to enforce: bytes of summed RSS and seconds of wall time; None for no limit."""

    memory_bytes: int | None = None
    runtime_seconds: float | None = None

    @classmethod
    def from_request(
        cls, memory_gib: float | None, runtime_seconds: float | None
    ) -> ResourceLimits:
        """Limits from a task's request in canonical units (GiB, seconds)."""
        return cls(
            memory_bytes=None if memory_gib is None else math.ceil(memory_gib * _GIB),
            runtime_seconds=runtime_seconds,
        )

    @property
    def active(self) -> bool:
        """True when there is anything to enforce."""
        return self.memory_bytes is not None or self.runtime_seconds is not None


@dataclass(frozen=True)
class LimitExceeded:
    """Why the command was killed: which request it outgrew, and what to tell the user."""

    resource: Literal["memory", "runtime"]
    message: str


def memory_exceeded(limits: ResourceLimits, used_bytes: int) -> LimitExceeded | None:
    """The violation when ``used_bytes`` of summed RSS is more than the memory request."""
    if limits.memory_bytes is None or used_bytes <= limits.memory_bytes:
        return None
    used, requested = _gib_texts(used_bytes, limits.memory_bytes)
    return LimitExceeded(
        "memory",
        f"the command used {used} GiB, more than its memory request of {requested} GiB; "
        "killed so it can be retried with more memory",
    )


def runtime_exceeded(limits: ResourceLimits, elapsed_seconds: float) -> LimitExceeded | None:
    """The violation once ``elapsed_seconds`` of wall time reached the runtime request."""
    if limits.runtime_seconds is None or elapsed_seconds < limits.runtime_seconds:
        return None
    return LimitExceeded(
        "runtime",
        "the command ran for more than its runtime request of "
        f"{_seconds_text(limits.runtime_seconds)}; killed so it can be retried with more time",
    )


def _gib_texts(used_bytes: int, limit_bytes: int) -> tuple[str, str]:
    """Both amounts in GiB, with the fewest decimals (1 to 3) that tell them apart.

    One decimal reads best ("1.3 GiB"), but would print a 0.05 GiB request as 0.1, or say
    "used 1.0 GiB, more than its request of 1.0 GiB"; more decimals are used until neither
    happens.
    """
    used, limit = used_bytes / _GIB, limit_bytes / _GIB
    used_text = limit_text = ""
    for decimals in (1, 2, 3):
        used_text, limit_text = f"{used:.{decimals}f}", f"{limit:.{decimals}f}"
        if used_text != limit_text and math.isclose(float(limit_text), limit, rel_tol=0.01):
            break
    return used_text, limit_text


def _seconds_text(seconds: float) -> str:
    """``"5 s"``; from a minute on also as a clock time, the way runtimes are usually written."""
    if seconds < 60:
        return f"{seconds:g} s"
    from herdsman.core.units import format_runtime  # only on a kill: keeps start-up lean

    whole = math.ceil(seconds)
    return f"{whole} s ({format_runtime(whole)})"


class LimitWatcher:
    """Enforces ``limits`` on one running command; see the module docstring.

    Life cycle: create it before the command starts; give the command's memory sampler
    :attr:`sample_interval` and :attr:`memory_listener`; :meth:`start` it with the way to stop
    the command once that runs; :meth:`stop` it after the command was waited for; then read
    :attr:`exceeded`. Without :attr:`ResourceLimits.active` limits it starts no thread.
    """

    def __init__(
        self, limits: ResourceLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._pending: LimitExceeded | None = None  # a memory violation not yet acted on
        self._exceeded: LimitExceeded | None = None
        self._thread: threading.Thread | None = None

    @property
    def sample_interval(self) -> float:
        """How often the command's memory should be sampled."""
        return SAMPLE_SECONDS if self._limits.memory_bytes is None else LIMIT_SAMPLE_SECONDS

    @property
    def memory_listener(self) -> Callable[[int], None] | None:
        """What the memory sampler should call with each sum; None without a memory limit."""
        return None if self._limits.memory_bytes is None else self.observe_memory

    @property
    def exceeded(self) -> LimitExceeded | None:
        """The limit the command was killed for; None if it was not (or ended by itself)."""
        with self._lock:
            return self._exceeded

    def observe_memory(self, used_bytes: int) -> None:
        """Take one sample of the tree's summed RSS; returns at once (the sampler's thread)."""
        violation = memory_exceeded(self._limits, used_bytes)
        if violation is None:
            return
        with self._lock:
            if self._pending is None:
                self._pending = violation
        self._wake.set()

    def start(self, terminate: Callable[[], bool]) -> None:
        """Start watching; ``terminate`` stops the command, False if it had already ended.

        The runtime is counted from this call, made right after the command started.
        """
        if not self._limits.active:
            return
        started = self._clock()
        # In the caller's context: its log lines name the task and attempt (structlog's
        # context variables), which a new thread would otherwise not see.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(self._run, started, terminate),
            name="herdsman-limits",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; waits for a kill in progress (bounded by the kill grace)."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self, started: float, terminate: Callable[[], bool]) -> None:
        violation = self._wait_for_violation(started)
        if violation is None:
            return
        log = logger.bind(resource=violation.resource)
        log.warning("worker_limit_exceeded", reason=violation.message)
        try:
            stopped = terminate()
        except Exception:  # the command then ends by itself; it is reported as it ends
            log.exception("worker_limit_kill_failed")
            return
        if not stopped:
            log.info("worker_limit_command_already_ended")
            return
        with self._lock:
            self._exceeded = violation

    def _wait_for_violation(self, started: float) -> LimitExceeded | None:
        """Block until a limit is exceeded (the violation) or :meth:`stop` (None)."""
        runtime = self._limits.runtime_seconds
        while True:
            timeout = None if runtime is None else max(0.0, started + runtime - self._clock())
            woken = self._wake.wait(timeout)
            if self._stopped.is_set():
                return None
            if woken:
                with self._lock:
                    return self._pending
            violation = runtime_exceeded(self._limits, self._clock() - started)
            if violation is not None:
                return violation
