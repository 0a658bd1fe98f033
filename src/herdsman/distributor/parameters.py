"""A cluster's parameters as a pydantic model: the JSON the server holds for it, checked once.

The distributor and its plugin read their tuning (intervals, pool size, flags) from the same
parameters. Each plugin declares the keys it reads as a model deriving from
:class:`ClusterParameters`, which holds the distributor's own keys, and builds it with
:meth:`ClusterParameters.parse`. A value of the wrong kind is then refused wherever it is read,
naming the parameter, instead of failing deep inside a loop; and an unknown key, most likely a
misspelt one, is refused with the keys the plugin knows instead of being silently ignored
(``hearbeat_interval=30`` would otherwise leave the default of 90 s in force).

The value types below keep the readings operators rely on: numbers may be given as text
(``"2.5"``), flags as words (``"false"``, ``"no"``, ``0``), because a value set on the command
line or in a config file may arrive as text, and ``bool("false")`` is True.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails

from herdsman.core.errors import ConfigurationError
from herdsman.core.timing import DEFAULT_INSTANCE_HEARTBEAT_INTERVAL

__all__ = [
    "ClusterParameters",
    "Flag",
    "OptionalText",
    "PositiveSeconds",
    "TextList",
    "distributor_parameters",
]

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _refused(info: ValidationInfo, expected: str, value: object) -> ValueError:
    return ValueError(f"cluster parameter {info.field_name!r} must be {expected}, got {value!r}")


def _positive_number(value: object, info: ValidationInfo) -> float:
    try:
        number = float(value) if isinstance(value, int | float | str) else -1.0
    except ValueError:  # text that is no number
        number = -1.0
    if not number > 0:  # also refuses NaN
        raise _refused(info, "a positive number", value)
    return number


def _flag(value: object, info: ValidationInfo) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _refused(info, "true or false", value)


def _optional_text(value: object, info: ValidationInfo) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _refused(info, "a string", value)
    return value


def _text_list(value: object, info: ValidationInfo) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return shlex.split(value)  # one string, split as a shell would
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refused(info, "a list of strings", value)
    return list(value)


PositiveSeconds = Annotated[float, BeforeValidator(_positive_number)]
"""A positive number of seconds (or any positive number), also from its text."""

Flag = Annotated[bool, BeforeValidator(_flag)]
"""True or false, also from the words true/false, yes/no, on/off, 1/0."""

OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
"""A string; an empty one counts as not given."""

TextList = Annotated[list[str], BeforeValidator(_text_list)]
"""A list of strings, or one string split as a shell would split it."""


class ClusterParameters(BaseModel):
    """The parameters every cluster's distributor reads; a plugin's model derives from it.

    ``poll_interval``: seconds between the distributor's safety-net polls of its run (the
    change feed wakes it at once otherwise). ``triage_interval``: seconds between checks of the
    run's launched and silent instances with the cluster. ``heartbeat_interval``: seconds
    between a worker's heartbeats; the distributor derives its silence grace after an outage
    from it, and a plugin hands it to the workers it starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_interval: PositiveSeconds = 10.0
    triage_interval: PositiveSeconds = 30.0
    heartbeat_interval: PositiveSeconds = DEFAULT_INSTANCE_HEARTBEAT_INTERVAL

    @classmethod
    def parse(cls, parameters: Mapping[str, Any], *, plugin: str = "") -> Self:
        """``parameters`` checked and with defaults filled in.

        Raises :class:`ConfigurationError` naming each refused parameter; an unknown one is
        refused with the keys this model knows, and the closest of them when it looks misspelt.
        ``plugin`` names the plugin in that message.
        """
        try:
            return cls.model_validate(dict(parameters))
        except ValidationError as error:
            problems = error.errors()
            message = "; ".join(_explain(cls, problem, plugin) for problem in problems)
            keys = [str(problem["loc"][0]) for problem in problems if problem["loc"]]
            raise ConfigurationError(
                message,
                details={"parameter": keys[0] if keys else None, "known": sorted(cls.model_fields)},
            ) from None


def _explain(model: type[ClusterParameters], problem: ErrorDetails, plugin: str) -> str:
    key = str(problem["loc"][0]) if problem["loc"] else "?"
    if problem["type"] == "extra_forbidden":
        known = sorted(model.model_fields)
        owner = f"the {plugin} plugin" if plugin else "this cluster"
        text = f"unknown cluster parameter {key!r}: {owner} reads {', '.join(known)}"
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        return text + (f" (did you mean {close[0]!r}?)" if close else "")
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, ValueError):  # ours, raised with the whole message
        return str(cause)
    return f"cluster parameter {key!r}: {problem['msg']}"


def distributor_parameters(parameters: Mapping[str, Any]) -> ClusterParameters:
    """The distributor's own keys among a cluster's parameters, checked; the plugin's are left
    to the plugin, which knows them."""
    own = {key: value for key, value in parameters.items() if key in ClusterParameters.model_fields}
    return ClusterParameters.parse(own)
