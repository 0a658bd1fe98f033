"""Identity hashes: sha256 over unambiguous encodings of names and values.

Values are length-prefixed (``3:abc``) rather than joined with a separator, so no value can
imitate a boundary. Rows that exist in millions (nodes, tasks) are looked up by the first 63
bits of their sha256 as a signed 64-bit integer: an integer index is several times faster to
insert into than one on 64-character strings, and accidental collisions among even a billion
nodes of one template are improbable (about n**2 / 2**64).

Hashes of *sets* (a workflow's tasks, a DAG's edges) must not depend on the order tasks were
added (upstream sets iterate in a different order in every process) and must be computable
while streaming a million tasks without sorting them; they are the sum, modulo 2**256, of the
members' sha256 digests.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

__all__ = ["SetHash", "encode_values", "hash63", "hash_text", "hash_values63"]

_MODULUS = 1 << 256
_PAIR = struct.Struct(">qq")


def encode_values(values: Iterable[str]) -> str:
    return "".join([f"{len(value)}:{value}" for value in values])


def hash63(data: bytes) -> int:
    """The first 63 bits of sha256(data): a non-negative signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1


def hash_values63(values: Iterable[str]) -> int:
    """63-bit identity of a sequence of strings, in order."""
    return hash63(encode_values(values).encode())


def hash_text(text: str) -> str:
    """Hex sha256 of a text."""
    return hashlib.sha256(text.encode()).hexdigest()


class SetHash:
    """An order-independent sha256-based hash of a multiset, built one member at a time."""

    __slots__ = ("_count", "_total")

    def __init__(self) -> None:
        self._total = 0
        self._count = 0

    def add_pair(self, first: int, second: int) -> None:
        """Add the member (first, second), two signed 64-bit integers."""
        digest = hashlib.sha256(_PAIR.pack(first, second)).digest()
        self._total += int.from_bytes(digest, "big")
        self._count += 1

    def hexdigest(self) -> str:
        return hash_text(f"{self._count}:{self._total % _MODULUS:064x}")
