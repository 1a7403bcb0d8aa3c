"""The portals' pages: a login per portal, then list, create and detail pages.

A portal login is kept in the session under ``portal:<name>``; it is not an
AgentOS user. Every page but the login checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from portals import services
from portals.forms import EmployeeForm, ITAccountForm, LoginForm, OrderForm, available_models
from portals.models import Employee, HardwareOrder, ITAccount, LaptopModel, Portal

PAGE_SIZE = 50
TITLES = {Portal.HR: "HR", Portal.IT: "IT", Portal.PROCUREMENT: "Procurement"}

View = Callable[..., HttpResponse]


def session_key(portal: str) -> str:
    return f"portal:{portal}"


def portal_login_required(portal: str) -> Callable[[View], View]:
    """Send visitors without a login to this portal to its login page."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            username = request.session.get(session_key(portal))
            if not username:
                login = reverse("portals:login", args=[portal])
                return redirect(f"{login}?next={request.get_full_path()}")
            request.portal_user = username  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _page(request: HttpRequest, portal: str, template: str, **context: Any) -> HttpResponse:
    context.update(
        portal=portal,
        portal_title=TITLES[Portal(portal)],
        portal_user=getattr(request, "portal_user", ""),
    )
    return render(request, f"portals/{template}", context)


def index(request: HttpRequest) -> HttpResponse:
    """List the three portals."""
    return render(request, "portals/index.html", {"portals": list(Portal)})


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest, portal: str) -> HttpResponse:
    """Log in to one portal with a portal account."""
    if portal not in Portal.values:
        raise Http404("No such portal.")
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    form = LoginForm(request.POST or None, portal=portal)
    # Throttled like the admin's login (django-axes), per user name (kept
    # apart from AgentOS users') and per address. Failures are counted by
    # axes only; a lockout is one audit event (accounts.login_audit).
    credentials = {"username": f"portal:{portal}:{request.POST.get('username', '')[:150]}"}
    if request.method == "POST" and not AxesProxyHandler.is_allowed(request, credentials):
        return get_lockout_response(request, None, credentials)
    if request.method == "POST" and form.is_valid():
        assert form.account is not None
        request.session.cycle_key()
        request.session[session_key(portal)] = form.account.username
        return redirect(target or reverse(f"portals:{portal}-list"))
    if request.method == "POST" and form.has_error(NON_FIELD_ERRORS, "invalid_login"):
        AxesProxyHandler.user_login_failed(LoginForm, credentials, request)
        if request.axes_locked_out:
            return get_lockout_response(request, None, credentials)
    status = 400 if request.method == "POST" else 200
    response = _page(request, portal, "login.html", form=form, next=target)
    response.status_code = status
    return response


@require_POST
def logout(request: HttpRequest, portal: str) -> HttpResponse:
    """Forget this portal's login."""
    request.session.pop(session_key(portal), None)
    return redirect(reverse("portals:login", args=[portal]))


def _listing(
    request: HttpRequest,
    portal: str,
    queryset: Any,
    columns: list[tuple[str, str]],
    detail: Callable[[Any], str],
    new_url: str,
    noun: str,
) -> HttpResponse:
    ref = request.GET.get("ref", "").strip()
    if ref:
        queryset = queryset.filter(external_ref=ref)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"url": detail(obj), "cells": [(field, _value(obj, field)) for field, _ in columns]}
        for obj in page
    ]
    return _page(
        request,
        portal,
        "list.html",
        columns=columns,
        rows=rows,
        page=page,
        ref=ref,
        new_url=new_url,
        noun=noun,
    )


