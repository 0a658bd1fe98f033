"""Scaling rules and queue placement for tasks killed for resources."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herdsman.client.resources import DEFAULT_RESOURCE_SCALES
from herdsman.client.scaling import (
    IteratorScale,
    adjust_request,
    canonical_value,
    coerce_to_queue,
    fits_queue,
    place_request,
    queue_named,
    scale_request,
    scale_value,
)
from herdsman.core.errors import InvalidResourceError
from herdsman.core.schemas.client import ClusterOut, QueueOut


def queue(name: str, *, default: bool = False, **limits: tuple[float, float]) -> QueueOut:
    return QueueOut(
        id=sum(map(ord, name)),
        name=name,
        is_default=default,
        limits={key: list(bounds) for key, bounds in limits.items()},
    )


SMALL = queue("small", default=True, memory=(0.0, 4.0), runtime=(1, 3600), cores=(1, 4))
MEDIUM = queue("medium", memory=(0.0, 16.0), runtime=(1, 86_400), cores=(1, 16))
LARGE = queue("large", memory=(0.0, 64.0), runtime=(1, 604_800), cores=(1, 64))
CLUSTER = ClusterOut(id=1, name="hpc", plugin="slurm", parameters={}, queues=[SMALL, MEDIUM, LARGE])


# --- number scales --------------------------------------------------------------------------------


def test_default_scales_add_half_to_memory_and_runtime_only() -> None:
    previous = {"memory": 2.0, "runtime": 100, "cores": 2, "queue": "small", "project": "p"}
    assert scale_request(previous) == {
        "memory": 3.0,
        "runtime": 150,
        "cores": 2,
        "queue": "small",
        "project": "p",
    }
    assert scale_request(previous, None) == scale_request(previous, DEFAULT_RESOURCE_SCALES)


def test_memory_scales_in_whole_mib_rounding_up() -> None:
    # 1 GiB + 10% = 1126.4 MiB -> 1127 MiB
    assert scale_value("memory", 1.0, 0.1) == 1127 / 1024
    # 300 MiB * 1.5 = 450 MiB exactly
    assert scale_value("memory", 300 / 1024, 0.5) == 450 / 1024


def test_decimal_scales_are_exact() -> None:
    # 2.5 GiB * 1.2 is exactly 3 GiB; binary floats would round up to 3073 MiB.
    assert scale_value("memory", 2.5, 0.2) == 3.0
    assert scale_value("runtime", 100, 0.1) == 110
    assert scale_value("runtime", 3, 0.1) == 4  # 3.3 s -> 4 s


def test_other_numbers_scale_to_whole_numbers() -> None:
    assert scale_value("cores", 3, 0.5) == 5
    assert scale_value("gpus", 1, 1) == 2
    assert isinstance(scale_value("runtime", 7, 0.25), int)


def test_number_scales_compound_over_attempts() -> None:
    request: dict[str, Any] = {"memory": 1.0, "runtime": 60}
    memories = []
    for _ in range(3):
        request = scale_request(request, {"memory": 0.5, "runtime": 0.5})
        memories.append(request["memory"])
    assert memories == [1.5, 2.25, 3.375]
    assert request["runtime"] == 203  # 60 -> 90 -> 135 -> 202.5 -> 203


def test_a_number_scale_leaves_non_numbers_alone() -> None:
    assert scale_request({"queue": "small"}, {"queue": 0.5}) == {"queue": "small"}
    assert scale_value("flag", True, 0.5) is True


def test_keys_the_request_lacks_are_not_added() -> None:
    def boom(_: Any) -> Any:
        raise AssertionError("not called for a missing key")

    assert scale_request({"cores": 1}, {"memory": 0.5, "runtime": boom}) == {"cores": 1}


def test_a_bad_scale_names_the_key() -> None:
    with pytest.raises(InvalidResourceError, match=r"resource_scales\['memory'\]"):
        scale_request({"memory": 1.0}, {"memory": "double"})
    with pytest.raises(InvalidResourceError, match="finite"):
        scale_value("memory", 1.0, float("nan"))


@given(
    mib=st.integers(min_value=1, max_value=1 << 24),
    scale=st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_scaled_memory_is_whole_mib_and_never_less(mib: int, scale: float) -> None:
    value = mib / 1024
    scaled = scale_value("memory", value, scale)
    assert (scaled * 1024).is_integer()
    assert scaled >= value
    assert scaled * 1024 >= mib * (1 + scale) - 1e-6
    assert scaled * 1024 < mib * (1 + scale) + 1 + 1e-6


@given(
    seconds=st.integers(min_value=1, max_value=10**9),
    scale=st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_scaled_runtime_is_the_ceiling(seconds: int, scale: float) -> None:
    scaled = scale_value("runtime", seconds, scale)
    assert isinstance(scaled, int)
    assert seconds <= scaled <= math.ceil(seconds * (1 + scale)) + 1
    assert scaled >= seconds * (1 + scale) - 1e-6


# --- callables and iterators ----------------------------------------------------------------------


def test_a_callable_gets_the_previous_value() -> None:
    seen = []

    def double(previous: Any) -> Any:
        seen.append(previous)
        return previous * 2

    assert scale_request({"memory": 3.0}, {"memory": double}) == {"memory": 6.0}
    assert seen == [3.0]


def test_values_from_callables_and_iterators_may_use_units() -> None:
    assert scale_value("memory", 1.0, lambda _: "2G") == 2.0
    assert scale_value("runtime", 60, lambda _: "1h") == 3600
    assert scale_value("cores", 1, iter([4.0])) == 4
    assert scale_value("queue", "small", lambda _: "large") == "large"


def test_a_callable_returning_nonsense_is_refused() -> None:
    with pytest.raises(InvalidResourceError):
        scale_value("memory", 1.0, lambda _: "lots")
    with pytest.raises(InvalidResourceError, match="whole number"):
        scale_value("cores", 1, lambda _: 1.5)


def test_an_iterator_scale_keeps_its_last_value_once_exhausted() -> None:
    scale = IteratorScale(iter(["2G", "4G"]))
    request: dict[str, Any] = {"memory": 1.0}
    memories = []
    for _ in range(4):
        request = scale_request(request, {"memory": scale})
        memories.append(request["memory"])
        request["memory"] = 3.0  # e.g. clamped by a queue: the iterator's last value still wins
    assert memories == [2.0, 4.0, 4.0, 4.0]


def test_an_iterator_that_never_gave_a_value_keeps_the_previous_one() -> None:
    empty: Iterator[Any] = iter([])
    assert scale_value("memory", 1.5, IteratorScale(empty)) == 1.5
    assert scale_value("runtime", 60, iter([])) == 60


def test_a_plain_iterator_is_consumed_one_value_per_attempt() -> None:
    values = iter([10, 20])
    assert scale_value("runtime", 5, values) == 10
    assert scale_value("runtime", 10, values) == 20
    assert scale_value("runtime", 20, values) == 20


@given(st.lists(st.integers(min_value=1, max_value=10**6), max_size=5), st.integers(1, 8))
def test_iterator_scale_gives_its_values_then_repeats_the_last(
    values: list[int], attempts: int
) -> None:
    scale = IteratorScale(iter(values))
    given_values = [scale.next_value(-1) for _ in range(attempts)]
    expected = [values[min(i, len(values) - 1)] if values else -1 for i in range(attempts)]
    assert given_values == expected


def test_canonical_values() -> None:
    assert canonical_value("memory", "512M") == 0.5
    assert canonical_value("runtime", "00:01:30") == 90
    assert canonical_value("cores", 2.0) == 2
    assert canonical_value("anything", [1]) == [1]


# --- queues ---------------------------------------------------------------------------------------


def test_queue_named_and_the_default_queue() -> None:
    assert queue_named(CLUSTER, "medium") is MEDIUM
    assert queue_named(CLUSTER, None) is SMALL
    with pytest.raises(InvalidResourceError, match="'huge' is not a queue of cluster 'hpc'"):
        queue_named(CLUSTER, "huge")
    no_default = ClusterOut(id=2, name="bare", plugin="x", parameters={}, queues=[MEDIUM])
    with pytest.raises(InvalidResourceError, match="no default queue"):
        queue_named(no_default, None)


def test_fits_checks_only_limited_numbers() -> None:
    assert fits_queue(SMALL, {"memory": 4.0, "runtime": 3600, "project": "x"})
    assert not fits_queue(SMALL, {"memory": 4.001})
    assert not fits_queue(SMALL, {"cores": 0})
    assert fits_queue(SMALL, {"gpus": 99})  # not limited by this queue


def test_a_request_that_fits_stays_on_its_queue() -> None:
    request = {"queue": "small", "memory": 3.0}
    assert place_request(request, CLUSTER, ["medium", "large"]) == request


def test_a_request_without_a_queue_is_placed_on_the_default_queue() -> None:
    assert place_request({"memory": 1.0}, CLUSTER) == {"memory": 1.0, "queue": "small"}


def test_the_first_fallback_queue_that_fits_wins() -> None:
    request = {"queue": "small", "memory": 20.0, "runtime": 100}
    placed = place_request(request, CLUSTER, ["medium", "large"])
    assert placed == {"queue": "large", "memory": 20.0, "runtime": 100}
    assert place_request({**request, "memory": 5.0}, CLUSTER, ["medium", "large"])["queue"] == (
        "medium"
    )


def test_without_a_fitting_queue_the_request_is_clamped_to_the_last_one_tried() -> None:
    request = {"queue": "small", "memory": 100.0, "runtime": 10**7, "cores": 2}
    placed = place_request(request, CLUSTER, ["medium", "large"])
    assert placed == {"queue": "large", "memory": 64.0, "runtime": 604_800, "cores": 2}
    alone = place_request(request, CLUSTER)
    assert alone == {"queue": "small", "memory": 4.0, "runtime": 3600, "cores": 2}


def test_coercion_keeps_whole_numbers_whole() -> None:
    odd = queue("odd", runtime=(1.5, 99.5), memory=(0.5, 1.5))
    coerced = coerce_to_queue(odd, {"runtime": 1000, "memory": 0.1, "cores": 3})
    assert coerced == {"queue": "odd", "runtime": 99, "memory": 0.5, "cores": 3}
    assert isinstance(coerced["runtime"], int)
    assert coerce_to_queue(odd, {"runtime": 1})["runtime"] == 2


def test_an_unknown_fallback_queue_is_an_error_naming_it() -> None:
    with pytest.raises(InvalidResourceError, match="'gpu' is not a queue"):
        place_request({"queue": "small", "memory": 10.0}, CLUSTER, ["gpu"])


def test_adjust_request_scales_then_places() -> None:
    previous = {"queue": "small", "memory": 3.0, "runtime": 3000}
    adjusted = adjust_request(previous, None, CLUSTER, ["medium"])
    assert adjusted == {"queue": "medium", "memory": 4.5, "runtime": 4500}


requests = st.fixed_dictionaries(
    {
        "memory": st.floats(min_value=0.001, max_value=1000, allow_nan=False),
        "runtime": st.integers(min_value=1, max_value=10**7),
        "cores": st.integers(min_value=1, max_value=200),
    }
)
queue_names = st.sampled_from(["small", "medium", "large"])


@given(requests, queue_names, st.lists(queue_names, max_size=3))
def test_placement_always_yields_a_request_its_queue_accepts(
    request: dict[str, Any], own: str, fallbacks: list[str]
) -> None:
    placed = place_request({**request, "queue": own}, CLUSTER, fallbacks)
    chosen = queue_named(CLUSTER, placed["queue"])
    assert fits_queue(chosen, placed)
    assert placed["queue"] in {own, *fallbacks}
    if fits_queue(queue_named(CLUSTER, own), request):
        assert placed == {**request, "queue": own}
    elif placed != {**request, "queue": placed["queue"]}:
        # Clamped: no queue tried accepted it, and it went to the last one tried.
        assert placed["queue"] == (fallbacks[-1] if fallbacks else own)
        assert not any(fits_queue(queue_named(CLUSTER, q), request) for q in [own, *fallbacks])


@given(requests, st.floats(min_value=0, max_value=3, allow_nan=False))
def test_adjusted_requests_never_shrink_while_they_fit(
    request: dict[str, Any], scale: float
) -> None:
    previous = {**request, "queue": "large"}
    adjusted = adjust_request(previous, {"memory": scale, "runtime": scale}, CLUSTER)
    for key, (_, high) in LARGE.limits.items():
        assert adjusted[key] >= min(previous[key], high)
