"""One fault-injection trial: a whole run with real processes, some of them killed with SIGKILL.

A trial plays three parts at once:

* the *operator*: starts a server process on a fixed port of its own and a fresh database, and
  restarts it at the same URL when it was killed -- except in the ``embedded`` kind, where the
  user's script runs on the embedded server (on the trial's database) and nobody restarts it:
  the run's own processes must;
* the *user*: runs the workflow script (:mod:`tests.faults.user_script`) as a process and, when
  it ends without success or is killed, runs it again with ``--resume``;
* the *injector* (a thread): at moments drawn from the trial's seed -- after a number of tasks
  completed, plus a delay -- kills one component with SIGKILL: the server, the embedded
  server, the script (the swarm), its distributor, or processes of the multiprocess pool.

Afterwards the database and the completions log are compared: every task done by exactly one
done instance, nothing left live, every failed attempt explained in the error log, and no
command completed twice unless the first completion belonged to an attempt that was lost.

Everything a trial starts carries an environment marker, so that it can all be killed at the
end -- orphaned distributors, pool processes and commands included -- whatever the outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, text
from tests.conftest import (
    ProcessRegistry,
    kill_processes_mentioning,
    start_server_process,
)
from tests.e2e.conftest import FAST_PARAMETERS, create_cluster
from tests.faults import user_script

from herdsman.core.ready_file import read_ready_file

KINDS = ("server", "embedded", "swarm", "distributor", "worker")

LAYERS = 4
WIDTH = 50
TASK_COUNT = LAYERS * WIDTH
MAX_ATTEMPTS = 6
# Two seconds, not one: the reaper gives up after 3.1 beats, and on a loaded two-core machine
# a live swarm's beat can come more than three seconds late, which ended its run.
SWARM_HEARTBEAT_SECONDS = 2.0
SLOW_SWARM_HEARTBEAT_SECONDS = 10.0
# How long a resume waits for the old run's kills to be confirmed before forcing its release.
# A killed distributor never confirms them, so every resume after one waits this long; the
# trial's cluster confirms a kill within seconds (two-second kill grace), so 30 s is ample.
RESUME_TIMEOUT_SECONDS = 30.0
SERVER_SETTINGS = {"HERDSMAN_REAPER__INTERVAL": "1"}
# Starts (or finds) the embedded server of the environment's data_dir and database.
EMBEDDED_START = (
    "from herdsman.client.embedded import ensure_server_url\n"
    "from herdsman.core.config import Settings\n"
    "print(ensure_server_url(Settings()))\n"
)

# Generous deadlines: a trial on a loaded machine may be slow; none of these is an assertion
# about speed, they only keep a wedged trial from hanging the suite.
TRIAL_DEADLINE_SECONDS = 10 * 60.0
SETTLE_DEADLINE_SECONDS = 120.0
SERVER_HEALTH_DEADLINE_SECONDS = 120.0
MAX_RESUMES = 8
POLL_SECONDS = 0.1

FINAL_INSTANCE_STATUSES = frozenset("DEZUWF")
# Instance statuses that say an attempt failed: each must come with an error log row.
ERROR_INSTANCE_STATUSES = frozenset("EZUW")
MARKER_VARIABLE = "FAULT_TRIAL_MARKER"
SHOWN_PER_PROBLEM = 8


class TrialFailure(AssertionError):
    """The trial found herdsman misbehaving, or could not bring its run to an end."""


# --- the plan: what is killed when, all drawn from the seed ------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """One kill: after ``completions`` tasks completed and ``delay`` seconds more.

    ``pause``: for the server, seconds before it is started again. ``victims``: for the
    worker kind, how many pool processes are killed at once.
    """

    completions: int
    delay: float
    pause: float
    victims: int


@dataclass(frozen=True)
class FaultPlan:
    """The kills of one trial and the user's pauses before each resume."""

    kind: str
    seed: int
    points: tuple[KillPoint, ...]
    resume_pauses: tuple[float, ...]
    swarm_heartbeat: float = SWARM_HEARTBEAT_SECONDS

    @classmethod
    def draw(cls, kind: str, seed: int) -> FaultPlan:
        """The plan for ``kind`` and ``seed``: the same on every machine and every run."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)}")
        rng = random.Random(f"{kind}:{seed}")
        count = rng.randint(1, 4) if kind == "worker" else rng.randint(1, 2)
        # Thresholds stop short of the end, so that every kill finds the run still going.
        thresholds = sorted(rng.sample(range(int(TASK_COUNT * 0.85)), count))
        points = tuple(
            KillPoint(
                completions=threshold,
                delay=round(rng.uniform(0.0, 2.0), 2),
                pause=round(rng.uniform(0.5, 3.0), 2),
                victims=rng.randint(1, 2),
            )
            for threshold in thresholds
        )
        # Some users resume at once, before the server noticed the old run died; some wait.
        pauses = tuple(round(rng.uniform(0.0, 3.0), 2) for _ in range(MAX_RESUMES))
        # With two-second heartbeats the reaper ends a killed swarm's run within seconds, often
        # before the script has started again; a slower heartbeat (as users have, 30 s by default)
        # makes the resume find the old run still running and take it over (cold resume).
        heartbeat = (
            rng.choice((SWARM_HEARTBEAT_SECONDS, SLOW_SWARM_HEARTBEAT_SECONDS))
            if kind == "swarm"
            else SWARM_HEARTBEAT_SECONDS
        )
        return cls(kind, seed, points, pauses, heartbeat)


@dataclass
class TrialRecord:
    """What happened in a trial; one JSON line of the ``--fault-report``."""

    kind: str
    engine: str
    seed: int
    trial: int
    swarm_heartbeat: float = SWARM_HEARTBEAT_SECONDS
    kills: list[dict[str, Any]] = field(default_factory=list)
    server_restarts: int = 0
    resumes: int = 0
    script_exits: list[int] = field(default_factory=list)
    runs: int = 0
    attempts: int = 0
    lost_completions: int = 0
    seconds: float = 0.0
    outcome: str = "unfinished"
    problem: str = ""
    directory: str = ""

    def json_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def append_report(path: Path, record: TrialRecord) -> None:
    """Append the record with one ``write`` in append mode, so parallel trials do not mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, record.json_line().encode())
    finally:
        os.close(descriptor)


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """A free port below the ephemeral range.

    While the killed server is down, its port must stay free for the restart; a port from the
    ephemeral range could meanwhile become the local end of some client's connection.
    """
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chooser = random.SystemRandom()
    for _ in range(500):
        port = chooser.randrange(10_000, max(low, 10_001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found below the ephemeral range")


def kill_processes_marked(marker: str) -> list[int]:
    """Kill every process whose environment carries this trial's marker; returns their pids."""
    found = []
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(MARKER_VARIABLE) == marker:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    for process in found:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(found, timeout=10)
    return [process.pid for process in found]


def _children_matching(pid: int, needle: str) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return []
    matching = []
    for child in children:
        try:
            if needle in " ".join(child.cmdline()):
                matching.append(child)
        except psutil.Error:
            continue
    return matching


def _sigkill(process: psutil.Process) -> bool:
    try:
        process.send_signal(signal.SIGKILL)
    except psutil.Error:
        return False
    return True


# --- the database after the trial --------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    id: int
    task_id: int
    run_id: int
    status: str


@dataclass
class Snapshot:
    """The trial's workflow as the database holds it."""

    workflow_id: int | None = None
    workflow_status: str | None = None
    runs: list[tuple[int, str]] = field(default_factory=list)
    tasks: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (name, status)
    instances: list[Instance] = field(default_factory=list)
    error_logged: set[int] = field(default_factory=set)

    @property
    def last_run_status(self) -> str | None:
        return self.runs[-1][1] if self.runs else None

    @property
    def last_run_ended_well(self) -> bool:
        """The last run is D, or it ended early and its distributor saw the rest through.

        A run whose swarm died ends E while its distributor lets running jobs finish; when
        those were the last tasks, the workflow is done with no run D, and a resume has
        nothing left to do.
        """
        if self.last_run_status == "D":
            return True
        all_done = bool(self.tasks) and all(s == "D" for _, s in self.tasks.values())
        return all_done and self.last_run_status in ("E", "S", "T")

    def settled(self) -> bool:
        """Done, and nothing left that a component would still move."""
        return (
            self.workflow_status == "D"
            and self.last_run_ended_well
            and all(i.status in FINAL_INSTANCE_STATUSES for i in self.instances)
        )

    def summary(self) -> str:
        task_counts = Counter(status for _, status in self.tasks.values())
        instance_counts = Counter(instance.status for instance in self.instances)
        live = [i for i in self.instances if i.status not in FINAL_INSTANCE_STATUSES]
        shown = ", ".join(
            f"{i.id} (task {i.task_id}, run {i.run_id}) {i.status}"
            for i in live[:SHOWN_PER_PROBLEM]
        )
        return (
            f"workflow {self.workflow_id} status {self.workflow_status}; "
            f"runs {self.runs}; tasks {dict(sorted(task_counts.items()))}; "
            f"instances {dict(sorted(instance_counts.items()))}"
            + (f"; not final: {shown}" if live else "")
        )


def read_snapshot(database_url: str) -> Snapshot:
    engine = create_engine(database_url)
    snapshot = Snapshot()
    try:
        with engine.connect() as connection:

            def rows(sql: str, **params: Any) -> list[Any]:
                return list(connection.execute(text(sql), params).all())

            workflows = rows("SELECT id, status FROM workflow ORDER BY id")
            if not workflows:
                return snapshot
            if len(workflows) > 1:
                raise TrialFailure(f"the trial's database holds {len(workflows)} workflows")
            snapshot.workflow_id, snapshot.workflow_status = workflows[0]
            w = snapshot.workflow_id
            snapshot.runs = [
                (run_id, status)
                for run_id, status in rows(
                    "SELECT id, status FROM workflow_run WHERE workflow_id = :w ORDER BY id", w=w
                )
            ]
            snapshot.tasks = {
                task_id: (name, status)
                for task_id, name, status in rows(
                    "SELECT id, name, status FROM task WHERE workflow_id = :w", w=w
                )
            }
            snapshot.instances = [
                Instance(*row)
                for row in rows(
                    "SELECT ti.id, ti.task_id, ti.workflow_run_id, ti.status "
                    "FROM task_instance ti JOIN task t ON t.id = ti.task_id "
                    "WHERE t.workflow_id = :w ORDER BY ti.id",
                    w=w,
                )
            ]
            snapshot.error_logged = {
                row[0]
                for row in rows(
                    "SELECT DISTINCT e.task_instance_id FROM task_instance_error_log e "
                    "JOIN task_instance ti ON ti.id = e.task_instance_id "
                    "JOIN task t ON t.id = ti.task_id WHERE t.workflow_id = :w",
                    w=w,
                )
            }
    finally:
        engine.dispose()
    return snapshot


def read_completions(log: Path) -> list[str]:
    try:
        return log.read_text().splitlines()
    except FileNotFoundError:
        return []


@dataclass
class Findings:
    """Problems found by :func:`check`, by kind, and counts for the report."""

    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lost_completions: int = 0

    def add(self, kind: str, detail: str) -> None:
        self.problems[kind].append(detail)

    def describe(self) -> str:
        lines = []
        for kind, details in self.problems.items():
            shown = "; ".join(details[:SHOWN_PER_PROBLEM])
            hidden = len(details) - SHOWN_PER_PROBLEM
            more = f" (+{hidden} more)" if hidden > 0 else ""
            lines.append(f"- {kind} [{len(details)}]: {shown}{more}")
        return "\n".join(lines)


def check(snapshot: Snapshot, completions: list[str]) -> Findings:
    """Everything a finished trial must satisfy, as findings (empty when all is well)."""
    findings = Findings()
    if snapshot.workflow_status != "D":
        findings.add("workflow not done", f"workflow status {snapshot.workflow_status}")
    if not snapshot.last_run_ended_well:
        findings.add("last run not done", f"runs (id, status): {snapshot.runs}")
    if len(snapshot.tasks) != TASK_COUNT:
        findings.add("tasks missing", f"{len(snapshot.tasks)} of {TASK_COUNT} tasks bound")
    for task_id, (name, status) in sorted(snapshot.tasks.items()):
        if status != "D":
            findings.add("task not done", f"{name} (task {task_id}) is {status}")

    by_id = {instance.id: instance for instance in snapshot.instances}
    done_by_task: dict[int, list[int]] = defaultdict(list)
    for instance in snapshot.instances:
        if instance.status not in FINAL_INSTANCE_STATUSES:
            findings.add(
                "instance left live",
                f"instance {instance.id} of task {instance.task_id} (run {instance.run_id}) "
                f"is {instance.status}",
            )
        if instance.status == "D":
            done_by_task[instance.task_id].append(instance.id)
        if instance.status in ERROR_INSTANCE_STATUSES and instance.id not in snapshot.error_logged:
            findings.add(
                "error swallowed",
                f"instance {instance.id} of task {instance.task_id} is {instance.status} "
                "without an error log row",
            )
    for task_id, done in sorted(done_by_task.items()):
        if len(done) > 1:
            findings.add("task done twice", f"task {task_id}: done instances {done}")

    task_by_name = {name: task_id for task_id, (name, _) in snapshot.tasks.items()}
    lines_by_instance: Counter[int] = Counter()
    for line in completions:
        words = line.split()
        if len(words) != 2 or not words[1].isdigit():
            findings.add("garbled completion line", repr(line))
            continue
        name, instance_id = words[0], int(words[1])
        lines_by_instance[instance_id] += 1
        instance = by_id.get(instance_id)
        if instance is None:
            findings.add("completion of an unknown instance", line)
        elif task_by_name.get(name) != instance.task_id:
            findings.add("completion of another task's instance", line)
        elif instance.status != "D":
            findings.lost_completions += 1  # its attempt was lost; a rerun was needed
    for instance_id, count in sorted(lines_by_instance.items()):
        if count > 1:
            findings.add("command completed twice by one instance", f"{instance_id} x{count}")
    for task_id, done in sorted(done_by_task.items()):
        for instance_id in done:
            if lines_by_instance[instance_id] == 0:
                findings.add(
                    "done without its command completing",
                    f"instance {instance_id} of task {task_id}",
                )
    return findings


# --- the trial ---------------------------------------------------------------------------------


class FaultTrial:
    """One trial; :meth:`run` plays it to the end and raises :class:`TrialFailure` on trouble.

    Always call :meth:`cleanup` afterwards (the fixture does), also after a failure.
    """

    def __init__(
        self,
        *,
        kind: str,
        engine: str,
        seed: int,
        trial: int,
        database_url: str,
        directory: Path,
        processes: ProcessRegistry,
    ) -> None:
        self.kind = kind
        self.plan = FaultPlan.draw(kind, seed)
        self.database_url = database_url
        self.directory = directory
        self.processes = processes
        self.record = TrialRecord(
            kind=kind,
            engine=engine,
            seed=seed,
            trial=trial,
            swarm_heartbeat=self.plan.swarm_heartbeat,
            directory=str(directory),
        )
        self.marker = uuid.uuid4().hex
        self.port = free_port()
        self.server_url = f"http://127.0.0.1:{self.port}"
        self.completions_log = directory / "completions.log"
        self.script_path = directory / "build.py"
        self._victim_rng = random.Random(f"victims:{kind}:{seed}")
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._server: subprocess.Popen[bytes] | None = None
        self._script: subprocess.Popen[bytes] | None = None
        self._generation = 0  # scripts started so far
        self._killed_generation = 0  # the latest script whose swarm or distributor was killed
        self._finished = threading.Event()
        self._injector = threading.Thread(target=self._inject, name="fault-injector", daemon=True)
        self._injector_error: BaseException | None = None

    # --- the whole trial ---------------------------------------------------------------------

    def run(self) -> Snapshot:
        """Set up, run the workflow to its end through every kill, and check the result."""
        self._prepare()
        self._injector.start()
        try:
            self._run_as_a_user()
        finally:
            self._finished.set()
            self._injector.join(timeout=SERVER_HEALTH_DEADLINE_SECONDS)
        self._raise_injector_error()
        snapshot = self._settle()
        findings = check(snapshot, read_completions(self.completions_log))
        self._check_resumes(findings)
        if self.kind == "embedded" and findings.lost_completions:
            # The run carries on through a restart of its own server: no report may be lost,
            # so no command may have to run again.
            findings.add(
                "command run twice",
                f"{findings.lost_completions} command(s) completed in an attempt that was lost",
            )
        self._note_snapshot(snapshot)
        self.record.lost_completions = findings.lost_completions
        if findings.problems:
            raise TrialFailure("herdsman did not finish the work cleanly:\n" + findings.describe())
        return snapshot

    def database_summary(self) -> str:
        """The database's view of the trial, for a failure message; never raises."""
        try:
            snapshot = read_snapshot(self.database_url)
        except Exception as error:
            return f"(the database could not be read: {error!r})"
        self._note_snapshot(snapshot)
        return snapshot.summary()

    def _note_snapshot(self, snapshot: Snapshot) -> None:
        self.record.runs = len(snapshot.runs)
        self.record.attempts = len(snapshot.instances)

    def _check_resumes(self, findings: Findings) -> None:
        """One resume per killed swarm or distributor; none for killed pool processes.

        A killed server may cost resumes too (a run the reaper ended while the server was
        away); those are only counted, in the report.
        """
        kills = sum(1 for kill in self.record.kills if not kill.get("skipped"))
        expected = {"swarm": kills, "distributor": kills, "worker": 0, "embedded": 0}.get(self.kind)
        if expected is not None and self.record.resumes != expected:
            findings.add(
                "resumes needed",
                f"{self.record.resumes} resume(s) after {kills} kill(s) of the {self.kind}; "
                f"the script's exit codes were {self.record.script_exits} (see script-*.log)",
            )

    def cleanup(self) -> None:
        """Stop everything the trial started, whatever state it is in."""
        self._finished.set()
        if self._injector.is_alive():
            self._injector.join(timeout=SERVER_HEALTH_DEADLINE_SECONDS)
        with self._lock:
            script, server = self._script, self._server
        if script is not None:
            self.processes.stop(script, timeout=5)
        kill_processes_marked(self.marker)
        kill_processes_mentioning(str(self.directory))
        kill_processes_mentioning(f"--server-url {self.server_url} ")
        if server is not None:
            self.processes.stop(server, timeout=5)
        self.record.seconds = round(time.monotonic() - self._started, 1)

    def describe(self) -> str:
        """How to find and reproduce this trial; part of every failure message."""
        kills = "; ".join(_describe_kill(kill) for kill in self.record.kills) or "none yet"
        return (
            f"fault trial kind={self.kind} engine={self.record.engine} seed={self.plan.seed} "
            f"(reproduce: pytest tests/faults -k '{self.kind} and {self.record.engine}' "
            f"--fault-seed {self.plan.seed})\n"
            f"kills: {kills}\n"
            f"server restarts: {self.record.server_restarts}, resumes: {self.record.resumes}, "
            f"script exit codes: {self.record.script_exits}\n"
            f"logs: {self.directory} (server/server.log, script-*.log, completions.log)"
        )

    def last_script_log(self, characters: int = 3000) -> str:
        logs = sorted(self.directory.glob("script-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        if not logs:
            return ""
        return (
            f"--- end of {logs[-1].name} ---\n" + logs[-1].read_text(errors="replace")[-characters:]
        )

    # --- set-up ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.kind == "embedded":
            self._start_embedded_server()
        else:
            self._start_server()
        cluster = create_cluster(self.database_url, "multiprocess", dict(FAST_PARAMETERS))
        config = {
            "tool_name": f"fault-{self.kind}-{self.marker[:8]}",
            "workflow_args": f"fault-{self.kind}-{self.plan.seed}",
            "cluster_name": cluster,
            "seed": self.plan.seed,
            "layers": LAYERS,
            "width": WIDTH,
            "max_attempts": MAX_ATTEMPTS,
            "heartbeat_interval": self.plan.swarm_heartbeat,
            "resume_timeout": RESUME_TIMEOUT_SECONDS,
            "completions_log": str(self.completions_log),
        }
        (self.directory / "workflow.json").write_text(json.dumps(config, indent=2))
        shutil.copyfile(user_script.__file__, self.script_path)

    def _start_server(self) -> None:
        process, _ = start_server_process(
            self.processes,
            database_url=self.database_url,
            state_dir=self.directory / "server",
            port=self.port,
            extra_args=("--log-level", "info"),  # the reaper's passes, for the evidence
            extra_env={**SERVER_SETTINGS, MARKER_VARIABLE: self.marker},
        )
        with self._lock:
            self._server = process

    def _start_embedded_server(self) -> None:
        """The embedded server on the trial's database, started as the user's client would.

        Started once from a process with the script's environment (so that the schema exists
        before the trial's cluster is written); later starts are the run's own. Its reaper
        keeps its default interval, as for any user.
        """
        started = subprocess.run(
            [sys.executable, "-c", EMBEDDED_START],
            env=self._script_environment(),
            capture_output=True,
            text=True,
            timeout=SERVER_HEALTH_DEADLINE_SECONDS,
            check=False,
        )
        if started.returncode != 0:
            raise TrialFailure(f"the embedded server did not start:\n{started.stderr}")
        info = read_ready_file(self.embedded_data_dir / "server.json")
        if info is None:
            raise TrialFailure("the embedded server wrote no ready file")
        self.server_url = info.url

    @property
    def embedded_data_dir(self) -> Path:
        return self.directory / "embedded"

    def _script_environment(self) -> dict[str, str]:
        # os.environ holds the test's isolated settings (data dir, config file) already.
        if self.kind == "embedded":
            return {
                **{k: v for k, v in os.environ.items() if k != "HERDSMAN_SERVER_URL"},
                "HERDSMAN_DATA_DIR": str(self.embedded_data_dir),
                "HERDSMAN_DATABASE_URL": self.database_url,
                "HERDSMAN_LOG_LEVEL": "info",
                MARKER_VARIABLE: self.marker,
            }
        return {
            **os.environ,
            "HERDSMAN_SERVER_URL": self.server_url,
            "HERDSMAN_LOG_LEVEL": "info",
            MARKER_VARIABLE: self.marker,
        }

    # --- the user --------------------------------------------------------------------------------

    def _run_as_a_user(self) -> None:
        """Run the script until it succeeds, resuming after every failure, as a user would."""
        resume = False
        while True:
            if resume:
                if self.record.resumes >= MAX_RESUMES:
                    raise TrialFailure(f"the run did not end D after {MAX_RESUMES} resumes")
                self._wait_for_server()
                time.sleep(self.plan.resume_pauses[self.record.resumes])
                self.record.resumes += 1
            script = self._start_script(resume)
            exit_code = self._wait_for_script(script)
            if exit_code in (0, user_script.ALREADY_COMPLETE_EXIT):
                return
            resume = True

    def _start_script(self, resume: bool) -> subprocess.Popen[bytes]:
        with self._lock:
            self._generation += 1
            log_path = self.directory / f"script-{self._generation}.log"
            command = [
                sys.executable,
                str(self.script_path),
                "--resume" if resume else "--no-resume",
            ]
            with log_path.open("ab") as log:
                script = self.processes.spawn(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._script_environment(),
                    cwd=self.directory,
                )
            self._script = script
        return script

    def _wait_for_script(self, script: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                exit_code = script.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                self._raise_injector_error()
                self._check_deadline("the workflow script to end")
                continue
            self.processes.stop(script)  # reaps it and forgets it
            self.record.script_exits.append(exit_code)
            return exit_code

    def _wait_for_server(self) -> None:
        """Before a resume: a user first makes sure the server answers.

        (The embedded server needs no waiting: the resumed script starts it if it must.)
        """
        if self.kind == "embedded":
            return
        deadline = time.monotonic() + SERVER_HEALTH_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            self._raise_injector_error()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.server_url}/api/v1/health", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise TrialFailure(f"the server did not answer for {SERVER_HEALTH_DEADLINE_SECONDS:.0f} s")

    def _check_deadline(self, waiting_for: str) -> None:
        if time.monotonic() - self._started > TRIAL_DEADLINE_SECONDS:
            raise TrialFailure(
                f"gave up waiting for {waiting_for} after {TRIAL_DEADLINE_SECONDS:.0f} s"
            )

    def _raise_injector_error(self) -> None:
        error = self._injector_error
        if error is not None:
            raise TrialFailure(f"the fault injector failed: {error!r}") from error

    def _settle(self) -> Snapshot:
        """The database once the run's aftermath settled (the reaper may still end a run)."""
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        snapshot = read_snapshot(self.database_url)
        while not snapshot.settled() and time.monotonic() < deadline:
            time.sleep(0.5)
            snapshot = read_snapshot(self.database_url)
        return snapshot

    # --- the injector ----------------------------------------------------------------------------

    def _inject(self) -> None:
        killers: dict[str, Callable[[KillPoint], None]] = {
            "server": self._kill_server,
            "embedded": self._kill_embedded_server,
            "swarm": self._kill_swarm,
            "distributor": self._kill_distributor,
            "worker": self._kill_workers,
        }
        try:
            for point in self.plan.points:
                if not self._wait_for_moment(point):
                    self.record.kills.append(
                        {"skipped": True, "completions_target": point.completions}
                    )
                    continue
                killers[self.kind](point)
        except BaseException as error:  # pytest.fail raises BaseException; hand it over
            self._injector_error = error

    def _progress(self) -> int:
        return len({line.split(" ", 1)[0] for line in read_completions(self.completions_log)})

    def _live_script(self) -> tuple[subprocess.Popen[bytes] | None, int]:
        with self._lock:
            script, generation = self._script, self._generation
        if script is None or script.poll() is not None:
            return None, generation
        return script, generation

    def _wait_for_moment(self, point: KillPoint) -> bool:
        """Wait for the point's progress and delay; False when the run ended first."""
        while not self._finished.is_set():
            script, generation = self._live_script()
            fresh = generation > self._killed_generation or self.kind in (
                "server",
                "embedded",
                "worker",
            )
            if script is not None and fresh and self._progress() >= point.completions:
                return not self._finished.wait(point.delay)
            time.sleep(POLL_SECONDS)
        return False

    def _note_kill(self, target: str, pids: list[int], **details: Any) -> None:
        self.record.kills.append(
            {
                "at": round(time.monotonic() - self._started, 2),
                "utc": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "completions": self._progress(),
                "target": target,
                "pids": pids,
                **details,
            }
        )

    def _kill_server(self, point: KillPoint) -> None:
        with self._lock:
            server = self._server
        assert server is not None
        server.send_signal(signal.SIGKILL)
        server.wait()
        self.processes.stop(server)
        self._note_kill("server", [server.pid], pause=point.pause)
        time.sleep(point.pause)
        self._start_server()
        self.record.server_restarts += 1

    def _kill_embedded_server(self, point: KillPoint) -> None:
        """SIGKILL the embedded server the run uses; nobody but the run starts it again."""
        info = read_ready_file(self.embedded_data_dir / "server.json")
        if info is None:
            return
        try:
            server = psutil.Process(info.pid)
            if "herdsman.server" not in " ".join(server.cmdline()):
                return
        except psutil.Error:
            return
        if _sigkill(server):
            with contextlib.suppress(psutil.Error):
                server.wait(timeout=10)
            self._note_kill("embedded", [info.pid], url=info.url)
            self.record.server_restarts += 1

    def _kill_swarm(self, point: KillPoint) -> None:
        script, generation = self._live_script()
        if script is None:
            return
        script.send_signal(signal.SIGKILL)
        self._killed_generation = generation
        self._note_kill("swarm", [script.pid])

    def _kill_distributor(self, point: KillPoint) -> None:
        for script, generation in self._live_scripts():
            found = _children_matching(script.pid, "herdsman.distributor")
            killed = [d.pid for d in found if _sigkill(d)]
            if killed:
                self._killed_generation = generation
                self._note_kill("distributor", killed)
                return

    def _kill_workers(self, point: KillPoint) -> None:
        for script, _ in self._live_scripts():
            pool = [
                worker
                for distributor in _children_matching(script.pid, "herdsman.distributor")
                for worker in _children_matching(distributor.pid, "spawn_main")
            ]
            if not pool:
                continue
            victims = self._victim_rng.sample(pool, min(point.victims, len(pool)))
            killed = [worker.pid for worker in victims if _sigkill(worker)]
            if killed:
                self._note_kill("worker", killed, pool_size=len(pool))
                return

    def _live_scripts(self) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
        """The live script, polled until the run finishes, for a kill that needs its children."""
        while not self._finished.is_set():
            script, generation = self._live_script()
            if script is not None:
                yield script, generation
            time.sleep(POLL_SECONDS)


def _describe_kill(kill: dict[str, Any]) -> str:
    if kill.get("skipped"):
        return f"skipped (the trial ended before {kill['completions_target']} completions)"
    return (
        f"{kill['target']} pids {kill['pids']} at {kill['at']} s ({kill['utc']}) "
        f"after {kill['completions']} completions"
    )
