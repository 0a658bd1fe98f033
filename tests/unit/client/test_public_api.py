"""The public API: ``herdsman.__all__`` is pinned and every name in it imports."""

from __future__ import annotations

import importlib

import pytest

import herdsman
import herdsman.client

EXPECTED_ALL = [
    "Array",
    "HerdsmanError",
    "InvalidResourceError",
    "Task",
    "TaskTemplate",
    "TaskTemplateVersion",
    "Tool",
    "Workflow",
    "WorkflowAlreadyComplete",
    "WorkflowAlreadyExists",
    "WorkflowValidationError",
    "__version__",
    "resume_workflow_from_id",
    "set_max_concurrently_running",
]


def test_the_public_api_is_pinned() -> None:
    assert herdsman.__all__ == EXPECTED_ALL


def test_the_client_api_is_pinned() -> None:
    assert herdsman.client.__all__ == [
        "Array",
        "Task",
        "TaskTemplate",
        "TaskTemplateVersion",
        "Tool",
        "Workflow",
    ]


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("herdsman")

    assert getattr(module, name) is not None


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from herdsman import *", namespace)

    assert sorted(set(namespace) - {"__builtins__"}) == sorted(EXPECTED_ALL)


def test_the_version_is_a_string() -> None:
    assert isinstance(herdsman.__version__, str)
    assert herdsman.__version__


def test_errors_are_herdsman_errors() -> None:
    for name in (
        "InvalidResourceError",
        "WorkflowAlreadyComplete",
        "WorkflowAlreadyExists",
        "WorkflowValidationError",
    ):
        assert issubclass(getattr(herdsman, name), herdsman.HerdsmanError)
