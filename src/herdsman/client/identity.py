"""Identity hashes: sha256 over unambiguous encodings of names and values.

Values are length-prefixed (``3:abc``) rather than joined with a separator, so no value can
imitate a boundary. Hashes of *sets* (a workflow's tasks, a DAG's edges) must not depend on the
order tasks were added, and must be computable while streaming a million tasks without holding
them sorted; they are the sum, modulo 2**256, of the members' digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["SetHash", "encode_values", "hash_text", "hash_values"]

_MODULUS = 1 << 256


def encode_values(values: Iterable[str]) -> str:
    return "".join(f"{len(value)}:{value}" for value in values)


def hash_values(values: Iterable[str]) -> str:
    """Hex sha256 of a sequence of strings, in order."""
    return hashlib.sha256(encode_values(values).encode()).hexdigest()


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class SetHash:
    """An order-independent hash of a multiset of strings, built one member at a time."""

    __slots__ = ("_count", "_total")

    def __init__(self) -> None:
        self._total = 0
        self._count = 0

    def add(self, member: str) -> None:
        digest = hashlib.sha256(member.encode()).digest()
        self._total = (self._total + int.from_bytes(digest, "big")) % _MODULUS
        self._count += 1

    def hexdigest(self) -> str:
        return hash_text(f"{self._count}:{self._total:064x}")
