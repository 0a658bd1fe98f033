"""Order statistics of the usage report, computed in Python so every engine agrees."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herdsman.server.queries.usage import statistics_of


def test_no_values_have_no_statistics() -> None:
    assert statistics_of([]) is None


def test_one_value_is_every_statistic() -> None:
    found = statistics_of([4.0])
    assert found is not None
    assert (found.count, found.min, found.mean, found.median, found.p95, found.max) == (
        1,
        4.0,
        4.0,
        4.0,
        4.0,
        4.0,
    )


def test_quantiles_interpolate_between_order_statistics() -> None:
    found = statistics_of([10.0, 0.0, 30.0, 20.0])  # order of arrival does not matter
    assert found is not None
    assert (found.min, found.max, found.mean) == (0.0, 30.0, 15.0)
    assert found.median == pytest.approx(15.0)
    # Position 0.95 * 3 = 2.85: 85 % of the way from 20 to 30.
    assert found.p95 == pytest.approx(28.5)


# No deadline or speed check: a loaded machine makes either fail without a wrong answer.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_agrees_with_the_standard_library(values: list[float]) -> None:
    found = statistics_of(values)
    assert found is not None
    assert found.median == pytest.approx(statistics.median(values))
    if len(values) > 1:
        expected_p95 = statistics.quantiles(values, n=20, method="inclusive")[-1]
        assert found.p95 == pytest.approx(expected_p95)
    assert found.min <= found.median <= found.p95 <= found.max
