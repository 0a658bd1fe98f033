"""A cluster's parameters as a model: what is read, what is refused, and how it is said."""

from __future__ import annotations

from typing import Any

import pytest

from herdsman.core.errors import ConfigurationError
from herdsman.core.timing import DEFAULT_INSTANCE_HEARTBEAT_INTERVAL
from herdsman.distributor.parameters import (
    ClusterParameters,
    Flag,
    OptionalText,
    PositiveSeconds,
    TextList,
    distributor_parameters,
)


class ExampleParameters(ClusterParameters):
    grace: PositiveSeconds = 5.0
    loud: Flag = False
    partition: OptionalText = None
    extra_args: TextList = []


def _refusal(parameters: dict[str, Any]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        ExampleParameters.parse(parameters, plugin="example")
    return caught.value


def test_missing_keys_take_their_defaults() -> None:
    parsed = ExampleParameters.parse({})

    assert parsed.heartbeat_interval == DEFAULT_INSTANCE_HEARTBEAT_INTERVAL
    assert (parsed.poll_interval, parsed.triage_interval) == (10.0, 30.0)
    assert (parsed.grace, parsed.loud, parsed.partition, parsed.extra_args) == (
        5.0,
        False,
        None,
        [],
    )


def test_values_typed_as_text_are_read_as_operators_mean_them() -> None:
    parsed = ExampleParameters.parse(
        {"grace": "2.5", "loud": "yes", "partition": "", "extra_args": "--qos high"}
    )

    assert (parsed.grace, parsed.loud, parsed.partition) == (2.5, True, None)
    assert parsed.extra_args == ["--qos", "high"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"grace": -1}, "cluster parameter 'grace' must be a positive number, got -1"),
        ({"grace": "soon"}, "cluster parameter 'grace' must be a positive number, got 'soon'"),
        ({"grace": None}, "cluster parameter 'grace' must be a positive number, got None"),
        ({"loud": "maybe"}, "cluster parameter 'loud' must be true or false, got 'maybe'"),
        ({"partition": 3}, "cluster parameter 'partition' must be a string, got 3"),
        ({"extra_args": [1]}, "cluster parameter 'extra_args' must be a list of strings, got [1]"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_by_name(
    parameters: dict[str, Any], message: str
) -> None:
    error = _refusal(parameters)

    assert error.message == message
    assert error.details["parameter"] == next(iter(parameters))


def test_an_unknown_key_is_refused_with_the_known_ones_and_the_closest() -> None:
    error = _refusal({"hearbeat_interval": 30})

    assert error.message == (
        "unknown cluster parameter 'hearbeat_interval': the example plugin reads extra_args, "
        "grace, heartbeat_interval, loud, partition, poll_interval, triage_interval "
        "(did you mean 'heartbeat_interval'?)"
    )
    assert error.details["parameter"] == "hearbeat_interval"
    assert "heartbeat_interval" in error.details["known"]


def test_every_problem_is_named_at_once() -> None:
    error = _refusal({"grace": 0, "colour": "red"})

    assert "cluster parameter 'grace' must be a positive number, got 0" in error.message
    assert "unknown cluster parameter 'colour'" in error.message
    assert "did you mean" not in error.message


def test_the_distributor_reads_its_own_keys_and_leaves_the_plugins_alone() -> None:
    own = distributor_parameters({"poll_interval": "2", "workers": 4, "sbatch_args": ["-x"]})

    assert own.poll_interval == 2.0
    with pytest.raises(ConfigurationError, match="'triage_interval' must be a positive number"):
        distributor_parameters({"triage_interval": 0, "workers": 4})
