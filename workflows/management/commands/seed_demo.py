"""Create the roles, demo users, demo workflows and demo files (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from agentos_site.roles import AUDITORS, OPERATORS, REVIEWERS, ensure_roles
from portals.demo import ensure_demo_data
from workflows.models import Workflow
from workflows.plans import parse_spec_text
from workflows.services import workflow_create, workflow_update

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
# The demo specs name the default site; seeded, they name this one, which
# is the origin AGENTOS_API_ALLOWED_HOSTS allows by default.
DEMO_SITE = "http://127.0.0.1:8000"
USERS = [("operator", OPERATORS), ("reviewer", REVIEWERS), ("auditor", AUDITORS), ("admin", None)]


class Command(BaseCommand):
    help = "Create roles, demo users (operator, reviewer, auditor, admin) and demo workflows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", default="agentos", help="password for every demo user (default: agentos)"
        )

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        groups = ensure_roles()
        user_model = get_user_model()
        admin = None
        for username, group in USERS:
            user, _ = user_model.objects.get_or_create(username=username)
            user.is_staff = True
            user.is_superuser = group is None
            user.email = f"{username}@example.com"
            user.set_password(password)
            user.save()
            if group:
                user.groups.set([groups[group]])
            else:
                admin = user
        for path in sorted(DEMO_DIR.glob("*.yaml")):
            source = path.read_text().replace(
                DEMO_SITE, settings.AGENTOS_PORTAL_BASE_URL.rstrip("/")
            )
            raw = parse_spec_text(source)
            existing = Workflow.objects.filter(slug=raw["slug"]).first()
            if existing is None:
                workflow_create(raw_spec=raw, source=source, actor=admin)
            else:
                workflow_update(workflow=existing, raw_spec=raw, source=source, actor=admin)
        self._demo_files()
        portals = ensure_demo_data(settings.AGENTOS_SECRETS)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo ready: users operator, reviewer, auditor, admin; "
                f"workflows {', '.join(p.stem for p in sorted(DEMO_DIR.glob('*.yaml')))}; "
                f"portal accounts for {', '.join(portals) or 'no portal (set the secrets)'}."
            )
        )

    def _demo_files(self) -> None:
        root = Path(settings.AGENTOS_FILES_ROOTS[0]) / "demo"
        inbox = root / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        for number in (1, 2, 3):
            invoice = inbox / f"invoice-00{number}.pdf"
            if not invoice.exists():
                invoice.write_bytes(b"%PDF-1.4\n% demo invoice " + str(number).encode() + b"\n")
        (inbox / "notes.txt").write_text("Not an invoice; stays in the inbox.\n")
        purchases = root / "purchases"
        purchases.mkdir(parents=True, exist_ok=True)
        (purchases / "order-form.txt").write_text("Purchase order form (demo)\n")
        reports = root / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "weekly.txt").write_text("Weekly report\n\nEverything is on track.\n")
        downloads = root / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        for name in ("quote.pdf", "team.png", "budget.xlsx", "notes.txt", "draft.tmp"):
            if not (downloads / name).exists() and not any(downloads.rglob(name)):
                (downloads / name).write_text(f"demo file {name}\n")
        sales = root / "sales.xlsx"
        if not sales.exists():
            from openpyxl import Workbook

            book = Workbook()
            sheet = book.active
            sheet.title = "Sales"
            sheet.append(["region", "product", "amount"])
            for index, region in enumerate(["North", "South", "East", "West"] * 5):
                sheet.append([region, f"P{index % 3}", 100 + index * 7])
            sheet["E1"], sheet["E2"] = "total", "=SUM(C2:C21)"  # a formula the check reports
            book.save(sales)
