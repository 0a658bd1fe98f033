"""The change feed's body, written without pydantic, is exactly the documented model's."""

from __future__ import annotations

import orjson

from herdsman.core.schemas.swarm import ChangeOut, ChangesOut
from herdsman.server.api.routes.swarm import _changes_response
from herdsman.server.database.feed import ChangeRows


def test_the_written_body_is_what_the_model_would_write() -> None:
    read = ChangeRows(
        last_seq=9, changes=[(3, "T", 7, "D", 7), (5, "R", 1, "S", None), (8, "I", 70, "R", 7)]
    )
    expected = ChangesOut(
        last_seq=9,
        changes=[
            ChangeOut(seq=3, kind="T", id=7, status="D", task_id=7),
            ChangeOut(seq=5, kind="R", id=1, status="S"),
            ChangeOut(seq=8, kind="I", id=70, status="R", task_id=7),
        ],
    )

    response = _changes_response(read)

    assert response.media_type == "application/json"
    assert orjson.loads(bytes(response.body)) == expected.model_dump()
    assert ChangesOut.model_validate_json(bytes(response.body)) == expected


def test_an_empty_read_keeps_the_cursor() -> None:
    response = _changes_response(ChangeRows(last_seq=41, changes=[]))

    assert ChangesOut.model_validate_json(bytes(response.body)) == ChangesOut(
        last_seq=41, changes=[]
    )
