"""Fixtures for the integrations: the example plugin, installed with pip."""

from __future__ import annotations

import pytest

from tests.support.plugins import install_example


@pytest.fixture(scope="session")
def example_plugin() -> str:
    """Install examples/agentos-example-actions into the venv; its version."""
    return install_example()
