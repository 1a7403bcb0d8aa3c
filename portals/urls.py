from django.urls import path

from portals import views

app_name = "portals"

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:portal>/login/", views.login, name="login"),
    path("<str:portal>/logout/", views.logout, name="logout"),
    path("hr/", views.employee_list, name="hr-list"),
    path("hr/employees/new/", views.employee_new, name="hr-new"),
    path("hr/employees/<str:employee_id>/", views.employee_detail, name="hr-detail"),
    path("it/", views.account_list, name="it-list"),
    path("it/accounts/new/", views.account_new, name="it-new"),
    path("it/accounts/<int:pk>/", views.account_detail, name="it-detail"),
    path("procurement/", views.order_list, name="procurement-list"),
    path("procurement/orders/new/", views.order_new, name="procurement-new"),
    path("procurement/orders/<str:order_id>/", views.order_detail, name="procurement-detail"),
    path("procurement/catalog/", views.catalog, name="procurement-catalog"),
]
