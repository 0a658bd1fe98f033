"""Which change-feed entries a follower wants; shared by the server, its followers and tests.

Every status change of a workflow's tasks, task instances and runs is one entry of the
workflow's change feed, marked with its :class:`ChangeKind`. A follower asks only for the
kinds and statuses it acts on, so it is not woken by changes it would ignore.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CHANGE_FILTER_PATTERN", "EVERY_CHANGE", "ChangeFilter", "ChangeKind"]


class ChangeKind(enum.StrEnum):
    """What a change-feed entry is a change of; the letter is what the feed stores."""

    TASK = "T"
    INSTANCE = "I"
    RUN = "R"
    LIMIT = "L"
    """A concurrency limit of the workflow or of one of its arrays changed; the entry's id is
    the workflow's, its status empty. Followers read the limits now in force from the server."""


@dataclass(frozen=True)
class ChangeFilter:
    """Which changes a follower wants: per kind, all statuses (None) or only some.

    Written on the wire as ``"TR"`` (every change of tasks and runs) or ``"T:DFGA,R"`` (tasks
    that finished, failed or went back to be queued, and every run change). A follower that
    acts on only a few statuses is then woken only for those: the swarm does not need to hear
    that a task it queued is now launched, nor the distributor that an instance it launched
    is running.
    """

    wanted: Mapping[str, frozenset[str] | None]

    @classmethod
    def of(cls, kinds: Mapping[ChangeKind, Iterable[enum.Enum] | None]) -> ChangeFilter:
        """A filter from kinds and status enums: ``{ChangeKind.RUN: None}`` for every run
        change, ``{ChangeKind.TASK: (TaskStatus.DONE,)}`` for finished tasks only."""
        return cls(
            {
                kind.value: None if statuses is None else frozenset(str(s.value) for s in statuses)
                for kind, statuses in kinds.items()
            }
        )

    @classmethod
    def parse(cls, spec: str) -> ChangeFilter:
        """The filter a query parameter spells (see :data:`CHANGE_FILTER_PATTERN`)."""
        if ":" not in spec and "," not in spec:
            return cls({kind: None for kind in spec})
        wanted: dict[str, frozenset[str] | None] = {}
        for item in spec.split(","):
            kind, _, statuses = item.partition(":")
            wanted[kind] = frozenset(statuses) if statuses else None
        return cls(wanted)

    @property
    def spec(self) -> str:
        """The filter as :meth:`parse` reads it, kinds and statuses in a fixed order."""
        if all(statuses is None for statuses in self.wanted.values()):
            return "".join(sorted(self.wanted))
        return ",".join(
            kind if statuses is None else f"{kind}:{''.join(sorted(statuses))}"
            for kind, statuses in sorted(self.wanted.items())
        )

    def __contains__(self, change: tuple[str, str]) -> bool:
        kind, status = change
        if kind not in self.wanted:
            return False
        statuses = self.wanted[kind]
        return statuses is None or status in statuses


EVERY_CHANGE = ChangeFilter.of({kind: None for kind in ChangeKind})
"""Every change of every kind: what a follower that names no filter reads."""

# The syntax ChangeFilter.parse accepts, for validating the query parameter.
CHANGE_FILTER_PATTERN = r"^([TIRL]{1,4}|[TIRL](:[A-Z]+)?(,[TIRL](:[A-Z]+)?){0,3})$"
