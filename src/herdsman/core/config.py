"""herdsman's settings: one value object, validated when it loads.

Precedence, highest first: explicit arguments to :class:`Settings`, environment variables
``HERDSMAN_<KEY>`` (nested keys joined by ``__``, e.g. ``HERDSMAN_HTTP__TIMEOUT=30``), the config
file (YAML; ``HERDSMAN_CONFIG_FILE`` or ``<user config dir>/herdsman/config.yaml``), defaults.

Keys (also shown by ``herdsman config show``):

==========================  ==================================================================
``server_url``              URL of a herdsman server; unset means the embedded local server
``database_url``            SQLAlchemy URL the *server* uses; default SQLite in ``data_dir``
``data_dir``                where the embedded server keeps its database, logs and pid file
``server.host``             address ``herdsman server start`` binds (default 127.0.0.1)
``server.port``             its port (default 0: a free port, for the embedded server)
``server.workers``          server processes ``herdsman server start`` runs (default 1)
``server.feed_recheck_seconds``  long-poll re-read interval without LISTEN/NOTIFY (0.25)
``server.pool_size``        database connections kept per server process (default 10)
``server.pool_overflow``    extra connections per process under load (default 20)
``server.max_active_runs_per_user``    live runs one user may have (default 0: no limit)
``server.requests_per_second_per_user`` people's requests per second per process (0: none)
``server.request_burst``    requests above that rate allowed in a burst (default 100)
``server.timing_dir``       benchmarks: where each server process writes its request timings
``http.timeout``            seconds one HTTP request may take (default 120)
``http.retries``            attempts for a request that failed in transport (default 5)
``http.ca_bundle``          CA certificates to trust for an ``https://`` server (PEM file)
``token``                   bearer token for ``server_url`` (else read from ``token_file``)
``token_file``              where ``herdsman login`` keeps the token (0600, user config dir)
``auth.key_file``           the server's signing key (0600; default ``data_dir/server.key``)
``auth.readers``            who may read a workflow: ``signed_in`` (default) or ``owners``
``auth.run_token_days``     how long a run's token is valid (default 30)
``auth.munge``              whether ``herdsman login`` may sign in with MUNGE (default false)
``auth.login_token_days``   how long a token from ``herdsman login`` is valid (default 30)
``auth.oidc_issuer``        an OpenID Connect issuer whose tokens the server accepts
``auth.oidc_audience``      the audience those tokens must name
``auth.oidc_user_claim``    the claim naming the user (default ``preferred_username``)
``bind.chunk_size``         tasks per bind request (default 10000)
``reaper.enabled``          whether each server runs the reaper (default true)
``reaper.interval``         seconds between the reaper's passes (default 30)
``reaper.unattended_after`` seconds without a distributor before an ended run's live attempts
                            are closed (default 600)
``retention.enabled``       whether the server archives and removes finished workflows by itself
                            (default false; ``herdsman server prune`` does it by hand)
``retention.older_than_days`` days since a workflow ended before it is removed (default 90)
``retention.interval``      seconds between the server's retention passes (default 3600)
``retention.archive``       whether each workflow is archived before removal (default true)
``retention.archive_dir``   where archives go (default ``data_dir/archive``)
``retention.chunk_size``    rows removed per transaction (default 5000)
``retention.feed_days``     days after which the change feed of an ended workflow is removed,
                            the workflow kept (default unset: kept with the workflow)
``limits.*``                sizes a server accepts: ``max_request_bytes`` (64 MiB),
                            ``max_command_bytes`` (100000), ``max_arg_value_bytes`` (10000),
                            ``max_attribute_value_bytes`` (10000); see :mod:`herdsman.core.limits`
``log_level``               debug, info, warning or error (default warning)
==========================  ==================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from herdsman.core.errors import ConfigurationError
from herdsman.core.limits import InputLimits

__all__ = [
    "AuthSettings",
    "BindSettings",
    "HttpSettings",
    "ReaperSettings",
    "RetentionSettings",
    "ServerSettings",
    "Settings",
    "config_file_path",
    "default_data_dir",
    "describe_validation_error",
    "load_settings",
    "normalize_database_url",
]

APP_NAME = "herdsman"


def default_data_dir() -> Path:
    """The user's data directory for herdsman (XDG on Linux: ``~/.local/share/herdsman``)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def config_file_path() -> Path:
    """The config file in force: ``HERDSMAN_CONFIG_FILE`` or the user's config directory."""
    explicit = os.environ.get("HERDSMAN_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


def default_token_file() -> Path:
    """Where ``herdsman login`` keeps the user's token: ``~/.config/herdsman/token`` on Linux."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "token"


def normalize_database_url(url: str) -> str:
    """Pick the driver herdsman supports for each engine, so users may write plain URLs.

    ``postgresql://`` becomes ``postgresql+psycopg://`` (psycopg 3) and ``mysql://`` or
    ``mariadb://`` becomes ``mysql+pymysql://``; SQLite URLs are kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"database_url {url!r} is not a URL; use e.g. 'sqlite:////path/herdsman.sqlite', "
            "'postgresql://user@host/db' or 'mysql://user@host/db'"
        )
    engine = scheme.split("+", 1)[0]
    if engine in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if engine in ("mysql", "mariadb"):
        return f"mysql+pymysql://{rest}"
    if engine == "sqlite":
        return url
    raise ValueError(
        f"database_url {url!r} names an unsupported engine {engine!r}; "
        "use sqlite, postgresql or mysql/mariadb"
    )


