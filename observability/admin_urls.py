"""Admin pages of the operations figures: /admin/operations/..."""

from django.urls import path

from observability import views

urlpatterns = [
    path("", views.dashboard, name="operations_dashboard"),
    path("data.json", views.dashboard_data, name="operations_data"),
    path("sla/", views.sla, name="operations_sla"),
]
