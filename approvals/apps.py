from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The engine (workflows) knows nothing of approvals; it asks a person
        # through the pause handler this app installs, and checks approved
        # digests through the lookup.
        from approvals import checks, live  # noqa: F401 - checks register themselves
        from approvals.services import approved_guard, request_open, requests_close
        from approvals.tasks import ensure_schedules
        from workflows import hooks

        hooks.set_pause_handler(request_open)
        hooks.set_close_handler(requests_close)
        hooks.set_guard_lookup(approved_guard)
        # With Redis every process publishes its own commits; without it the
        # web process relays them from the database (approvals.live).
        if live.uses_relay():
            hooks.set_event_publisher(None)
        else:
            hooks.set_event_publisher(live.publish_committed, live.flush_published)

        # A user's open sockets re-check their permissions when the user is
        # saved (deactivated), deleted or changes groups.
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        post_save.connect(
            live.on_user_saved, sender=user_model, dispatch_uid="agentos-ws-user-saved"
        )
        post_delete.connect(
            live.on_user_deleted, sender=user_model, dispatch_uid="agentos-ws-user-deleted"
        )
        m2m_changed.connect(
            live.on_groups_changed,
            sender=user_model.groups.through,
            dispatch_uid="agentos-ws-user-groups",
        )

        # Roles exist from the first migrate on; permissions exist only after
        # every app has migrated, so connect to the last app's signal.
        from agentos_site.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
        post_migrate.connect(ensure_schedules, sender=self)
