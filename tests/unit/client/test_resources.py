"""Compute resources: validation against a queue, and resources files (YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from herdsman import InvalidResourceError, Tool
from herdsman.client.resources import load_resources_yaml, validate_resources
from herdsman.core.schemas.client import ClusterOut, QueueOut

# --- validate_resources -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "canonical"),
    [
        ({}, {"queue": "default"}),
        ({"memory": "2G"}, {"memory": 2.0, "queue": "default"}),
        ({"memory": "512M"}, {"memory": 0.5, "queue": "default"}),
        ({"memory": 4}, {"memory": 4.0, "queue": "default"}),
        ({"runtime": "01:00:00"}, {"runtime": 3600, "queue": "default"}),
        ({"runtime": "1h30m"}, {"runtime": 5400, "queue": "default"}),
        ({"runtime": 90.2}, {"runtime": 91, "queue": "default"}),
        ({"cores": "4"}, {"cores": 4, "queue": "default"}),
        ({"cores": 2.0}, {"cores": 2, "queue": "default"}),
        ({"queue": "small", "memory": "1G"}, {"queue": "small", "memory": 1.0}),
        ({"project": "proj_x", "gpus": 1}, {"project": "proj_x", "gpus": 1, "queue": "default"}),
    ],
    ids=[
        "nothing",
        "memory-G",
        "memory-M",
        "memory-number",
        "runtime-clock",
        "runtime-duration",
        "runtime-rounds-up",
        "cores-str",
        "cores-float",
        "named-queue",
        "other-keys-pass-through",
    ],
)
def test_requests_are_made_canonical(
    dummy_cluster: ClusterOut, requested: dict[str, Any], canonical: dict[str, Any]
) -> None:
    validated = validate_resources(dummy_cluster, requested, task_name="t")

    assert validated.requested == canonical
    assert validated.queue.name == canonical["queue"]


def test_canonical_units_have_canonical_types(dummy_cluster: ClusterOut) -> None:
    validated = validate_resources(
        dummy_cluster, {"memory": 2, "runtime": "60", "cores": "1"}, task_name="t"
    )

    assert type(validated.requested["memory"]) is float
    assert type(validated.requested["runtime"]) is int
    assert type(validated.requested["cores"]) is int


def test_the_request_is_not_modified(dummy_cluster: ClusterOut) -> None:
    requested = {"memory": "2G", "runtime": "1h"}

    validate_resources(dummy_cluster, requested, task_name="t")

    assert requested == {"memory": "2G", "runtime": "1h"}


def test_no_queue_and_no_default_queue_is_refused() -> None:
    cluster = ClusterOut(
        id=9,
        name="nodefault",
        plugin="dummy",
        parameters={},
        queues=[QueueOut(id=1, name="a", is_default=False, limits={})],
    )

    with pytest.raises(InvalidResourceError) as caught:
        validate_resources(cluster, {"memory": 1}, task_name="job")

    assert "task 'job' names no queue" in str(caught.value)
    assert "'nodefault' has no default queue" in str(caught.value)


def test_an_unknown_queue_of_a_scheduler_lists_the_known_ones(dummy_cluster: ClusterOut) -> None:
    scheduler = dummy_cluster.model_copy(update={"name": "hpc", "plugin": "slurm"})
    with pytest.raises(InvalidResourceError) as caught:
        validate_resources(scheduler, {"queue": "all.q"}, task_name="job")

    assert "task 'job' asks for queue 'all.q'" in str(caught.value)
    assert "its queues: default, small" in str(caught.value)


@pytest.mark.parametrize("plugin", ["sequential", "multiprocess", "dummy"])
def test_a_local_cluster_takes_any_queue_name_as_its_default_queue(
    dummy_cluster: ClusterOut, plugin: str
) -> None:
    local = dummy_cluster.model_copy(update={"plugin": plugin})
    for name in ("all.q", "null.q"):
        validated = validate_resources(local, {"queue": name, "memory": "1G"}, task_name="job")
        assert (validated.queue.name, validated.requested) == (
            "default",
            {"queue": "default", "memory": 1.0},
        )
    # Its own queues keep their names.
    assert validate_resources(local, {"queue": "small"}, task_name="job").queue.name == "small"


@pytest.mark.parametrize(
    ("requested", "ok"),
    [
        ({"cores": 1}, True),
        ({"cores": 8}, True),
        ({"cores": 9}, False),
        ({"memory": 64}, True),
        ({"memory": "65536M"}, True),
        ({"memory": "65537M"}, False),
        ({"runtime": 86400}, True),
        ({"runtime": "1-00:00:00"}, True),
        ({"runtime": "1-00:00:01"}, False),
    ],
)
def test_queue_limits_are_inclusive(
    dummy_cluster: ClusterOut, requested: dict[str, Any], ok: bool
) -> None:
    if ok:
        validate_resources(dummy_cluster, requested, task_name="t")
    else:
        with pytest.raises(InvalidResourceError, match="allows"):
            validate_resources(dummy_cluster, requested, task_name="t")


# --- resources files --------------------------------------------------------------------------

RESOURCES_YAML = """\
tool_resources:
  dummy: {cores: 1, memory: 2G, runtime: "01:00:00", queue: default}
  other: {memory: 16G}
task_template_resources:
  fit:
    dummy: {memory: 8G, cores: 4}
  plot:
    other: {memory: 1G}
