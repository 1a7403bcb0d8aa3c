from django.contrib import admin
from django.urls import include, path

from agentos_site.api import api

admin.site.site_header = "AgentOS"
admin.site.site_title = "AgentOS"
admin.site.index_title = "Approval portal"
admin.site.site_url = "/inbox/"  # "View site" leads reviewers to their inbox

urlpatterns = [
    # Before the admin's own URLs, which would answer 404 for these.
    path("admin/operations/", include("observability.admin_urls")),
    path("admin/", admin.site.urls),
    path("inbox/", include("approvals.urls")),
    path("api/v1/", api.urls),
    path("portals/", include("portals.urls")),
    path("integrations/slack/", include("approvals.slack.urls")),
    path("", include("observability.urls")),
]
