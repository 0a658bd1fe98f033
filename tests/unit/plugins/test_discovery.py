"""Finding plugins by name through the ``herdsman.plugins`` entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

import pytest

from herdsman.core.errors import ConfigurationError
from herdsman.distributor import plugin as plugin_module
from herdsman.distributor.plugin import ENTRY_POINT_GROUP, available_plugins, load_plugin
from herdsman.plugins.dummy import DummyPlugin
from herdsman.plugins.multiprocess import MultiprocessPlugin
from herdsman.plugins.sequential import SequentialPlugin

if TYPE_CHECKING:
    from .conftest import FakeServer


def test_the_local_plugins_are_registered() -> None:
    assert {"dummy", "multiprocess", "sequential"} <= set(available_plugins())


@pytest.mark.parametrize(
    ("name", "plugin_type", "parameters"),
    [
        ("dummy", DummyPlugin, {}),
        ("sequential", SequentialPlugin, {}),
        ("multiprocess", MultiprocessPlugin, {"workers": 1}),
    ],
)
def test_load_plugin_builds_the_registered_class(
    fake_server: FakeServer, name: str, plugin_type: type, parameters: dict[str, int]
) -> None:
    plugin = load_plugin(name, requester=fake_server, parameters=parameters)

    assert isinstance(plugin, plugin_type)


def test_an_unknown_name_lists_the_available_ones(fake_server: FakeServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_plugin("slurmish", requester=fake_server, parameters={})

    message = str(caught.value)
    assert "'slurmish'" in message
    assert "dummy, multiprocess, sequential" in message


def test_a_plugin_that_cannot_be_imported_is_a_configuration_error(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = EntryPoint(
        name="broken", value="herdsman.no_such_module:Plugin", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(plugin_module, "entry_points", lambda group: [broken])

    with pytest.raises(ConfigurationError, match="cannot be loaded"):
        load_plugin("broken", requester=fake_server, parameters={})


def test_bad_parameters_are_reported(fake_server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        load_plugin("sequential", requester=fake_server, parameters={"heartbeat_interval": "x"})
    with pytest.raises(ConfigurationError, match="workers"):
        load_plugin("multiprocess", requester=fake_server, parameters={"workers": 0})


@pytest.mark.parametrize(
    ("name", "own_keys"),
    [
        ("dummy", set()),
        ("sequential", {"kill_grace_seconds", "enforce_limits"}),
        ("multiprocess", {"kill_grace_seconds", "enforce_limits", "workers"}),
        ("slurm", {"bin_dir", "partition", "sbatch_args", "squeue_interval", "worker_command"}),
    ],
)
def test_a_misspelt_parameter_is_refused_with_the_keys_the_plugin_reads(
    fake_server: FakeServer, name: str, own_keys: set[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_plugin(name, requester=fake_server, parameters={"pol_interval": 5})

    assert caught.value.message.startswith(f"unknown cluster parameter 'pol_interval': the {name}")
    assert caught.value.message.endswith("(did you mean 'poll_interval'?)")
    known = set(caught.value.details["known"])
    assert own_keys | {"poll_interval", "triage_interval", "heartbeat_interval"} <= known


@pytest.mark.parametrize("name", ["dummy", "sequential", "multiprocess", "slurm"])
def test_every_plugin_takes_the_distributors_parameters(fake_server: FakeServer, name: str) -> None:
    distributor = {"poll_interval": 1, "triage_interval": 2, "heartbeat_interval": 3}

    plugin_module.check_parameters(name, distributor)
