"""The per-location step of the health example: read one shard, write its total.

Writes ``location_<id>.txt`` in ``<root_data_dir>/health_example``.

    python model_location.py --location_id ID --root_data_dir DIR --log_level LEVEL
"""

import argparse
import logging
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--location_id", type=int, required=True)
    parser.add_argument("--root_data_dir", required=True)
    parser.add_argument("--log_level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")

    data_dir = Path(args.root_data_dir, "health_example")
    values = [
        float(line.split()[1])
        for line in (data_dir / f"shard_{args.location_id}.txt").read_text().splitlines()
    ]
    logging.debug("location %d: %d age groups", args.location_id, len(values))
    total = sum(values)
    (data_dir / f"location_{args.location_id}.txt").write_text(
        f"location_id={args.location_id} total={total:g}\n"
    )
    print(f"location {args.location_id}: {total:g}")


if __name__ == "__main__":
    main()
