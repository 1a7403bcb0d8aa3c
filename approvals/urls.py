"""The inbox at /inbox/."""

from django.urls import path

from approvals import views

app_name = "inbox"
urlpatterns = [
    path("", views.inbox, name="list"),
    path("bulk/", views.bulk_approve, name="bulk"),
    path("requests/<int:request_id>/", views.request_page, name="request"),
    path("requests/<int:request_id>/delegate/", views.delegate, name="delegate"),
    path("requests/<int:request_id>/picture/", views.request_picture, name="picture"),
]
