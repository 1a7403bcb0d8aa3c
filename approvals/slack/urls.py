"""Slack's request URL (set it in the Slack app's Interactivity settings)."""

from django.urls import path

from approvals.slack import views

app_name = "slack"
urlpatterns = [path("interactions", views.interactions, name="interactions")]
