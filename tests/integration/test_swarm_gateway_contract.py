"""The in-memory swarm server answers the swarm as a real server does.

The swarm's unit tests run against :class:`tests.support.swarm_gateway.InMemorySwarmGateway`,
so what they prove holds only as far as the fake agrees with the server. Here each scenario
runs twice, against the fake and against a real server through
:class:`~herdsman.client.swarm.gateway.HttpSwarmGateway`, and everything the swarm reads must
be the same: runs created or refused, queue answers, run status answers, every task's status
and attempts, and the change feed, both what the swarm follows and every task change.

Each side plays the rest of the world its own way. For the fake, its test helpers; for the
real server, the distributor's and the worker's routes, as those processes call them: claim,
launched, running, done and error (E, or Z for a resource kill), triage and killed. Ids are
compared by position (the scenario's first task, its second run), since the real server's ids
depend on what else its database holds. Feed entries are compared per task and per run: the
order of changes made by one request to several tasks is not part of the contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman import Tool, __version__
from herdsman.client.swarm.gateway import HttpSwarmGateway, SwarmGateway
from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.errors import HerdsmanError
from herdsman.core.lifecycle import SWARM_FOLLOWS
from herdsman.core.requester import Requester
from herdsman.core.schemas.distributor import (
    ClaimedOut,
    ClaimIn,
    KilledIn,
    LaunchedIn,
    LaunchedItem,
    TransitionsOut,
    TriageIn,
    TriageOut,
)
from herdsman.core.schemas.worker import (
    InstanceDoneIn,
    InstanceErrorIn,
    InstanceRunningIn,
    InstanceRunningOut,
    InstanceStatusOut,
)
from herdsman.core.statuses import TaskStatus

pytestmark = pytest.mark.integration

EVERY_TASK_CHANGE = ChangeFilter.of({ChangeKind.TASK: None})


class World(Protocol):
    """A server holding one workflow, and everyone but the swarm who changes it."""

    gateway: SwarmGateway
    workflow_id: int
    task_ids: list[int]  # the workflow's tasks, in the scenario's order

    def start(self, run_id: int) -> None:
        """Every queued attempt of the run is claimed, launched, and reported running."""
        ...

    def finish(self, task_id: int) -> None:
        """The worker of the task's attempt reports it done."""
        ...

    def fail(self, task_id: int, *, resource_error: bool) -> None:
        """The worker reports an error, or that the cluster killed the job for resources."""
        ...

    def confirm_kills(self, run_id: int) -> None:
        """The distributor kills the jobs it was told to and says so."""
        ...


class FakeWorld:
    """The in-memory server; its helpers play the distributor and the workers."""

    def __init__(self, num_tasks: int, max_attempts: int) -> None:
        self.fake = InMemorySwarmGateway(workflow_id=1)
        for task_id in range(1, num_tasks + 1):
            self.fake.add_task(task_id, max_attempts=max_attempts)
        self.gateway: SwarmGateway = self.fake
        self.workflow_id = 1
        self.task_ids = list(range(1, num_tasks + 1))

    def start(self, run_id: int) -> None:
        for task_id in self.fake.tasks_in(TaskStatus.QUEUED):
            self.fake.set_task_status(task_id, TaskStatus.INSTANTIATING)
            self.fake.set_task_status(task_id, TaskStatus.LAUNCHED)
            self.fake.run_tasks([task_id])

    def finish(self, task_id: int) -> None:
        self.fake.finish([task_id])

    def fail(self, task_id: int, *, resource_error: bool) -> None:
        self.fake.fail([task_id], resource_error=resource_error)

    def confirm_kills(self, run_id: int) -> None:
        self.fake.confirm_kills()


