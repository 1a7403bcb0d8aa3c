"""Fixtures for the integrations: the example plugin installed with pip, Slack's stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.slack_flows import SECRET, TOKEN
from tests.support.plugins import install_example
from tests.support.slack import FakeSlack


@pytest.fixture(scope="session")
def example_plugin() -> str:
    """Install examples/agentos-example-actions into the venv; its version."""
    return install_example()


@pytest.fixture
def slack(settings) -> Iterator[FakeSlack]:  # type: ignore[no-untyped-def]
    """Slack's stand-in, with AgentOS configured to use it; no call it refused."""
    fake = FakeSlack(TOKEN).start()
    settings.AGENTOS_SLACK_BOT_TOKEN = TOKEN
    settings.AGENTOS_SLACK_SIGNING_SECRET = SECRET
    settings.AGENTOS_SLACK_API_URL = fake.url
    yield fake
    fake.stop()
    assert fake.problems == [], "calls Slack would refuse"


@pytest.fixture
def alice(roles):  # type: ignore[no-untyped-def]
    """A second reviewer, known to Slack as UALICE."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("alice", "Alice@Example.com", "pw")
    user.groups.add(roles["Reviewers"])
    return user