def _value(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _detail(
    request: HttpRequest, portal: str, obj: Any, fields: list[tuple[str, str]], noun: str
) -> HttpResponse:
    rows = [(field, label, _value(obj, field)) for field, label in fields]
    return _page(request, portal, "detail.html", rows=rows, noun=noun, obj=obj)


def _form_page(
    request: HttpRequest, portal: str, form: Any, noun: str, **extra: Any
) -> HttpResponse:
    response = _page(request, portal, "form.html", form=form, noun=noun, **extra)
    if request.method == "POST":
        response.status_code = 400  # only invalid forms are shown again
    return response


# --- HR ----------------------------------------------------------------------

EMPLOYEE_COLUMNS = [
    ("employee_id", "Employee id"),
    ("name", "Name"),
    ("department", "Department"),
    ("start_date", "Start date"),
    ("manager", "Manager"),
    ("external_ref", "External reference"),
]


@portal_login_required(Portal.HR)
def employee_list(request: HttpRequest) -> HttpResponse:
    return _listing(
        request,
        Portal.HR,
        Employee.objects.all(),
        EMPLOYEE_COLUMNS,
        lambda e: reverse("portals:hr-detail", args=[e.employee_id]),
        reverse("portals:hr-new"),
        "employee",
    )


@portal_login_required(Portal.HR)
@require_http_methods(["GET", "POST"])
def employee_new(request: HttpRequest) -> HttpResponse:
    form = EmployeeForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        employee = services.employee_create(**form.cleaned_data, created_by=request.portal_user)  # type: ignore[attr-defined]
        return redirect("portals:hr-detail", employee.employee_id)
    return _form_page(request, Portal.HR, form, "employee")


@portal_login_required(Portal.HR)
def employee_detail(request: HttpRequest, employee_id: str) -> HttpResponse:
    employee = get_object_or_404(Employee, employee_id=employee_id)
    return _detail(
        request, Portal.HR, employee, [*EMPLOYEE_COLUMNS, ("created_by", "Created by")], "employee"
    )


# --- IT ----------------------------------------------------------------------

ACCOUNT_COLUMNS = [
    ("email", "Email"),
    ("employee.employee_id", "Employee id"),
    ("employee.name", "Name"),
    ("external_ref", "External reference"),
]


@portal_login_required(Portal.IT)
def account_list(request: HttpRequest) -> HttpResponse:
    return _listing(
        request,
        Portal.IT,
        ITAccount.objects.select_related("employee"),
        ACCOUNT_COLUMNS,
        lambda a: reverse("portals:it-detail", args=[a.pk]),
        reverse("portals:it-new"),
        "account",
    )


@portal_login_required(Portal.IT)
@require_http_methods(["GET", "POST"])
def account_new(request: HttpRequest) -> HttpResponse:
    form = ITAccountForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        account = services.it_account_create(
            employee=form.cleaned_data["employee_id"],
            external_ref=form.cleaned_data["external_ref"],
            created_by=request.portal_user,
        )  # type: ignore[attr-defined]
        return redirect("portals:it-detail", account.pk)
    return _form_page(request, Portal.IT, form, "account")


@portal_login_required(Portal.IT)
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(ITAccount.objects.select_related("employee"), pk=pk)
    return _detail(
        request, Portal.IT, account, [*ACCOUNT_COLUMNS, ("created_by", "Created by")], "account"
    )


# --- procurement -------------------------------------------------------------

ORDER_COLUMNS = [
    ("order_id", "Order id"),
    ("email", "Email"),
    ("laptop.name", "Laptop model"),
    ("external_ref", "External reference"),
]


@portal_login_required(Portal.PROCUREMENT)
def order_list(request: HttpRequest) -> HttpResponse:
    return _listing(
        request,
        Portal.PROCUREMENT,
        HardwareOrder.objects.select_related("laptop"),
        ORDER_COLUMNS,
        lambda o: reverse("portals:procurement-detail", args=[o.order_id]),
        reverse("portals:procurement-new"),
        "order",
    )


@portal_login_required(Portal.PROCUREMENT)
@require_http_methods(["GET", "POST"])
def order_new(request: HttpRequest) -> HttpResponse:
    form = OrderForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        order = services.order_create(
            email=form.cleaned_data["email"],
            laptop=form.cleaned_data["laptop_model"],
            external_ref=form.cleaned_data["external_ref"],
            created_by=request.portal_user,
        )  # type: ignore[attr-defined]
        return redirect("portals:procurement-detail", order.order_id)
    return _form_page(request, Portal.PROCUREMENT, form, "order", catalog=available_models())


@portal_login_required(Portal.PROCUREMENT)
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    order = get_object_or_404(HardwareOrder.objects.select_related("laptop"), order_id=order_id)
    return _detail(
        request, Portal.PROCUREMENT, order, [*ORDER_COLUMNS, ("created_by", "Created by")], "order"
    )


@portal_login_required(Portal.PROCUREMENT)
def catalog(request: HttpRequest) -> HttpResponse:
    return _page(request, Portal.PROCUREMENT, "catalog.html", laptops=LaptopModel.objects.all())
