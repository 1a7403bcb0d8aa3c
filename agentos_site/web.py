"""The web process: daphne, closing websockets with "service restart" on stop.

``python -m agentos_site.web [daphne options]`` runs daphne on the portal's
ASGI application (``-b 127.0.0.1 -p 8000`` unless told otherwise; the
application itself is always the portal's, so pass none). On
SIGTERM or SIGINT, before daphne cancels the application instances, every
open websocket gets a close frame with code 1012 (service restart): the
live pages (``approvals/static/approvals/live.js``) reconnect, to another
web process behind the proxy or to this one once restarted, and ask for the
events after the last seq they saw, so no update is lost. Without it the
sockets would just drop (1006), which the pages also survive, but a proxy
or another client can tell a restart from a crash only by the code.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import defer, reactor

logger = logging.getLogger("agentos_site.web")

APPLICATION = "agentos_site.asgi:application"
SERVICE_RESTART = 1012
# How long stopping waits for clients to answer the close frames.
CLOSE_WAIT_S = 2.0


class RestartingServer(Server):
    """daphne's server, closing websockets with 1012 before it shuts down."""

    def run(self) -> None:
        reactor.addSystemEventTrigger("before", "shutdown", self.close_websockets)
        super().run()

    def open_websockets(self) -> list:
        from daphne.ws_protocol import WebSocketProtocol

        return [
            protocol
            for protocol, details in list(getattr(self, "connections", {}).items())
            if isinstance(protocol, WebSocketProtocol)
            and "disconnected" not in details
            and protocol.state == WebSocketProtocol.STATE_OPEN
        ]

    def close_websockets(self) -> defer.Deferred:
        """Send 1012 to every open socket; fire once they closed or after a short wait."""
        sockets = self.open_websockets()
        for protocol in sockets:
            # autobahn's sendClose() allows only 1000 and 3000-4999; the
            # frame-level call (daphne's own route for 1011) takes any code.
            protocol.sendCloseFrame(code=SERVICE_RESTART, reasonUtf8=b"server restarting")
        logger.info("closing %d websocket(s) with code %d", len(sockets), SERVICE_RESTART)
        done: defer.Deferred = defer.Deferred()
        until = time.monotonic() + CLOSE_WAIT_S

        def check() -> None:
            if not self.open_websockets_or_closing(sockets) or time.monotonic() >= until:
                done.callback(None)
            else:
                reactor.callLater(0.05, check)

        check()
        return done

    def open_websockets_or_closing(self, sockets: list) -> list:
        return [p for p in sockets if "disconnected" not in self.connections.get(p, {})]


class WebCommandLine(CommandLineInterface):
    server_class = RestartingServer


def main(argv: list[str]) -> None:
    """Run daphne with the portal's application and our defaults."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
    args = list(argv)
    if "-b" not in args and "--bind" not in args and not _binds_elsewhere(args):
        args = ["-b", "127.0.0.1", *args]
    if "-p" not in args and "--port" not in args and not _binds_elsewhere(args):
        args = ["-p", "8000", *args]
    WebCommandLine().run([*args, APPLICATION])


def _binds_elsewhere(args: list[str]) -> bool:
    """Return True when daphne is told to listen on a socket or file descriptor."""
    return any(a in ("-u", "--unix-socket", "--fd", "-e", "--endpoint") for a in args)


if __name__ == "__main__":
    main(sys.argv[1:])
