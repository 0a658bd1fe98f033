"""A TaskGenerator example in Jobmon's import style: typed functions turned into tasks.

``summarize`` runs once per region and year on the worker, writes its total to a file and
returns it (printed on the task's stdout); ``combine`` runs after them and adds the totals up.
``Year`` travels as text through the serializers given.

    python task_generator_example.py CLUSTER OUT_DIR
"""

import sys
import uuid
from pathlib import Path

from jobmon.client.tool import Tool
from jobmon.core.task_generator import task_generator

TOOL_NAME = "task_generator_example"


class Year:
    def __init__(self, year: int) -> None:
        self.year = year

    @staticmethod
    def parse(text: str) -> "Year":
        return Year(int(text))

    def __str__(self) -> str:
        return str(self.year)


@task_generator(
    serializers={Year: (str, Year.parse)},
    tool_name=TOOL_NAME,
    naming_args=["region", "year"],
    max_attempts=1,
)
def summarize(
    region: str, year: Year, values: list[float], out_dir: str, scale: float | None = None
) -> float:
    """Add up one region's values for a year, scaled, and keep the total in a file."""
    total = sum(values) * (scale if scale is not None else 1.0)
    Path(out_dir, f"{region}-{year}.txt").write_text(f"{total}\n")
    return total


@task_generator(serializers={}, tool_name=TOOL_NAME, naming_args=[], max_attempts=1)
def combine(out_dir: str, regions: list[str]) -> float:
    """Add up the totals the summarize tasks wrote."""
    totals = [float(path.read_text()) for path in sorted(Path(out_dir).glob("*-*.txt"))]
    assert len(totals) == len(regions), (totals, regions)
    grand = sum(totals)
    Path(out_dir, "combined.txt").write_text(f"{grand}\n")
    return grand


def main(cluster: str, out_dir: str) -> int:
    tool = Tool(TOOL_NAME)
    tool.set_default_cluster_name(cluster)
    resources = {"queue": "all.q", "memory": "1G", "runtime": "10m"}
    east = summarize.create_task(
        cluster_name=cluster,
        compute_resources=resources,
        region="east",
        year=Year(2020),
        values=[1.0, 2.5],
        out_dir=out_dir,
    )
    others = summarize.create_tasks(
        cluster_name=cluster,
        compute_resources=resources,
        region=["north", "south"],
        year=Year(2021),
        values=[[1.0, 2.0]],
        out_dir=out_dir,
        scale=2.0,
    )
    last = combine.create_task(
        cluster_name=cluster,
        compute_resources=resources,
        out_dir=out_dir,
        regions=["east", "north", "south"],
    )
    last.add_upstreams([east, *others])
    workflow = tool.create_workflow(workflow_args=f"task-generator-{uuid.uuid4()}")
    workflow.add_tasks([east, *others, last])
    status = workflow.run()
    print(f"workflow_id={workflow.workflow_id}")
    return 0 if status == "D" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
