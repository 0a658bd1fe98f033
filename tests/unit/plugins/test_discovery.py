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
    ("name", "plugin_type"),
    [
        ("dummy", DummyPlugin),
        ("sequential", SequentialPlugin),
        ("multiprocess", MultiprocessPlugin),
    ],
)
def test_load_plugin_builds_the_registered_class(
    fake_server: FakeServer, name: str, plugin_type: type
) -> None:
    plugin = load_plugin(name, requester=fake_server, parameters={"workers": 1})

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
