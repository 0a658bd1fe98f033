"""Jobmon's larger documented example, a three-phase fork and join with task scripts, written
afresh in Jobmon's import style.

1. ``data_prep_task`` (template ``health_data_prep``) writes one input shard per location;
2. one task per location (template ``health_location``, node arg ``location_id``) reads its
   shard and writes its result;
3. one summary task (template ``health_summary``) reads every result and writes a summary.

The location tasks come from one ``create_tasks`` call and are wired afterwards, found again
with ``workflow.get_tasks_by_node_args``. ``root_data_dir`` is a task arg and ``log_level`` an
op arg of every template. The scripts (``health_tasks/``) write under
``ROOT_DATA_DIR/health_example``; each task's stdout and stderr go to files in
``ROOT_DATA_DIR/logs``, as the templates' ``stdout``/``stderr`` resources say.

    python health_example.py CLUSTER ROOT_DATA_DIR
"""

import os
import shlex
import sys
import uuid

from jobmon.client.tool import Tool

TASKS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "health_tasks")
LOCATION_SET_ID = 5  # the made-up location set has locations 0 .. 4


def script(name):
    """The start of a command that runs one of the task scripts with this Python."""
    return f"{shlex.quote(sys.executable)} {shlex.quote(os.path.join(TASKS, name))}"


def main(cluster_name, root_data_dir):
    log_dir = os.path.join(root_data_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)

    tool = Tool(name="health_example_tool")
    # No workflow_args: a new workflow each run.
    workflow = tool.create_workflow(name=f"health_example_{uuid.uuid4()}")

    def resources(cores, runtime):
        return {
            "queue": "all.q",
            "cores": cores,
            "memory": "1G",
            "runtime": runtime,
            "stdout": log_dir,
            "stderr": log_dir,
            "project": "proj_example",
        }

    data_prep_template = tool.get_task_template(
        template_name="health_data_prep",
        command_template=script("prep_data.py")
        + " --location_set_id {location_set_id} --root_data_dir {root_data_dir}"
        + " --log_level {log_level}",
        node_args=[],
        task_args=["location_set_id", "root_data_dir"],
        op_args=["log_level"],
        default_cluster_name=cluster_name,
        default_compute_resources=resources(1, "1m"),
    )
    location_template = tool.get_task_template(
        template_name="health_location",
        command_template=script("model_location.py")
        + " --location_id {location_id} --root_data_dir {root_data_dir}"
        + " --log_level {log_level}",
        node_args=["location_id"],
        task_args=["root_data_dir"],
        op_args=["log_level"],
        default_cluster_name=cluster_name,
        default_compute_resources=resources(2, "10m"),
    )
    summary_template = tool.get_task_template(
        template_name="health_summary",
        command_template=script("summarize.py")
        + " --root_data_dir {root_data_dir} --log_level {log_level}",
        node_args=[],
        task_args=["root_data_dir"],
        op_args=["log_level"],
        default_cluster_name=cluster_name,
        default_compute_resources=resources(2, "10m"),
    )

    locations = list(range(LOCATION_SET_ID))
    data_prep_task = data_prep_template.create_task(
        name="data_prep_task",
        upstream_tasks=[],
        location_set_id=LOCATION_SET_ID,
        root_data_dir=root_data_dir,
        log_level="DEBUG",
    )
    workflow.add_tasks([data_prep_task])
    # One task per location, from a list of node-arg values.
    location_tasks = location_template.create_tasks(
        location_id=locations, root_data_dir=root_data_dir, log_level="DEBUG"
    )
    workflow.add_tasks(location_tasks)
    # No name given: the template's name is the task's.
    summary_task = summary_template.create_task(root_data_dir=root_data_dir, log_level="DEBUG")
    workflow.add_tasks([summary_task])

    # Dependencies, added after the tasks joined the workflow: each location task comes after
    # the data preparation and before the summary.
    for location_id in locations:
        found = workflow.get_tasks_by_node_args("health_location", location_id=location_id)
        assert len(found) == 1, found
        found[0].add_upstream(data_prep_task)
        summary_task.add_upstream(found[0])

    # Bind first to learn the workflow id before running.
    workflow.bind()
    print(f"workflow_id={workflow.workflow_id}")
    status = workflow.run()
    print(f"Workflow {workflow.workflow_id} completed with status {status}.")
    return 0 if status == "D" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
