"""The product's URLs plus the test-only portal pages (tests/support/portal_views.py)."""

from __future__ import annotations

from django.urls import path

from agentos_site.urls import urlpatterns as product_urlpatterns
from tests.support import portal_views

urlpatterns = [
    path("portals/test/hang/", portal_views.hang, name="test-hang"),
    path("portals/test/go/", portal_views.go, name="test-go"),
    *product_urlpatterns,
]
