"""``python -m herdsman.distributor``: see :mod:`herdsman.distributor.cli`."""

from herdsman.distributor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
