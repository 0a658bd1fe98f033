"""``herdsman config ...``: show the effective settings and edit the YAML config file.

Edits are validated against :class:`~herdsman.core.config.Settings` *before* the file is
written, so ``config set`` can never leave behind a file that makes every later command fail.
Unknown keys are refused: the settings ignore extra keys on load, so a typo such as
``http.timout`` would otherwise be accepted and silently have no effect.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pydantic
import yaml
from pydantic import BaseModel

from herdsman.cli.common import console, describe_validation_error, load_settings
from herdsman.core.config import Settings, config_file_path
from herdsman.core.errors import ConfigurationError

__all__ = ["config", "known_keys", "set_config_value", "unset_config_value"]


@click.group()
def config() -> None:
    """Show and change settings."""


@config.command()
def show() -> None:
    """Print the effective settings (file, environment and defaults merged) as YAML."""
    path = config_file_path()
    settings = load_settings()
    where = "" if path.is_file() else " (not found; defaults and environment apply)"
    body = yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
    console.print(f"# config file: {path}{where}", markup=False, highlight=False)
    console.print(body.rstrip("\n"), markup=False, highlight=False)


@config.command("set")
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Write KEY (dotted for nested keys, e.g. http.timeout) with VALUE to the config file."""
    path = config_file_path()
    set_config_value(path, key, value)
    console.print(f"{key} set in {path}", markup=False, highlight=False)
    _warn_if_overridden(key)


@config.command()
@click.argument("key")
def unset(key: str) -> None:
    """Remove KEY from the config file, so its default (or environment) value applies."""
    path = config_file_path()
    if unset_config_value(path, key):
        console.print(f"{key} removed from {path}", markup=False, highlight=False)
    else:
        console.print(f"{key} is not set in {path}", markup=False, highlight=False)


def known_keys() -> list[str]:
    """Every settable key, nested ones dotted (``http.timeout``)."""
    return list(_walk_keys(Settings, ""))


def set_config_value(path: Path, key: str, value: str) -> None:
    """Set ``key`` to ``value`` in the YAML file at ``path``, creating the file if needed.

    ``value`` is read as YAML, so ``30`` is a number and ``true`` a boolean; if the setting
    does not accept that, the text itself is tried. Raises :class:`ConfigurationError` for an
    unknown key or a value the setting refuses; the file is then left unchanged.
    """
    parts = _key_parts(key)
    data = _read_file(path)
    problems: list[pydantic.ValidationError] = []
    for candidate in _candidates(value):
        updated = _with_value(data, parts, candidate)
        try:
            Settings.model_validate(updated)
        except pydantic.ValidationError as error:
            problems.append(error)
            continue
        _write_file(path, updated)
        return
    # Every candidate was refused; the first (the YAML reading) says best what was wrong.
    raise ConfigurationError(
        f"cannot set {key} to {value!r}: {describe_validation_error(problems[0])}",
        details={"key": key},
    )


def unset_config_value(path: Path, key: str) -> bool:
    """Remove ``key`` from the file; returns whether it was there."""
    parts = _key_parts(key)
    data = _read_file(path)
    parent: Any = data
    for part in parts[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or parts[-1] not in parent:
        return False
    del parent[parts[-1]]
    _write_file(path, data)
    return True


def _warn_if_overridden(key: str) -> None:
    """Tell the user when the environment hides the value just written."""
    variable = "HERDSMAN_" + key.replace(".", "__").upper()
    if variable in os.environ:
        console.print(
            f"note: the environment variable {variable} overrides this value",
            markup=False,
            highlight=False,
        )


def _walk_keys(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def _key_parts(key: str) -> list[str]:
    if key not in known_keys():
        raise ConfigurationError(
            f"unknown setting {key!r}; known settings: {', '.join(known_keys())}",
            details={"key": key},
        )
    return key.split(".")


def _candidates(value: str) -> Iterator[object]:
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    yield parsed
    if parsed != value:
        yield value


def _with_value(data: dict[str, Any], parts: list[str], value: object) -> dict[str, Any]:
    """A copy of ``data`` with the nested key ``parts`` set to ``value``."""
    head, *rest = parts
    updated = dict(data)
    if rest:
        child = updated.get(head)
        updated[head] = _with_value(child if isinstance(child, dict) else {}, rest, value)
    else:
        updated[head] = value
    return updated


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read the config file {path}: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"the config file {path} must hold a mapping of settings")
    return data


def _write_file(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically, so a crash never leaves half a config behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            yaml.safe_dump(data, stream, sort_keys=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
