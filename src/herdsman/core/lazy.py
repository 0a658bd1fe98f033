"""Names a package exports but imports only when first used (PEP 562).

Every process that imports ``herdsman`` pays for what its ``__init__`` imports: the
distributor and the worker wrapper start on every cluster node and for every local pool, and
must not pay for the authoring API they never use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``sources`` comes from the
    module it maps to, imported on first use and then kept on the package."""

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
