"""The reviewer's inbox: the list, a request's page, deciding, delegating, bulk.

Every decision goes through `approvals.services`; GET never decides.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from approvals.forms import DecisionForm, DelegateForm
from approvals.models import ApprovalRequest, RequestKind
from approvals.permissions import (
    decide_refusal,
    may_decide_at_all,
    may_view_requests,
    visible_requests,
)
from approvals.selectors import (
    FILTERS,
    inbox_counts,
    inbox_requests,
    next_request,
    queue_neighbours,
    redact,
)
from approvals.services import (
    AlreadyDecided,
    DecisionInvalid,
    DecisionRefused,
    approval_decide,
    approval_delegate,
)
from workflows.forms import cleaned_values, schema_form_class
from workflows.models import Step, Workflow
from workflows.picture import request_picture as draw_request
from workflows.plans import PlanInvalid
from workflows.readable import readable, readable_with_raw
from workflows.states import TransitionNotAllowed

VALUES_PREFIX = "values"
PER_PAGE = 50
MAX_PAGE = 10_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def _page_number(request: HttpRequest) -> int:
    """Return the inbox page asked for (1 when absent or not a number)."""
    raw = request.GET.get("page", "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() else 1


def _reader(request: HttpRequest) -> None:
    if not may_view_requests(request.user):
        raise PermissionDenied


def _base(request: HttpRequest) -> dict[str, Any]:
    return {"counts": inbox_counts(request.user), "can_decide": may_decide_at_all(request.user)}


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """List the pending (or decided) requests the user may see, newest first."""
    _reader(request)
    params = {k: request.GET.get(k, "") for k in FILTERS}
    page = _page_number(request)
    start = (page - 1) * PER_PAGE
    # One row more than shown says whether a next page exists, without a count.
    rows = list(inbox_requests(request.user, params)[start : start + PER_PAGE + 1])
    has_next = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    for row in rows:
        row.bulk_ok = _bulk_refusal(row) == ""
        row.risk = _risk(row)
    query = request.GET.copy()
    query.pop("fragment", None)
    query.pop("page", None)
    filtered = any(params.get(k) for k in ("scope", "workflow", "kind", "overdue"))
    context = {
        **_base(request),
        "rows": rows,
        "any_bulk": any(row.bulk_ok and row.is_pending for row in rows),
        "filtered": filtered,
        "params": params,
        "page": page,
        "next_page": page + 1 if has_next else None,
        "previous_page": page - 1 if page > 1 else None,
        "query": query.urlencode(),
        "workflows": Workflow.objects.order_by("slug").values_list("slug", flat=True),
        "kinds": RequestKind.choices,
    }
    template = "inbox/_list.html" if request.GET.get("fragment") else "inbox/list.html"
    return render(request, template, context)


# What deciding reads of the request before the service re-reads it under
# the run's lock: the values form, the message. A page shown after a refused
# decision loads the rest as it needs it.
DECIDE_FIELDS = ("id", "run_id", "kind", "title", "fields")


def _visible(
    request: HttpRequest, request_id: int, *, only: tuple[str, ...] = ()
) -> ApprovalRequest:
    queryset = visible_requests(request.user)
    if only:
        queryset = queryset.only(*only)
    else:
        queryset = queryset.select_related(
            "run__workflow",
            "run__requester",
            "run__parent__workflow",
            "assigned_group",
            "assigned_user",
            "decided_by",
        )
    found = queryset.filter(pk=request_id).first()
    if found is None:
        raise Http404("No such request, or it is not yours to see.")
    return found


@login_required
@require_http_methods(["GET"])
def request_picture(request: HttpRequest, request_id: int) -> HttpResponse:
    """The request page's picture alone: the page swaps it in as the run moves."""
    _reader(request)
    obj = _visible(request, request_id)
    response = HttpResponse(draw_request(obj, redact(obj.run.context)))
    response["Cache-Control"] = "no-store"
    return response


def _values_form_class(obj: ApprovalRequest) -> type:
    return schema_form_class(obj.fields, prefix_errors="values.", name="RequestValuesForm")


