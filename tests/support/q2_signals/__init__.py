"""A test-only app that records django-q2's worker signals to a file.

Listed in INSTALLED_APPS by ``tests.support.q2_signals.settings`` only; the
file is named by AGENTOS_TEST_SIGNAL_LOG.
"""
