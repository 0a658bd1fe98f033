"""Sign-in with MUNGE: a credential from ``munge -n`` proves the caller's uid to the server.

MUNGE runs on every node of a Slurm cluster with one shared key; ``unmunge`` on the server's
host decodes a credential, checks it is fresh and was not used before (munged refuses
replays), and says whose uid made it. The server then hands out a token for that user.
"""

from __future__ import annotations

import re
import subprocess

from herdsman.core.errors import AuthenticationError, ConfigurationError

__all__ = ["user_of_credential"]

UNMUNGE_SECONDS = 10
_UID_LINE = re.compile(r"^UID:\s+(?P<name>\S+)\s+\((?P<uid>\d+)\)", re.MULTILINE)
_STATUS_LINE = re.compile(r"^STATUS:\s+(?P<status>.+?)\s+\(\d+\)$", re.MULTILINE)


def user_of_credential(credential: str, unmunge: str = "unmunge") -> str:
    """The login name of the uid that made ``credential``; AuthenticationError if invalid."""
    try:
        result = subprocess.run(
            [unmunge],
            input=credential.encode(),
            capture_output=True,
            timeout=UNMUNGE_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigurationError(
            "this server cannot check MUNGE credentials: 'unmunge' is not installed on its host"
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthenticationError("MUNGE did not answer; is munged running?") from None
    if result.returncode != 0:
        raise AuthenticationError(f"the MUNGE credential was refused: {_refusal(result)}")
    match = _UID_LINE.search(result.stdout.decode(errors="replace"))
    if match is None:
        raise AuthenticationError("the MUNGE credential names no user")
    name = match.group("name")
    if name.isdigit() or name == "?":  # a uid the server's host does not know by name
        raise AuthenticationError(f"uid {match.group('uid')} has no login name on the server")
    return name


def _refusal(result: subprocess.CompletedProcess[bytes]) -> str:
    """Why unmunge refused: its error, or the status it decoded (an expired or replayed
    credential decodes, with a status that says so)."""
    error = result.stderr.decode(errors="replace").strip().removeprefix("unmunge: ")
    if error:
        return error.removeprefix("Error: ")
    status = _STATUS_LINE.search(result.stdout.decode(errors="replace"))
    return status.group("status") if status else f"unmunge exited with {result.returncode}"
