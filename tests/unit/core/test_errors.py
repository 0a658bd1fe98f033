"""Expected errors reach a script with a short traceback, and settings errors name their source."""

from __future__ import annotations

import traceback

import pytest

from herdsman.core.config import load_settings
from herdsman.core.errors import (
    ConfigurationError,
    RunEndedEarlyWarning,
    RunTimedOutWarning,
    WorkflowAlreadyComplete,
    short_traceback,
)
from herdsman.core.logs import configure_logging


def _deep() -> None:
    def level_two() -> None:
        try:
            raise OSError("connection refused")
        except OSError:
            raise WorkflowAlreadyComplete("every task of workflow 3 is done") from None

    level_two()


@short_traceback
def public_call() -> None:
    _deep()


def test_an_expected_error_keeps_only_the_public_frame_and_no_chain() -> None:
    with pytest.raises(WorkflowAlreadyComplete) as raised:
        public_call()
    error = raised.value
    assert error.__cause__ is None and error.__suppress_context__
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert "_deep" not in frames and "level_two" not in frames
    assert "wrapper" in frames


def test_debug_logging_keeps_the_whole_traceback() -> None:
    configure_logging("debug", format="text")
    try:
        with pytest.raises(WorkflowAlreadyComplete) as raised:
            public_call()
    finally:
        configure_logging("warning", format="text")
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "level_two" in frames


def test_other_exceptions_pass_untouched() -> None:
    @short_traceback
    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError) as raised:
        broken()
    assert "broken" in [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]


def test_a_bad_environment_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERDSMAN_HTTP__TIMEOUT", "-1")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert "HERDSMAN_HTTP__TIMEOUT='-1' (http.timeout)" in message
    assert "greater than 0" in message and "\n" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_run_warnings_become_runtime_errors_for_scripts_that_want_jobmons_behaviour() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RunEndedEarlyWarning)
        with pytest.raises(RuntimeError):
            warnings.warn("timed out", RunTimedOutWarning, stacklevel=1)
