"""Bounded wire types: integers fit their columns, text is storable, reports are cleaned."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from herdsman.core.schemas.types import (
    LONG_TEXT_CHARACTERS,
    CatalogueId,
    Id,
    Int32,
    Name,
    ReportedText,
    Seconds,
    Text,
)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (Id, [1, 2**31, 2**63 - 1], [0, -1, 2**63]),
        (CatalogueId, [1, 2**31 - 1], [0, 2**31]),
        (Int32, [-(2**31), -9, 2**31 - 1], [-(2**31) - 1, 2**31]),
        (Seconds, [0.5, 86_400.0], [0, -1, float("inf"), float("nan"), 10.0**9]),
    ],
)
def test_numbers_fit_their_columns(kind: Any, good: list[Any], bad: list[Any]) -> None:
    adapter = TypeAdapter(kind)
    for value in good:
        assert adapter.validate_python(value) == value
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


@pytest.mark.parametrize("kind", [Text, Name])
@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_text_that_cannot_be_stored_is_refused(kind: Any, value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(value)


def test_a_name_fits_a_varchar_255() -> None:
    adapter = TypeAdapter(Name)
    assert adapter.validate_python("n" * 255) == "n" * 255
    with pytest.raises(ValidationError):
        adapter.validate_python("n" * 256)


def test_reported_text_is_made_storable_not_refused() -> None:
    adapter = TypeAdapter(ReportedText)

    assert adapter.validate_python("out\x00put\udc80") == "out\ufffdput?"
    assert len(adapter.validate_python("x" * (LONG_TEXT_CHARACTERS + 5))) == LONG_TEXT_CHARACTERS
    assert adapter.validate_json('"plain"') == "plain"
