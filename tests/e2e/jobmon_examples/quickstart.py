"""Jobmon's quickstart, written afresh in Jobmon's import style: two echo tasks, the second
after the first, on the local ``sequential`` cluster.

tests/e2e/test_jobmon_examples.py rewrites the imports with the sed line of docs/jobmon.md and
runs it.
"""

import sys
import uuid

from jobmon.client.tool import Tool


def main() -> int:
    tool = Tool(name="quickstart_tutorial")
    tool.set_default_cluster_name("sequential")

    template = tool.get_task_template(
        template_name="echo_template",
        command_template="echo {message}",
        node_args=["message"],
    )
    workflow = tool.create_workflow(
        name="my_first_workflow", workflow_args=f"quickstart_{uuid.uuid4()}"
    )
    hello = template.create_task(name="say_hello", message="Hello from the quickstart")
    goodbye = template.create_task(name="say_goodbye", message="Goodbye from the quickstart")
    goodbye.add_upstream(hello)
    workflow.add_tasks([hello, goodbye])

    status = workflow.run()
    print(f"Workflow completed with status: {status}")
    print(f"workflow_id={workflow.workflow_id}")
    return 0 if status == "D" else 1


if __name__ == "__main__":
    sys.exit(main())