"""


@pytest.fixture
def resources_file(tmp_path: Path) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(RESOURCES_YAML)
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(text)
    return path


def test_load_resources_yaml_reads_both_sections(resources_file: Path) -> None:
    tool_resources, template_resources = load_resources_yaml(resources_file)

    assert tool_resources == {
        "dummy": {"cores": 1, "memory": "2G", "runtime": "01:00:00", "queue": "default"},
        "other": {"memory": "16G"},
    }
    assert template_resources == {
        "fit": {"dummy": {"memory": "8G", "cores": 4}},
        "plot": {"other": {"memory": "1G"}},
    }


@pytest.mark.parametrize(
    "text", ["", "tool_resources:\n", "task_template_resources: {}\n"], ids=["empty", "null", "{}"]
)
def test_empty_resources_files_give_no_resources(tmp_path: Path, text: str) -> None:
    assert load_resources_yaml(write(tmp_path, text)) == ({}, {})


def test_a_str_path_is_accepted(resources_file: Path) -> None:
    assert load_resources_yaml(str(resources_file)) == load_resources_yaml(resources_file)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- dummy\n- other\n", "must hold a mapping"),
        ("just text\n", "must hold a mapping"),
        ("tool_resources: [dummy]\n", "tool_resources must map cluster names"),
        ("tool_resources: {dummy: 4G}\n", "tool_resources must map cluster names"),
        ("task_template_resources: [fit]\n", "task_template_resources must be a mapping"),
        (
            "task_template_resources: {fit: {dummy: 8G}}\n",
            "task_template_resources.fit must map cluster names",
        ),
        ("task_template_resources: {fit: 3}\n", "task_template_resources.fit must map"),
    ],
    ids=[
        "top-level-list",
        "top-level-str",
        "tool-list",
        "tool-value-not-mapping",
        "templates-list",
        "template-value-not-mapping",
        "template-not-mapping",
    ],
)
def test_malformed_resources_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(InvalidResourceError) as caught:
        load_resources_yaml(path)

    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text", ["tool_resources: [\n", "a: b: c\n", "\tdummy: {}\n"])
def test_a_resources_file_that_is_not_yaml_is_an_invalid_resource(
    tmp_path: Path, text: str
) -> None:
    with pytest.raises(InvalidResourceError):
        load_resources_yaml(write(tmp_path, text))


def test_tool_defaults_from_yaml_in_jobmons_form_take_one_cluster(
    tool: Tool, resources_file: Path
) -> None:
    tool.set_default_compute_resources_from_yaml("dummy", resources_file)

    assert tool.default_cluster_name == "dummy"
    assert tool.default_compute_resources_set == {
        "dummy": {"cores": 1, "memory": "2G", "runtime": "01:00:00", "queue": "default"},
    }


def test_tool_defaults_from_yaml_in_the_one_argument_form_take_every_cluster(
    tool: Tool, resources_file: Path
) -> None:
    tool.set_default_compute_resources_from_yaml(resources_file)

    assert tool.default_cluster_name is None
    assert tool.default_compute_resources_set == {
        "dummy": {"cores": 1, "memory": "2G", "runtime": "01:00:00", "queue": "default"},
        "other": {"memory": "16G"},
    }


def test_tool_yaml_keeps_the_default_cluster_unless_given(tool: Tool, resources_file: Path) -> None:
    tool.set_default_cluster_name("other")

    tool.set_default_compute_resources_from_yaml(resources_file)

    assert tool.default_cluster_name == "other"


def test_tool_yaml_replaces_a_clusters_resources_and_keeps_other_clusters(
    tool: Tool, tmp_path: Path
) -> None:
    tool.set_default_compute_resources_from_dict("dummy", {"memory": "1G", "cores": 8})
    tool.set_default_compute_resources_from_dict("elsewhere", {"memory": "3G"})

    tool.set_default_compute_resources_from_yaml(write(tmp_path, "tool_resources: {dummy: {}}"))

    assert tool.default_compute_resources_set == {"dummy": {}, "elsewhere": {"memory": "3G"}}


def test_tool_yaml_sets_the_resources_of_existing_templates(
    tool: Tool, resources_file: Path
) -> None:
    fit = tool.get_task_template("fit", "fit")
    unrelated = tool.get_task_template("unrelated", "unrelated")

    tool.set_default_compute_resources_from_yaml(resources_file, set_task_templates=True)

    assert fit.default_compute_resources_set == {"dummy": {"memory": "8G", "cores": 4}}
    assert unrelated.default_compute_resources_set == {}
    assert "plot" not in tool.task_templates  # a file does not create templates


def test_tool_yaml_can_leave_templates_alone(tool: Tool, resources_file: Path) -> None:
    fit = tool.get_task_template("fit", "fit")

    tool.set_default_compute_resources_from_yaml(resources_file, set_task_templates=False)

    assert fit.default_compute_resources_set == {}
    assert tool.default_compute_resources_set["dummy"]["memory"] == "2G"


def test_get_task_template_reads_its_own_resources_from_yaml(
    tool: Tool, resources_file: Path
) -> None:
    fit = tool.get_task_template("fit", "fit", yaml_file=resources_file)

    assert fit.default_compute_resources_set == {"dummy": {"memory": "8G", "cores": 4}}
    assert tool.default_compute_resources_set == {}  # tool_resources are not applied


def test_get_task_template_yaml_without_its_section_sets_nothing(
    tool: Tool, resources_file: Path
) -> None:
    absent = tool.get_task_template("absent", "absent", yaml_file=resources_file)

    assert absent.default_compute_resources_set == {}


def test_get_task_template_refuses_a_malformed_yaml_file(tool: Tool, tmp_path: Path) -> None:
    with pytest.raises(InvalidResourceError, match="task_template_resources"):
        tool.get_task_template(
            "fit", "fit", yaml_file=write(tmp_path, "task_template_resources: 1")
        )
