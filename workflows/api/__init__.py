"""The workflows app's API: catalog (actions, plans, workflows), runs, audit."""

from ninja import Router

from workflows.api.audit import router as audit_router
from workflows.api.catalog import router as catalog_router
from workflows.api.runs import router as runs_router

router = Router()
router.add_router("", catalog_router)
router.add_router("/runs", runs_router)
router.add_router("/audit", audit_router)

__all__ = ["router"]
