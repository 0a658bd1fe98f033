"""Reading a cluster's parameters: the JSON the server holds for it, checked with clear errors.

The distributor and the plugins read their tuning (intervals, pool size, flags) from the same
parameters, so a value of the wrong kind is refused the same way wherever it is read, naming
the parameter instead of failing deep inside a loop.
"""

from __future__ import annotations

from typing import Any

from herdsman.core.errors import ConfigurationError

__all__ = ["bool_parameter", "float_parameter"]


def float_parameter(parameters: dict[str, Any], key: str, default: float) -> float:
    """``parameters[key]`` as a positive float, with a clear error for anything else."""
    value = parameters.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise ConfigurationError(
            f"cluster parameter {key!r} must be a positive number, got {value!r}",
            details={"parameter": key},
        )
    return number


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def bool_parameter(parameters: dict[str, Any], key: str, default: bool) -> bool:
    """``parameters[key]`` as a bool; also from the words a config file or CLI may hold.

    Parameters arrive as JSON from the server, but were perhaps typed as text (``"false"``),
    and ``bool("false")`` is True: a flag that silently means the opposite is worse than an
    error.
    """
    value = parameters.get(key, default)
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
    raise ConfigurationError(
        f"cluster parameter {key!r} must be true or false, got {value!r}",
        details={"parameter": key},
    )
