"""``python -m herdsman.worker``: see :mod:`herdsman.worker.cli`."""

from herdsman.worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