@login_required
@require_http_methods(["GET", "POST"])
def request_page(request: HttpRequest, request_id: int) -> HttpResponse:
    """Show a request with its run, plan, context and evidence; decide it on POST."""
    _reader(request)
    posted = request.method == "POST"
    obj = _visible(request, request_id, only=DECIDE_FIELDS if posted else ())
    values_class = _values_form_class(obj)
    if posted:
        if not may_decide_at_all(request.user):
            raise PermissionDenied("You may read requests but not decide them.")
        return _decide(request, obj, values_class)
    return _render_request(
        request,
        obj,
        DecisionForm(initial={"digest": obj.digest}),
        values_class(prefix=VALUES_PREFIX, initial=_initial(obj)),
    )


def _initial(obj: ApprovalRequest) -> dict:
    defaults = {
        name: prop.get("default")
        for name, prop in (obj.fields.get("properties") or {}).items()
        if isinstance(prop, dict) and "default" in prop
    }
    return {**defaults, **(obj.values or {})}


def _decide(request: HttpRequest, obj: ApprovalRequest, values_class: type) -> HttpResponse:
    form = DecisionForm(request.POST)
    values_form = values_class(request.POST, prefix=VALUES_PREFIX)
    if not form.is_valid():
        values_form.is_valid()
        return _render_request(request, _visible(request, obj.pk), form, values_form, status=400)
    decision = form.cleaned_data["decision"]
    resolution = form.cleaned_data.get("resolution") or ""
    values: dict[str, Any] = {}
    asked = decision == "approve" and (
        obj.kind != RequestKind.UNKNOWN_OUTCOME or resolution == "mark_done"
    )
    if asked:
        if not values_form.is_valid():
            return _render_request(
                request, _visible(request, obj.pk), form, values_form, status=400
            )
        values = cleaned_values(values_form)
    try:
        approval_decide(
            request_id=obj.pk,
            actor=request.user,
            decision=decision,
            values=values,
            comment=form.cleaned_data["comment"],
            resolution=resolution if decision == "approve" else "",
            digest=form.cleaned_data.get("digest") or None,
        )
    except DecisionRefused as exc:
        raise PermissionDenied(str(exc)) from None
    except AlreadyDecided as exc:
        messages.error(request, f"Not decided: {exc}.")
        return _render_request(
            request,
            _visible(request, obj.pk),
            DecisionForm(),
            values_class(prefix=VALUES_PREFIX),
            status=409,
        )
    except (DecisionInvalid, PlanInvalid) as exc:
        pairs = (
            list(exc.errors.items())
            if isinstance(exc, DecisionInvalid)
            else [(e.field, e.message) for e in exc.errors]
        )
        general = []
        for field, message in pairs:
            if field in form.fields and field != "digest":
                form.add_error(field, message)
            else:
                general.append((field, message))
        unmatched = (
            values_form.add_service_errors(general) if asked else [f"{f}: {m}" for f, m in general]
        )
        return _render_request(
            request, _visible(request, obj.pk), form, values_form, errors=unmatched, status=400
        )
    except TransitionNotAllowed as exc:
        messages.error(request, f"Not decided: {exc}.")
        return HttpResponseRedirect(request.path)
    verb = "Approved" if decision == "approve" else "Rejected"
    messages.success(request, f"{verb}: {obj.title}.")
    return HttpResponseRedirect(reverse("inbox:request", args=[obj.pk]))


