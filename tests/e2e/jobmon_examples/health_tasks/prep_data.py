"""Data preparation for the health example: one input shard per location.

A real pipeline would split and clean a large input file here; this writes made-up numbers,
``shard_<location>.txt`` in ``<root_data_dir>/health_example``, one value per age group.

    python prep_data.py --location_set_id N --root_data_dir DIR --log_level LEVEL
"""

import argparse
import logging
from pathlib import Path

AGE_GROUPS = (1, 2, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--location_set_id", type=int, required=True)
    parser.add_argument("--root_data_dir", required=True)
    parser.add_argument("--log_level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")

    out_dir = Path(args.root_data_dir, "health_example")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The set's locations are 0 .. N-1; location i has the value (i + 1) * age in each group.
    for location in range(args.location_set_id):
        rows = [f"{age} {(location + 1) * age}" for age in AGE_GROUPS]
        (out_dir / f"shard_{location}.txt").write_text("\n".join(rows) + "\n")
        logging.debug("wrote the shard of location %d", location)
    print(f"prepared {args.location_set_id} shards")


if __name__ == "__main__":
    main()