class ServerSettings(BaseModel):
    """Where ``herdsman server start`` listens, how many processes serve, and what one user
    may ask of a shared server (see docs/configuration.md and docs/deployment.md).

    ``feed_recheck_seconds``: how often a waiting long-poll re-reads the change feed for
    commits made by another server process, on engines without cross-process notifications
    (SQLite, MariaDB; PostgreSQL wakes waiters by LISTEN/NOTIFY and re-reads only while its
    listening connection is down). ``pool_size`` and ``pool_overflow`` are per process.
    ``max_active_runs_per_user`` and ``requests_per_second_per_user`` (with ``request_burst``)
    are 0 for no limit; the rate is per server process and counts what people send (binding,
    reads, steering), never the reports of swarms, distributors and workers.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    feed_recheck_seconds: float = Field(default=0.25, gt=0, le=60)
    pool_size: int = Field(default=10, ge=1, le=1000)
    pool_overflow: int = Field(default=20, ge=0, le=1000)
    max_active_runs_per_user: int = Field(default=0, ge=0)
    requests_per_second_per_user: float = Field(default=0.0, ge=0)
    request_burst: int = Field(default=100, ge=1)
    # Benchmarks: each process writes its request timings here at shutdown (api/timing.py).
    timing_dir: Path | None = None


class HttpSettings(BaseModel):
    """How clients talk to the server."""

    timeout: float = Field(default=120.0, gt=0)
    retries: int = Field(default=5, ge=1)
    ca_bundle: Path | None = None


class AuthSettings(BaseModel):
    """How the server knows its callers (see docs/security.md)."""

    key_file: Path | None = None
    readers: Literal["signed_in", "owners"] = "signed_in"
    run_token_days: float = Field(default=30.0, gt=0)
    munge: bool = False
    login_token_days: float = Field(default=30.0, gt=0)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_user_claim: str = "preferred_username"


class BindSettings(BaseModel):
    """How a workflow is written to the server."""

    chunk_size: int = Field(default=10_000, ge=1, le=100_000)


class ReaperSettings(BaseModel):
    """How servers end what nobody heartbeats any more (see :mod:`herdsman.server.domain.reaper`).

    A run is reaped once its swarm missed its own report-by time; ``interval`` only bounds how
    late that is noticed. The live attempts of an ended run are closed once no distributor has
    triaged the run for ``unattended_after`` seconds (distributors triage every 30 s).
    Deployments with many server processes may disable it in every server and run one
    ``herdsman server reaper`` instead.
    """

    enabled: bool = True
    interval: float = Field(default=30.0, gt=0)
    unattended_after: float = Field(default=600.0, gt=0)


class GuiSettings(BaseModel):
    """What the web GUI may show beyond the database (see docs/configuration.md).

    ``log_roots``: directories whose files the log viewer may read when an attempt recorded
    its stdout or stderr file there. Empty (the default): it shows only the output tails the
    attempts reported. A file is read only when its real path (symlinks resolved) lies under
    one of these, so a path recorded by a job cannot reach any other file the server can read.
    """

    log_roots: list[Path] = Field(default_factory=list)

    @field_validator("log_roots")
    @classmethod
    def _absolute(cls, roots: list[Path]) -> list[Path]:
        for root in roots:
            if not root.is_absolute():
                raise ValueError(f"gui.log_roots entry {str(root)!r} must be an absolute path")
        return roots


class RetentionSettings(BaseModel):
    """How a server archives and removes finished workflows by itself (see
    :mod:`herdsman.server.domain.retention`). Off by default: removing data is the operator's
    decision. Deployments with several servers on one database enable it in one of them (or
    run ``herdsman server prune`` from cron instead).
    """

    enabled: bool = False
    older_than_days: float = Field(default=90.0, gt=0)
    interval: float = Field(default=3600.0, gt=0)
    archive: bool = True
    archive_dir: Path | None = None
    chunk_size: int = Field(default=5_000, ge=1, le=100_000)
    # Days after which a kept workflow's change feed goes (None: kept as long as the workflow).
    feed_days: float | None = Field(default=None, ge=0)


class Settings(BaseSettings):
    """All of herdsman's settings. Build with keyword arguments to override everything else."""

    model_config = SettingsConfigDict(
        env_prefix="HERDSMAN_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    server_url: str | None = None
    database_url: str | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    server: ServerSettings = Field(default_factory=ServerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    bind: BindSettings = Field(default_factory=BindSettings)
    reaper: ReaperSettings = Field(default_factory=ReaperSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    gui: GuiSettings = Field(default_factory=GuiSettings)
    token: SecretStr | None = None
    token_file: Path = Field(default_factory=default_token_file)
    # A server's: what it accepts. Clients learn a server's limits from the server.
    limits: InputLimits = Field(default_factory=InputLimits)
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    @field_validator("server_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"server_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _normalize_database_url(cls, value: str | None) -> str | None:
        return None if not value else normalize_database_url(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def resolved_database_url(self) -> str:
        """The database URL in force; the embedded default is SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'herdsman.sqlite'}"

    def resolved_key_file(self) -> Path:
        """The server's signing key in force; the default lives beside its database."""
        return self.auth.key_file or self.data_dir / "server.key"

    def resolved_archive_dir(self) -> Path | None:
        """Where retention writes archives; None when ``retention.archive`` is off."""
        if not self.retention.archive:
            return None
        return self.retention.archive_dir or self.data_dir / "archive"

    def resolved_token(self) -> str | None:
        """The token to send to ``server_url``: the ``token`` setting, else the token file."""
        if self.token is not None and self.token.get_secret_value():
            return self.token.get_secret_value()
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """:class:`Settings` from the arguments, environment and config file, errors made readable.

    A malformed value raises :class:`ConfigurationError` naming where it came from -- the
    ``HERDSMAN_*`` variable when one is set, else the key of the config file -- instead of
    pydantic's multi-line ``ValidationError``.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(
            f"invalid settings: {describe_validation_error(error)}",
            details={"config_file": str(config_file_path())},
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"cannot read settings from {config_file_path()}: {error}"
        ) from None


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each offending setting, e.g. ``HERDSMAN_HTTP__TIMEOUT=-1: ...``."""
    problems = []
    for item in error.errors():
        parts = [str(part) for part in item["loc"]]
        key = ".".join(parts)
        variable = "HERDSMAN_" + "__".join(part.upper() for part in parts)
        if parts and variable in os.environ:
            where = f"{variable}={os.environ[variable]!r} ({key})"
        elif parts:
            where = f"{key} (in {config_file_path()} or the arguments)"
        else:
            where = "settings"
        message = str(item["msg"])
        message = message[0].lower() + message[1:] if message else message
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
