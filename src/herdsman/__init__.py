"""herdsman: run pipelines of thousands to millions of command-line tasks on clusters."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
