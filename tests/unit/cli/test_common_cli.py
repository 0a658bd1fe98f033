"""What every command shares: ids as arguments, full command summaries, Ctrl-C in one line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from tests.unit.cli.conftest import run

from herdsman.cli.common import HerdsmanGroup, task_option, workflow_option
from herdsman.cli.formatting import plural
from herdsman.core.errors import RunInterrupted


@click.command()
@workflow_option()
def one(workflow_id: int) -> None:
    click.echo(f"workflow {workflow_id}")


@click.command()
@workflow_option(multiple=True, required=False)
def many(workflow_ids: tuple[int, ...]) -> None:
    click.echo(f"workflows {list(workflow_ids)}")


@click.command()
@task_option(multiple=True)
@workflow_option(positional=False)
def update(task_ids: tuple[int, ...], workflow_id: int) -> None:
    click.echo(f"tasks {list(task_ids)} of workflow {workflow_id}")


@pytest.mark.parametrize("args", [["3"], ["-w", "3"], ["--workflow-id", "3"], ["3", "-w", "3"]])
def test_an_id_is_taken_as_an_argument_or_an_option(args: list[str]) -> None:
    result = CliRunner().invoke(one, args)
    assert result.exit_code == 0, result.output
    assert result.output == "workflow 3\n"


def test_a_missing_id_or_two_ids_where_one_is_taken_are_usage_errors() -> None:
    missing = CliRunner().invoke(one, [])
    assert missing.exit_code == 2
    assert "give the workflow id, as an argument or with -w" in missing.output
    two = CliRunner().invoke(one, ["3", "4"])
    assert two.exit_code == 2 and "give one workflow id, not 2" in two.output
    assert CliRunner().invoke(one, ["0"]).exit_code == 2  # ids are positive


def test_several_ids_come_from_arguments_and_options_together() -> None:
    assert CliRunner().invoke(many, ["3", "-w", "4", "5"]).output == "workflows [3, 5, 4]\n"
    assert CliRunner().invoke(many, []).output == "workflows []\n"


def test_with_two_kinds_of_id_the_arguments_are_the_tasks() -> None:
    result = CliRunner().invoke(update, ["7", "8", "-w", "3"])
    assert result.output == "tasks [7, 8] of workflow 3\n"


def test_command_summaries_are_whole_sentences() -> None:
    shown = run("workflow", "--help", env={"COLUMNS": "80"}).output
    commands = shown.split("Commands:", 1)[1]
    assert "..." not in commands
    assert "while the workflow runs" in shown and "(or before a resume)." in shown
    assert "[WORKFLOW_ID]" in run("workflow", "tasks", "--help").output
    assert "(the default)" in run("workflow", "resume", "--help").output


def _group_raising(error: BaseException) -> HerdsmanGroup:
    @click.group(cls=HerdsmanGroup)
    @click.option("--debug", is_flag=True)
    def root(debug: bool) -> None:
        pass

    @root.command()
    def go() -> None:
        raise error

    return root


def test_ctrl_c_ends_a_command_with_one_line_and_status_130() -> None:
    result = CliRunner().invoke(_group_raising(KeyboardInterrupt()), ["go"])
    assert result.exit_code == 130
    assert result.output == "interrupted\n"


def test_a_stopped_run_has_said_its_line_already() -> None:
    result = CliRunner().invoke(_group_raising(RunInterrupted("run 3 was stopped")), ["go"])
    assert result.exit_code == 130 and result.output == ""


def test_plurals() -> None:
    assert [plural(n, "group") for n in (0, 1, 9)] == ["0 groups", "1 group", "9 groups"]
