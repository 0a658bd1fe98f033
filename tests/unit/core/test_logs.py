"""The human format of log events: one readable line naming the task and attempt."""

from __future__ import annotations

import io
import json

import structlog

from herdsman.core.logs import configure_logging, debugging, describe_event, human_line


def test_a_limit_warning_names_the_task_and_attempt() -> None:
    event = {
        "event": "worker_limit_exceeded",
        "level": "warning",
        "task_id": 12,
        "task_instance_id": 34,
        "resource": "memory",
        "reason": "the command used 0.2 GiB, more than its memory request of 0.1 GiB; killed so "
        "it can be retried with more memory",
        "timestamp": "2026-12-05T10:00:00Z",
    }
    assert human_line(event) == (
        "herdsman warning: task 12 (attempt 34): the command used 0.2 GiB, more than its memory "
        "request of 0.1 GiB; killed so it can be retried with more memory"
    )


def test_a_dead_pool_process_names_the_attempt_it_was_running() -> None:
    line = human_line(
        {
            "event": "multiprocess_worker_died",
            "level": "warning",
            "exit_code": -9,
            "index": 1,
            "task_id": 5,
            "task_instance_id": 9,
            "hint": "the attempt is reported lost and the task retried",
        }
    )
    assert line.startswith("herdsman warning: task 5 (attempt 9): a process of the multiprocess")
    assert "exit code -9" in line and line.endswith("the task retried")


def test_an_event_without_a_sentence_shows_its_name_in_words_and_its_fields() -> None:
    assert describe_event(
        {"event": "distributor_launched", "level": "info", "workflow_run_id": 3, "claimed": 4}
    ) == ("workflow run 3: distributor launched (claimed=4)")


def test_a_sentence_missing_a_field_falls_back_to_the_fields() -> None:
    text = describe_event({"event": "distributor_killed", "pid": 7})
    assert text == "distributor killed (pid=7)"


def test_the_configured_formats_render_alike_for_people_and_as_json_for_the_relay() -> None:
    log = structlog.get_logger("test")
    human, machine = io.StringIO(), io.StringIO()
    try:
        configure_logging("info", stream=human, format="human")
        log.warning("swarm_feed_unavailable", workflow_run_id=3, error="refused")
        configure_logging("info", stream=machine, format="json")
        log.warning("swarm_feed_unavailable", workflow_run_id=3, error="refused")
        assert not debugging()
        configure_logging("debug", stream=machine, format="json")
        assert debugging()
    finally:
        configure_logging("warning", format="text")
    assert human.getvalue() == (
        "herdsman warning: workflow run 3: the server did not answer (refused); retrying\n"
    )
    event = json.loads(machine.getvalue().splitlines()[0])
    assert event["event"] == "swarm_feed_unavailable" and event["level"] == "warning"
    assert human_line(event) == human.getvalue().strip()
