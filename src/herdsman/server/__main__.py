"""``python -m herdsman.server``: the same command as ``herdsman server start``.

The embedded server and the test suite start servers this way, with ``sys.executable``, so
they need no console script on ``PATH``.
"""

from __future__ import annotations

from herdsman.cli.server import start

__all__: list[str] = []

if __name__ == "__main__":
    start(prog_name="python -m herdsman.server")
