"""Workflows: store a spec as a new workflow or as a new version of one."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workflows import executor_config
from workflows.events import system_event_append
from workflows.models import Workflow, WorkflowVersion
from workflows.plans import PlanError, PlanInvalid, validate_spec


def _check_self_approval(actor: Any, before: bool, after: bool) -> None:
    """Refuse a change of `allow_self_approval` by someone without its permission."""
    from agentos_site import policy

    if before != after and not policy.allows(actor, policy.WORKFLOWS_SELF_APPROVAL):
        raise PlanInvalid(
            [
                PlanError(
                    "",
                    "allow_self_approval",
                    f"changing allow_self_approval needs the permission "
                    f"{policy.WORKFLOWS_SELF_APPROVAL}; leave it {str(before).lower()}",
                )
            ]
        )


def _self_approval_event(*, workflow: Workflow, actor: Any, before: bool, after: bool) -> None:
    if before != after:
        system_event_append(
            type="workflow.self_approval_changed",
            actor=actor,
            data={
                "workflow": workflow.slug,
                "version": workflow.version,
                "before": before,
                "after": after,
            },
        )


def workflow_create(*, raw_spec: Any, source: str = "", actor: Any = None) -> Workflow:
    """Validate a spec and store it as version 1 of a new workflow."""
    spec = validate_spec(
        raw_spec, registry=executor_config.registry(), policy=executor_config.policy()
    )
    if Workflow.objects.filter(slug=spec.slug).exists():
        raise PlanInvalid([PlanError("", "slug", f"a workflow {spec.slug!r} already exists")])
    _check_self_approval(actor, False, spec.allow_self_approval)
    data = spec.model_dump(mode="json")
    with transaction.atomic():
        workflow = Workflow.objects.create(
            slug=spec.slug,
            title=spec.title,
            description=spec.description,
            spec=data,
            source=source,
            version=1,
            created_by=actor,
        )
        WorkflowVersion.objects.create(
            workflow=workflow, version=1, spec=data, source=source, created_by=actor
        )
        system_event_append(
            type="workflow.created",
            actor=actor,
            data={"workflow": workflow.slug, "version": 1, "spec": data},
        )
        _self_approval_event(
            workflow=workflow, actor=actor, before=False, after=spec.allow_self_approval
        )
    return workflow


def workflow_update(
    *, workflow: Workflow, raw_spec: Any, source: str = "", actor: Any = None
) -> Workflow:
    """Store a changed spec as a new version; running runs keep theirs."""
    spec = validate_spec(
        raw_spec, registry=executor_config.registry(), policy=executor_config.policy()
    )
    if spec.slug != workflow.slug:
        raise PlanInvalid([PlanError("", "slug", "the slug of a workflow cannot change")])
    data = spec.model_dump(mode="json")
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if data == locked.spec:
            if source and source != locked.source:
                Workflow.objects.filter(pk=locked.pk).update(source=source)
            return locked
        allowed_before = bool(locked.spec.get("allow_self_approval"))
        _check_self_approval(actor, allowed_before, spec.allow_self_approval)
        before = locked.version
        locked.version = before + 1
        locked.title, locked.description = spec.title, spec.description
        locked.spec, locked.source = data, source
        locked.save()
        WorkflowVersion.objects.create(
            workflow=locked, version=locked.version, spec=data, source=source, created_by=actor
        )
        system_event_append(
            type="workflow.updated",
            actor=actor,
            data={
                "workflow": locked.slug,
                "before": {"version": before},
                "after": {"version": locked.version, "spec": data},
            },
        )
        _self_approval_event(
            workflow=locked, actor=actor, before=allowed_before, after=spec.allow_self_approval
        )
    return locked