def _render_request(
    request: HttpRequest,
    obj: ApprovalRequest,
    form: DecisionForm,
    values_form: Any,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    run = obj.run
    refusal = decide_refusal(request.user, obj, run) if obj.is_pending else "decided"
    steps = list(Step.objects.filter(run=run).order_by("id"))
    for step in steps:
        step.error = redact(step.error)  # shown, never saved
    evidence = []
    for step in steps:
        for index, entry in enumerate((step.evidence or {}).get("files") or []):
            if isinstance(entry, dict) and entry.get("path"):
                evidence.append(
                    {
                        "step": step,
                        "name": entry.get("name"),
                        "sha256": entry.get("sha256", ""),
                        "bytes": entry.get("bytes"),
                        "image": str(entry.get("name", "")).lower().endswith(IMAGE_SUFFIXES),
                        "url": reverse(
                            "admin:workflows_run_evidence", args=[run.pk, step.pk, index]
                        ),
                    }
                )
    guards = redact(obj.guards or [])
    for guard in guards:
        guard["readable"] = readable(guard.get("params") or {})
    newer, older = queue_neighbours(request.user, obj)
    context_values = redact(run.context)
    context = {
        **_base(request),
        "req": obj,
        "newer": newer,
        "older": older,
        "next": None if obj.is_pending else next_request(request.user, obj),
        "risk": _risk(obj),
        "context_html": readable_with_raw(context_values),
        "run": run,
        "form": form,
        "values_form": values_form,
        "may_decide": refusal == "",
        "refusal": refusal if refusal != "decided" else "",
        "errors": errors or [],
        # Only what the page already shows: the run's plan, steps and redacted context.
        "picture": draw_request(obj, context_values, steps=steps),
        "steps": steps,
        "evidence": evidence,
        "guards": guards,
        "description": redact(obj.description),
        "run_error": redact(run.error),
        "decisions": list(obj.decisions.all()),
        "approvals": obj.decisions.filter(decision="approve").count(),
        "delegate_form": DelegateForm(),
        "last_seq": run.last_seq,
        "total": len(run.nodes),
        "shown_position": min(run.position, len(run.nodes)),
    }
    return render(request, "inbox/request.html", context, status=status)


@login_required
@require_POST
def delegate(request: HttpRequest, request_id: int) -> HttpResponse:
    """Hand a request to another person or group."""
    _reader(request)
    if not may_decide_at_all(request.user):
        raise PermissionDenied
    obj = _visible(request, request_id)
    form = DelegateForm(request.POST)
    if form.is_valid():
        try:
            approval_delegate(
                request_id=obj.pk,
                actor=request.user,
                to_user=form.cleaned_data["to_user"],
                to_group=form.cleaned_data["to_group"],
                comment=form.cleaned_data["comment"],
            )
        except DecisionRefused as exc:
            raise PermissionDenied(str(exc)) from None
        except (DecisionInvalid, AlreadyDecided) as exc:
            messages.error(request, f"Not delegated: {exc}.")
            return HttpResponseRedirect(reverse("inbox:request", args=[obj.pk]))
        messages.success(request, "Delegated.")
        return HttpResponseRedirect(reverse("inbox:list"))
    messages.error(
        request,
        "Not delegated: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
    )
    return HttpResponseRedirect(reverse("inbox:request", args=[obj.pk]))


def _risk(obj: ApprovalRequest) -> str:
    """Return "high" or "medium" when the request guards such an action, else "".

    The actions are in its guards, its state (a mode gate) or, for a plan
    review, the plan's rows.
    """
    rows = obj.state.get("rows") if isinstance(obj.state.get("rows"), list) else []
    entries = [*obj.guards, *rows]
    risks = {e.get("risk") for e in entries if isinstance(e, dict)} | {obj.state.get("risk")}
    return next((level for level in ("high", "medium") if level in risks), "")


def _bulk_refusal(obj: ApprovalRequest) -> str:
    """Return why a request cannot be bulk-approved ("" when it can)."""
    if obj.kind != RequestKind.APPROVAL or (obj.fields.get("properties") or {}):
        return "only plain gates can be approved in bulk"
    risks = {g.get("risk") for g in obj.guards} | {obj.state.get("risk")} - {None}
    if risks - {"low"}:
        return "it guards an action that is not low-risk; open it and decide it alone"
    return ""


@login_required
@require_POST
def bulk_approve(request: HttpRequest) -> HttpResponse:
    """Approve several plain, low-risk gates, each recorded with its own digest."""
    _reader(request)
    if not may_decide_at_all(request.user):
        raise PermissionDenied
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    if not ids:
        messages.error(request, "ids: choose at least one request.")
        return HttpResponseRedirect(reverse("inbox:list"), status=303)
    done, refused = [], []
    for obj in visible_requests(request.user).filter(pk__in=ids).order_by("pk"):
        reason = _bulk_refusal(obj)
        if not reason:
            try:
                approval_decide(
                    request_id=obj.pk,
                    actor=request.user,
                    decision="approve",
                    digest=obj.digest,
                    comment="approved in bulk",
                )
                done.append(obj.pk)
                continue
            except (
                AlreadyDecided,
                DecisionRefused,
                DecisionInvalid,
                PlanInvalid,
                TransitionNotAllowed,
            ) as exc:
                reason = str(exc)
        refused.append(f"#{obj.pk}: {reason}")
    if done:
        messages.success(request, f"Approved {len(done)} request(s).")
    if refused:
        messages.error(request, "Not approved: " + "; ".join(refused))
    return HttpResponseRedirect(reverse("inbox:list"), status=303)
