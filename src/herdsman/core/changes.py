"""Which change-feed entries a follower wants; shared by the server and the in-memory fake."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHANGE_FILTER_PATTERN", "ChangeFilter"]


@dataclass(frozen=True)
class ChangeFilter:
    """Which changes a follower wants: per kind, all statuses (None) or only some.

    Written ``"TR"`` (every change of tasks and runs) or ``"T:DFGA,R"`` (tasks that finished,
    failed or went back to be queued, and every run change). A follower that only acts on a
    few statuses is then woken only for those: the swarm does not need to hear that a task it
    queued is now launched, nor the distributor that an instance it launched is running.
    """

    wanted: dict[str, frozenset[str] | None]

    @classmethod
    def parse(cls, spec: str) -> ChangeFilter:
        if ":" not in spec and "," not in spec:
            return cls({kind: None for kind in spec})
        wanted: dict[str, frozenset[str] | None] = {}
        for item in spec.split(","):
            kind, _, statuses = item.partition(":")
            wanted[kind] = frozenset(statuses) if statuses else None
        return cls(wanted)

    def __contains__(self, change: tuple[str, str]) -> bool:
        kind, status = change
        if kind not in self.wanted:
            return False
        statuses = self.wanted[kind]
        return statuses is None or status in statuses


# The syntax ChangeFilter.parse accepts, for validating the query parameter.
CHANGE_FILTER_PATTERN = r"^([TIR]{1,3}|[TIR](:[A-Z]+)?(,[TIR](:[A-Z]+)?){0,2})$"