class ServerWorld:
    """A workflow bound on a real server; the distributor and workers speak its routes."""

    def __init__(self, requester: Requester, num_tasks: int, max_attempts: int) -> None:
        tool = Tool(f"contract-{uuid.uuid4().hex}", requester=requester)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("step", "true {i}", node_args=["i"])
        workflow = tool.create_workflow(workflow_args=uuid.uuid4().hex)
        tasks = [template.create_task(i=i, max_attempts=max_attempts) for i in range(num_tasks)]
        workflow.add_tasks(tasks)
        self.workflow_id = workflow.bind()
        self.task_ids = [task.task_id for task in tasks if task.task_id is not None]
        self.gateway: SwarmGateway = HttpSwarmGateway(requester)
        self._requester = requester
        self._attempt_of: dict[int, int] = {}  # task id -> its latest task instance id

    def start(self, run_id: int) -> None:
        claimed = self._requester.post(f"/workflow_runs/{run_id}/claim", ClaimIn(), ClaimedOut)
        instance_ids = [instance.task_instance_id for instance in claimed.instances]
        self._attempt_of.update(
            {instance.task_id: instance.task_instance_id for instance in claimed.instances}
        )
        items = [LaunchedItem(task_instance_id=i, distributor_id=f"job-{i}") for i in instance_ids]
        self._requester.post("/task_instances/launched", LaunchedIn(items=items), TransitionsOut)
        for instance_id in instance_ids:
            report = InstanceRunningIn(
                host="contract-node",
                pid=1,
                herdsman_version=__version__,
                next_report_seconds=600.0,
            )
            self._requester.post(
                f"/task_instances/{instance_id}/running", report, InstanceRunningOut
            )

    def finish(self, task_id: int) -> None:
        self._requester.post(
            f"/task_instances/{self._attempt_of[task_id]}/done", InstanceDoneIn(), InstanceStatusOut
        )

    def fail(self, task_id: int, *, resource_error: bool) -> None:
        report = InstanceErrorIn(
            status="Z" if resource_error else "E",
            exit_code=137 if resource_error else 1,
            message="out of memory" if resource_error else "the command failed",
        )
        self._requester.post(
            f"/task_instances/{self._attempt_of[task_id]}/error", report, InstanceStatusOut
        )

    def confirm_kills(self, run_id: int) -> None:
        # Not judging silence: every worker here promised a report within ten minutes anyway.
        triage = self._requester.post(
            f"/workflow_runs/{run_id}/triage", TriageIn(judge_silence=False), TriageOut
        )
        killed = KilledIn(task_instance_ids=[ref.task_instance_id for ref in triage.kill])
        self._requester.post("/task_instances/killed", killed, TransitionsOut)


