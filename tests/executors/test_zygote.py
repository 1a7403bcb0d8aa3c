"""The zygote's own bookkeeping, without a runner."""

from __future__ import annotations

import socket

from executors.registry import build_registry
from executors.zygote import _Zygote

from .conftest import TEST_MODULES


def _nothing_sent(parent: socket.socket) -> bool:
    parent.setblocking(False)
    try:
        parent.recv(100)
    except BlockingIOError:
        return True
    return False


def test_the_rehearsal_after_a_fork_sends_nothing_and_takes_nothing() -> None:
    """After each fork the zygote goes through a request's and a reap's steps
    on made-up data (_rehearse): no message leaves, it knows of no more
    children or spares than before, and a request that was already waiting
    is still there to be read."""
    parent, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with parent, zygote_end:
        zygote = _Zygote(zygote_end, build_registry(TEST_MODULES), 0, publish=False)
        try:
            for waiting in (False, True):
                if waiting:
                    parent.send(b"a request")
                zygote._rehearse()
                assert zygote.children == {}
                assert zygote.pools.all() == []
                assert _nothing_sent(parent)
            assert [key.fileobj for key, _ in zygote.selector.select(0)] == [zygote_end]
            assert zygote_end.recv(100) == b"a request"
        finally:
            zygote.selector.close()
