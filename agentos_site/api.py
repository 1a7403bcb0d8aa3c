"""The one REST API, mounted at /api/v1/: each app contributes a Router."""

from __future__ import annotations

from ninja import NinjaAPI

from agentos_site.api_auth import AUTH
from agentos_site.api_errors import install_handlers

api = NinjaAPI(
    title="AgentOS API",
    version="1",
    description="Start and follow runs, decide approvals, read the audit log. "
    "Authenticate with `Authorization: Bearer <token>` "
    "(`manage.py create_token USER`) or a browser session with CSRF.",
    auth=AUTH,
    urls_namespace="api",
    docs_url="/docs",
)
install_handlers(api)


def _mount() -> None:
    from approvals.api import router as approvals_router
    from workflows.api import router as workflows_router

    api.add_router("", workflows_router)
    api.add_router("/approvals", approvals_router)

    from observability.api import install as install_observability

    install_observability(api)


_mount()
