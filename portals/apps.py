from django.apps import AppConfig


class PortalsConfig(AppConfig):
    name = "portals"
    verbose_name = "Mock enterprise portals (HR, IT, procurement)"
    default_auto_field = "django.db.models.BigAutoField"
