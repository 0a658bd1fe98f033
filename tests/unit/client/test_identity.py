"""Identity hashes: unambiguous sequence hashes and order-independent multiset hashes."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herdsman.client.identity import SetHash, encode_values, hash63, hash_text, hash_values63

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(max_size=12)
text_lists = st.lists(texts, max_size=6)
pairs = st.tuples(INT64, INT64)
pair_lists = st.lists(pairs, max_size=8)


def set_hash(members: list[tuple[int, int]]) -> str:
    digest = SetHash()
    for first, second in members:
        digest.add_pair(first, second)
    return digest.hexdigest()


# --- sequences of values ----------------------------------------------------------------------


def test_values_are_length_prefixed() -> None:
    assert encode_values(["abc", "", "é:1"]) == "3:abc0:3:é:1"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (["ab", "c"], ["a", "bc"]),
        (["abc"], ["a", "b", "c"]),
        (["a", ""], ["a"]),
        (["", "a"], ["a", ""]),
        ([], [""]),
        (["1:a"], ["1", "a"]),
        (["a", "b"], ["b", "a"]),
    ],
)
def test_hash_values63_tells_apart_sequences_with_the_same_characters(
    left: list[str], right: list[str]
) -> None:
    assert encode_values(left) != encode_values(right)
    assert hash_values63(left) != hash_values63(right)


def test_hash63_is_the_first_63_bits_of_sha256() -> None:
    digest = hashlib.sha256(b"2:ab1:c").digest()

    assert hash63(b"2:ab1:c") == int.from_bytes(digest[:8], "big") >> 1
    assert hash_values63(["ab", "c"]) == hash63(b"2:ab1:c")


@given(st.binary(max_size=64))
def test_hash63_fits_a_signed_64_bit_column(data: bytes) -> None:
    assert 0 <= hash63(data) < 2**63


def test_hash_text_is_hex_sha256() -> None:
    assert hash_text("wf-args") == hashlib.sha256(b"wf-args").hexdigest()


@given(text_lists, text_lists)
def test_hash_values63_is_equal_exactly_for_equal_sequences(
    left: list[str], right: list[str]
) -> None:
    assert (hash_values63(left) == hash_values63(right)) == (left == right)


@given(text_lists, st.text(min_size=2, max_size=12), st.data())
def test_splitting_a_value_changes_the_hash(
    before: list[str], value: str, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=1, max_value=len(value) - 1))

    assert hash_values63([*before, value]) != hash_values63([*before, value[:cut], value[cut:]])


@given(text_lists)
def test_hash_values63_accepts_any_iterable(values: list[str]) -> None:
    assert hash_values63(iter(values)) == hash_values63(tuple(values)) == hash_values63(values)


# --- SetHash ----------------------------------------------------------------------------------


def test_an_empty_set_hash_is_stable() -> None:
    assert SetHash().hexdigest() == SetHash().hexdigest() == hash_text("0:" + "0" * 64)


@given(pair_lists.flatmap(lambda members: st.tuples(st.just(members), st.permutations(members))))
def test_set_hash_does_not_depend_on_order(
    shuffled: tuple[list[tuple[int, int]], list[tuple[int, int]]],
) -> None:
    members, permuted = shuffled

    assert set_hash(members) == set_hash(permuted)


@given(pair_lists, pairs)
def test_adding_a_member_changes_the_set_hash(
    members: list[tuple[int, int]], extra: tuple[int, int]
) -> None:
    assert set_hash([*members, extra]) != set_hash(members)


@given(pair_lists, pair_lists)
def test_set_hash_is_equal_exactly_for_equal_multisets(
    left: list[tuple[int, int]], right: list[tuple[int, int]]
) -> None:
    assert (set_hash(left) == set_hash(right)) == (Counter(left) == Counter(right))


@given(st.lists(st.sampled_from([(1, 2), (3, 4)]), max_size=6), st.sampled_from([(1, 2), (3, 4)]))
def test_set_hash_counts_repeated_members(
    members: list[tuple[int, int]], repeated: tuple[int, int]
) -> None:
    assert set_hash([*members, repeated, repeated]) != set_hash([*members, repeated])


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ([(1, 2)], [(1, 2), (1, 2)]),
        ([(1, 2), (1, 2), (3, 4)], [(1, 2), (3, 4), (3, 4)]),
        ([(1, 2)], [(2, 1)]),  # an edge's direction matters
        ([(-1, 0)], [(2**63 - 1, 0)]),
    ],
    ids=["once-vs-twice", "same-size-multisets", "direction", "sign"],
)
def test_set_hash_tells_apart_multisets(
    left: list[tuple[int, int]], right: list[tuple[int, int]]
) -> None:
    assert set_hash(left) != set_hash(right)


def test_hexdigest_does_not_consume_the_hash() -> None:
    digest = SetHash()
    digest.add_pair(1, 2)
    first = digest.hexdigest()

    assert digest.hexdigest() == first
    digest.add_pair(3, 4)
    assert digest.hexdigest() == set_hash([(3, 4), (1, 2)])
