from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig


class Q2SignalsConfig(AppConfig):
    name = "tests.support.q2_signals"
    label = "q2_signals"

    def ready(self) -> None:
        from django_q.signals import post_execute, post_spawn, pre_execute

        def note(name: str):  # type: ignore[no-untyped-def]
            def receiver(sender: Any, **kwargs: Any) -> None:
                with open(os.environ["AGENTOS_TEST_SIGNAL_LOG"], "a", encoding="utf-8") as log:
                    log.write(f"{name} {os.getpid()}\n")

            return receiver

        self.receivers = [note(n) for n in ("post_spawn", "pre_execute", "post_execute")]
        post_spawn.connect(self.receivers[0], weak=False)
        pre_execute.connect(self.receivers[1], weak=False)
        post_execute.connect(self.receivers[2], weak=False)
