from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows and runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workflows import checks  # noqa: F401  (registers system checks)
        from workflows.tasks import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)

        from django_q.signals import post_spawn

        from workflows.cluster import start_runner_soon

        # Each worker process starts its action runner (the zygote) as it
        # spawns, not on the path of its first step.
        post_spawn.connect(start_runner_soon, dispatch_uid="agentos-worker-runner")