class Side:
    """A scenario's steps on one world, noting every answer the swarm would read.

    Tasks and runs are named by position (task 1 is the world's first task, run 1 the first
    run the scenario created), so that the notes of both sides can be compared.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.gateway = world.gateway
        self.run_ids: list[int] = []
        self.feed_start = 0
        self.notes: list[tuple[str, object]] = []

    def note(self, label: str, value: object) -> None:
        self.notes.append((label, value))

    # --- the swarm's calls -----------------------------------------------------------------------

    def create_run(self, *, resume: bool = False) -> None:
        try:
            run = self.gateway.create_run(
                self.world.workflow_id, resume=resume, reset_running_jobs=True
            )
        except HerdsmanError as error:
            self.note("create_run", type(error).__name__)
            return
        if not self.run_ids:
            self.feed_start = run.last_seq
        self.run_ids.append(run.workflow_run_id)
        self.note("create_run", (run.status, [self._run_number(i) for i in run.waiting_on]))

    def queue(self, run: int, *tasks: int) -> None:
        reply = self.gateway.queue_tasks(self._run_id(run), tuple(self._task_id(t) for t in tasks))
        self.note("queue", reply.statuses)

    def set_run_status(self, run: int, status: str) -> None:
        try:
            reply = self.gateway.set_run_status(self._run_id(run), status)
        except HerdsmanError as error:
            self.note("set_run_status", (type(error).__name__, error.details.get("status")))
            return
        self.note("set_run_status", (reply.status, reply.workflow_status))

    def check_run(self, run: int) -> None:
        reply = self.gateway.get_run(self._run_id(run))
        self.note("run", (reply.status, reply.workflow_status))

    def check_tasks(self) -> None:
        page = self.gateway.tasks_page(self.world.workflow_id, 0, 1000)
        self.note(
            "tasks",
            sorted((self._task_number(t.task_id), t.status, t.num_attempts) for t in page.tasks),
        )

    def check_feed(self) -> None:
        """What the swarm follows, and every task change, per task and per run in order."""
        for label, kinds in (("followed", SWARM_FOLLOWS), ("task changes", EVERY_TASK_CHANGE)):
            reply = self.gateway.changes(
                self.world.workflow_id, self.feed_start, timeout=0, kinds=kinds
            )
            by_object: dict[tuple[str, int], list[str]] = {}
            for change in reply.changes:
                number = (
                    self._task_number(change.id)
                    if change.kind == ChangeKind.TASK.value
                    else self._run_number(change.id)
                )
                by_object.setdefault((change.kind, number), []).append(change.status)
            self.note(label, by_object)

    # --- everyone else -------------------------------------------------------------------------

    def start(self, run: int) -> None:
        self.world.start(self._run_id(run))

    def finish(self, task: int) -> None:
        self.world.finish(self._task_id(task))

    def fail(self, task: int, *, resource_error: bool = False) -> None:
        self.world.fail(self._task_id(task), resource_error=resource_error)

    def confirm_kills(self, run: int) -> None:
        self.world.confirm_kills(self._run_id(run))

    # --- names by position ----------------------------------------------------------------------

    def _task_id(self, number: int) -> int:
        return self.world.task_ids[number - 1]

    def _task_number(self, task_id: int) -> int:
        return self.world.task_ids.index(task_id) + 1

    def _run_id(self, number: int) -> int:
        return self.run_ids[number - 1]

    def _run_number(self, run_id: int) -> int:
        return self.run_ids.index(run_id) + 1


# --- scenarios ---------------------------------------------------------------------------------


def queueing(side: Side) -> None:
    """Registering and adjusting tasks are queued; every other task answers its status."""
    side.create_run()
    side.queue(1, 1, 2)
    side.queue(1, 1, 2, 3)
    side.start(1)
    side.finish(1)
    side.fail(3, resource_error=True)
    side.check_tasks()
    side.queue(1, 1, 2, 3, 4)
    side.check_tasks()
    side.check_feed()


def retries_until_attempts_are_spent(side: Side) -> None:
    """A failed attempt is retried; a resource kill adjusts; spent attempts end the task."""
    side.create_run()
    side.queue(1, 1, 2)
    side.start(1)
    side.fail(1)
    side.fail(2, resource_error=True)
    side.check_tasks()
    side.queue(1, 1, 2)
    side.start(1)
    side.fail(1)
    side.fail(2, resource_error=True)
    side.check_tasks()
    side.queue(1, 1, 2)
    side.check_feed()


def a_stop_kills_without_spending_attempts(side: Side) -> None:
    """A stopped run's queued attempt is killed at once, a running one when the distributor
    confirms; both tasks go back to registering, though their only attempt was used."""
    side.create_run()
    side.queue(1, 1)
    side.start(1)
    side.queue(1, 2)
    side.set_run_status(1, "S")
    side.check_tasks()
    side.finish(1)  # the worker of an attempt told to die: its report does not count
    side.check_tasks()
    side.confirm_kills(1)
    side.check_tasks()
    side.check_run(1)
    side.check_feed()


def a_resume_restarts_unfinished_tasks(side: Side) -> None:
    """A workflow that ran needs resume; done tasks stay done, the others restart afresh."""
    side.create_run()
    side.queue(1, 1, 2)
    side.start(1)
    side.finish(1)
    side.fail(2)
    side.set_run_status(1, "E")
    side.create_run()
    side.create_run(resume=True)
    side.check_run(1)
    side.check_run(2)
    side.check_tasks()
    side.queue(2, 1, 2, 3)
    side.check_feed()


def runs_follow_the_run_state_machine(side: Side) -> None:
    """Refused and untimely run status changes; a finished workflow cannot run again."""
    side.create_run()
    side.set_run_status(1, "D")
    for status in "IOR":
        side.set_run_status(1, status)
    side.set_run_status(1, "O")
    side.queue(1, 1)
    side.start(1)
    side.finish(1)
    side.set_run_status(1, "D")
    side.check_run(1)
    side.create_run(resume=True)
    side.check_feed()


SCENARIOS: dict[str, tuple[Callable[[Side], None], int, int]] = {
    # name: (steps, number of tasks, max_attempts)
    "queueing": (queueing, 4, 3),
    "retries": (retries_until_attempts_are_spent, 2, 2),
    "kill": (a_stop_kills_without_spending_attempts, 2, 1),
    "resume": (a_resume_restarts_unfinished_tasks, 3, 1),
    "runs": (runs_follow_the_run_state_machine, 1, 3),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_fake_and_the_server_agree(requester: Requester, scenario: str) -> None:
    steps, num_tasks, max_attempts = SCENARIOS[scenario]
    fake = Side(FakeWorld(num_tasks, max_attempts))
    steps(fake)
    real = Side(ServerWorld(requester, num_tasks, max_attempts))
    steps(real)
    assert real.notes == fake.notes
