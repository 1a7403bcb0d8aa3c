"""The test settings plus the app that records django-q2's signals."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.q2_signals.apps.Q2SignalsConfig"]
