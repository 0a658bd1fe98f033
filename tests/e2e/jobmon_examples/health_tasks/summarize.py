"""The summary step of the health example: add up what the location steps wrote.

Reads every ``location_<id>.txt`` in ``<root_data_dir>/health_example`` and writes
``summary.txt`` beside them.

    python summarize.py --root_data_dir DIR --log_level LEVEL
"""

import argparse
import logging
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root_data_dir", required=True)
    parser.add_argument("--log_level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")

    data_dir = Path(args.root_data_dir, "health_example")
    totals = {}
    for path in sorted(data_dir.glob("location_*.txt")):
        fields = dict(field.split("=") for field in path.read_text().split())
        totals[int(fields["location_id"])] = float(fields["total"])
        logging.debug("read %s", path.name)
    summary = f"locations={len(totals)} total={sum(totals.values()):g}"
    (data_dir / "summary.txt").write_text(summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
