"""Jobmon's six-job smoke test, written afresh in Jobmon's import style.

Four tiers: t1; t2 and t3 after it; t4 and t5 after both; t6 after those. Resources come from
a YAML file for the tool and each template (``set_task_templates=True``), with the queues
Jobmon's examples use (``all.q``, ``null.q``), which local clusters take as their own.

    python six_job_test.py CLUSTER [WORKFLOW_ID_FILE]
"""

import os
import sys
import uuid

from jobmon.client.api import Tool

HERE = os.path.dirname(os.path.realpath(__file__))


def get_task_template(tool, template_name):
    return tool.get_task_template(
        template_name=template_name, command_template="{command}", node_args=["command"]
    )


def six_job_test(cluster_name, wf_id_file=None):
    tool = Tool(name=f"six job test - {cluster_name}")

    t1 = get_task_template(tool, "phase_1").create_task(name="t1", command="sleep 1")
    # Second tier: both after the first.
    t2 = get_task_template(tool, "phase_2").create_task(
        name="t2", command="sleep 2", upstream_tasks=[t1]
    )
    t3 = get_task_template(tool, "phase_2").create_task(
        name="t3", command="sleep 3", upstream_tasks=[t1]
    )
    # Third tier: each after both of the second.
    t4 = get_task_template(tool, "phase_3").create_task(
        name="t4", command="sleep 1", upstream_tasks=[t2, t3]
    )
    t5 = get_task_template(tool, "phase_3").create_task(
        name="t5", command="sleep 2", upstream_tasks=[t2, t3]
    )
    # Fourth tier: the end.
    t6 = get_task_template(tool, "phase_4").create_task(
        name="t6", command="sleep 1", upstream_tasks=[t4, t5]
    )

    tool.set_default_compute_resources_from_yaml(
        default_cluster_name=cluster_name,
        yaml_file=os.path.join(HERE, "six_job_test_resources.yaml"),
        set_task_templates=True,
        ignore_missing_keys=True,
    )
    workflow = tool.create_workflow(
        workflow_args=f"six-job-test-{uuid.uuid4()}", name="six_job_test"
    )
    workflow.add_tasks([t1, t2, t3, t4, t5, t6])
    status = workflow.run()
    print(f"workflow_id={workflow.workflow_id}")
    if wf_id_file is not None:
        with open(wf_id_file, "w") as out:
            out.write(str(workflow.workflow_id))
    if status != "D":
        raise ValueError(f"the workflow should be done, not {status}")
    print("six jobs done")


if __name__ == "__main__":
    six_job_test(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
