"""System checks refuse observability settings that would mislead."""

from __future__ import annotations

from observability.checks import check_observability


def ids(settings) -> set[str]:  # type: ignore[no-untyped-def]
    return {problem.id for problem in check_observability()}


def test_the_defaults_pass(settings) -> None:
    settings.AGENTOS_METRICS_TOKEN = "a-long-enough-metrics-token"
    assert ids(settings) == set()


def test_bad_settings_are_named(settings) -> None:
    settings.AGENTOS_HEARTBEAT_S = 40
    settings.AGENTOS_HEARTBEAT_LIVE_S = 60
    settings.AGENTOS_LOG_FORMAT = "xml"
    settings.AGENTOS_METRICS_TOKEN = "short"
    assert ids(settings) == {"agentos.O001", "agentos.O002", "agentos.O003"}
