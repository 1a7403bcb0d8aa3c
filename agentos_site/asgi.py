"""ASGI entry point for daphne: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentos_site.settings")
# Set Django up before importing anything that touches models (the consumers).
django_asgi_app = get_asgi_application()

from agentos_site.dbpool import pool_web_connections  # noqa: E402

# PostgreSQL: requests take their connection from a pool (agentos_site.dbpool).
pool_web_connections()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from approvals.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# This daphne's heartbeat (observability.heartbeats): the admin's Workers
# list shows web processes too. AGENTOS_WEB_HEARTBEAT=0 turns it off.
from django.conf import settings  # noqa: E402

if settings.AGENTOS_WEB_HEARTBEAT:
    from observability.heartbeats import start_heartbeat
    from observability.models import ProcessKind

    start_heartbeat(kind=ProcessKind.WEB)
