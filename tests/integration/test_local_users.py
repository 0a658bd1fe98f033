"""Another user of the same machine cannot use your embedded server.

Binding to 127.0.0.1 keeps the network out, not the other users of a shared login node: they
see the port with ``ss -ltn``. What keeps them out is the token, which lives in files only the
owner can read. This test starts an embedded server as the test user in a data directory any
user may enter (as a home directory often is), then acts as ``nobody``: it cannot read the
ready file or the key, and its calls to the port, with or without a made-up token, are refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from herdsman.client.embedded import ensure_server, stop_embedded_server
from herdsman.core.config import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0
        or shutil.which("setpriv") is None
        or not Path("/usr/bin/python3").exists(),
        reason="needs root, setpriv and /usr/bin/python3 to act as another user",
    ),
]

# Run as nobody with the system's Python (the test's may live where nobody may not go).
INTRUDER = r"""
import json, sys, urllib.request, urllib.error
data_dir, url = sys.argv[1], sys.argv[2]
found = {}
for name in ("server.json", "server.key"):
    try:
        open(f"{data_dir}/{name}").read()
        found[name] = "read"
    except PermissionError:
        found[name] = "denied"
def call(headers):
    request = urllib.request.Request(url + "/api/v1/auth/whoami", headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code
found["no token"] = call({})
forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyb290Iiwicm9sZSI6ImFkbWluIn0.x"
found["forged token"] = call({"Authorization": "Bearer " + forged})
stop = urllib.request.Request(url + "/api/v1/workflows/1/stop", method="POST")
try:
    found["stop"] = urllib.request.urlopen(stop, timeout=10).status
except urllib.error.HTTPError as error:
    found["stop"] = error.code
print(json.dumps(found))
"""


@pytest.fixture
def shared_data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory others may enter (0755), like one under a home directory."""
    directory = Path(tempfile.mkdtemp(prefix="herdsman-local-users-"))
    directory.chmod(0o755)
    data_dir = directory / "data"
    data_dir.mkdir(mode=0o755)
    monkeypatch.setenv("HERDSMAN_DATA_DIR", str(data_dir))
    monkeypatch.delenv("HERDSMAN_TOKEN", raising=False)
    try:
        yield data_dir
    finally:
        stop_embedded_server(Settings(), timeout=5)
        shutil.rmtree(directory, ignore_errors=True)


def test_another_local_user_is_refused_by_the_embedded_server(shared_data_dir: Path) -> None:
    address = ensure_server(Settings())
    assert address.token  # the owner's token, from the ready file
    assert (shared_data_dir / "server.json").stat().st_mode & 0o777 == 0o600
    assert (shared_data_dir / "server.key").stat().st_mode & 0o777 == 0o600

    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            INTRUDER,
            str(shared_data_dir),
            address.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {
        "server.json": "denied",
        "server.key": "denied",
        "no token": 401,
        "forged token": 401,
        "stop": 401,
    }
