"""Running Slurm's commands: one place for timeouts, errors and back-off.

Every call to slurmctld or slurmdbd goes through :class:`SlurmCommands`, so the load herdsman
puts on the controller is visible (``counts``) and bounded: a call that times out or fails
makes the next *query* (squeue, sacct) wait, doubling from ``backoff_min`` up to
``backoff_max`` seconds, so a slow or struggling controller is not hammered while it recovers.
Submissions and cancellations are never deferred by the back-off (the caller needs their
outcome now) but count towards it.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from herdsman.core.errors import HerdsmanError

__all__ = ["SlurmCommandError", "SlurmCommands", "SlurmCommandsConfig"]

logger = structlog.get_logger(__name__)


class SlurmCommandError(HerdsmanError):
    """A Slurm command failed, timed out or could not be run; the message has its stderr."""


@dataclass(frozen=True)
class SlurmCommandsConfig:
    """Where the commands are and how long to give them (seconds).

    ``bin_dir``: the directory of sbatch, squeue, ...; None finds them on ``PATH``.
    """

    bin_dir: str | None = None
    timeout: float = 30.0
    backoff_min: float = 5.0
    backoff_max: float = 300.0


class SlurmCommands:
    """Runs Slurm commands for one plugin. Not thread-safe: the distributor calls one at a time.

    ``clock`` and ``runner`` are for tests; ``runner`` has :func:`subprocess.run`'s signature.
    """

    def __init__(
        self,
        config: SlurmCommandsConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    ) -> None:
        self._config = config
        self._clock = clock
        self._runner = runner
        self._failures = 0
        self._quiet_until = 0.0
        self.counts: Counter[str] = Counter()
        """Calls made, by command name: what herdsman asked of the controller."""

    def path(self, command: str) -> str:
        """The command's path (bare name without ``bin_dir``)."""
        return str(Path(self._config.bin_dir) / command) if self._config.bin_dir else command

    def backing_off(self) -> bool:
        """True while queries should wait for the controller to recover."""
        return self._clock() < self._quiet_until

    def run(self, command: str, args: Sequence[str], stdin: str | None = None) -> str:
        """Run ``command args``; its stdout. Raises :class:`SlurmCommandError` on failure."""
        argv = [self.path(command), *args]
        self.counts[command] += 1
        try:
            done = self._runner(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self._config.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self._failed()
            raise SlurmCommandError(
                f"{command} did not answer within {self._config.timeout:g} s (is slurmctld "
                "overloaded or down?)",
                details={"command": command},
            ) from None
        except OSError as error:
            self._failed()
            raise SlurmCommandError(
                f"cannot run {argv[0]}: {error} (set the cluster parameter 'bin_dir' to the "
                "directory of Slurm's commands)",
                details={"command": command},
            ) from None
        if done.returncode != 0:
            self._failed()
            message = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            raise SlurmCommandError(
                f"{command} failed: {message}",
                details={"command": command, "exit_code": done.returncode},
            )
        self._failures = 0
        self._quiet_until = 0.0
        return done.stdout

    def _failed(self) -> None:
        self._failures += 1
        pause = min(self._config.backoff_max, self._config.backoff_min * 2 ** (self._failures - 1))
        self._quiet_until = self._clock() + pause
        logger.warning("slurm_backing_off", failures=self._failures, seconds=pause)
