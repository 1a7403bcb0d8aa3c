"""Audit logins, failed logins (in bursts) and group membership changes.

These record what Django's auth framework does; nothing of the app's own
flow is driven from here.
"""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts import login_audit
from workflows.events import system_event_append


def _client(request: Any) -> dict:
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "path": request.path[:200] if hasattr(request, "path") else "",
    }


@receiver(user_logged_in, dispatch_uid="agentos-audit-login")
def audit_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    client = _client(request)
    login_audit.logged_in(address=client.get("ip", ""))
    system_event_append(
        type="auth.login", actor=user, data={"user": user.get_username(), **client}
    )


@receiver(user_login_failed, dispatch_uid="agentos-audit-login-failed")
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **_: Any) -> None:
    # Only the username: the credentials dict also holds the password.
    username = str(credentials.get("username", ""))[:150]
    client = _client(request)
    login_audit.login_failed(
        address=client.get("ip", ""), user=username, path=client.get("path", "")
    )


@receiver(user_locked_out, dispatch_uid="agentos-audit-locked-out")
def audit_locked_out(
    sender: Any, request: Any = None, username: Any = None, ip_address: Any = None, **_: Any
) -> None:
    login_audit.locked_out(
        address=str(ip_address or _client(request).get("ip", "")),
        user=str(username or "")[:150],
        failures=getattr(request, "axes_failures_since_start", None),
    )


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="agentos-audit-groups")
def audit_group_membership(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set | None, **_: Any
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    User = get_user_model()
    if action == "pre_clear":
        # After the clear the members are gone; read them now.
        if reverse:
            users = list(instance.user_set.values_list("username", flat=True))
            groups = [instance.name]
        else:
            users = [instance.get_username()]
            groups = list(instance.groups.values_list("name", flat=True))
        if not users or not groups:
            return
        change = "removed"
    else:
        if not pk_set:
            return
        if reverse:
            users = list(User.objects.filter(pk__in=pk_set).values_list("username", flat=True))
            groups = [instance.name]
        else:
            users = [instance.get_username()]
            groups = list(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        change = "added" if action == "post_add" else "removed"
    system_event_append(
        type=f"group.member_{change}", data={"users": sorted(users), "groups": sorted(groups)}
    )
