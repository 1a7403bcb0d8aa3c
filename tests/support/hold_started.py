"""Test-only: loaded into a zygote, it never tells the runner "started".

That holds the zygote in the window between starting an action child and
reporting the child's pid, so a test can kill the zygote exactly there
instead of hoping a race lands in it.
"""

from __future__ import annotations

import sys
from typing import Any

# The zygote runs as ``python -m executors.zygote``: its classes live in
# __main__, not in a module of that name.
_zygote_cls = sys.modules["__main__"]._Zygote
_send = _zygote_cls._send


def _send_all_but_started(self: Any, message: dict[str, Any]) -> bool:
    if message.get("op") == "started":
        return True
    return _send(self, message)


_zygote_cls._send = _send_all_but_started

ACTIONS: list[Any] = []
