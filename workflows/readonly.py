"""Admin pages that show records and never write them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes these rows in the admin.

    Runs, requests, events and batches change only through their services
    (each change is an event); their admin pages only show them. Put it
    before ``admin.ModelAdmin`` in the bases. Viewing stays a permission.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
