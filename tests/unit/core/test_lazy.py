"""Package names imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import herdsman
from herdsman.core.lazy import lazy_attributes


def test_importing_herdsman_leaves_the_authoring_api_unimported() -> None:
    # A fresh interpreter: this test process has imported the client long ago.
    code = "import sys, herdsman; print('herdsman.client.tool' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_a_lazy_name_is_imported_on_first_use_and_kept() -> None:
    from herdsman.client.tool import Tool

    assert herdsman.Tool is Tool
    assert vars(herdsman)["Tool"] is Tool


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_attributes("herdsman", {})
    with pytest.raises(AttributeError, match="module 'herdsman' has no attribute 'Tol'"):
        getattr_("Tol")
