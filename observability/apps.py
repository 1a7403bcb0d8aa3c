from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from observability import checks  # noqa: F401  (registers system checks)
        from observability.heartbeats import on_worker_spawned

        # Every django-q2 worker process sends post_spawn once it is ready,
        # whoever started its Cluster (`manage.py qcluster` or a command that
        # builds a Cluster itself): each one beats from then on.
        post_spawn.connect(on_worker_spawned, dispatch_uid="agentos-worker-heartbeat")

        # Log lines of a task advancing a run carry its id and correlation id.
        from django_q.signals import post_execute_in_worker, pre_execute

        from observability.signals import on_post_execute, on_pre_execute

        pre_execute.connect(on_pre_execute, dispatch_uid="agentos-log-context")
        post_execute_in_worker.connect(on_post_execute, dispatch_uid="agentos-log-context")

        # The roles grant this app's permissions, which exist only once it
        # has migrated (after approvals, which sets the roles up first).
        from django.db.models.signals import post_migrate

        from agentos_site.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
