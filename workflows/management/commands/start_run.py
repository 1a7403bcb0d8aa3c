"""Start a run of a stored workflow or of a plan file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.management.cli import parse_sets, plan_errors, user_named
from workflows.models import Workflow
from workflows.plans import PlanInvalid, parse_spec_text
from workflows.services import run_create


class Command(BaseCommand):
    help = (
        "Start a run of a workflow (--workflow SLUG) or of a plan file (--plan-file, JSON or "
        "YAML); --set key=value fills the context. A plan file's run pauses for review "
        "first in the assisted and interactive modes (--no-review to skip), and always "
        "when it holds an action that is not low-risk."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--workflow", help="slug of a stored workflow")
        source.add_argument("--plan-file", help="a plan ({nodes: [...]}) as JSON or YAML")
        parser.add_argument(
            "--set",
            action="append",
            dest="sets",
            metavar="KEY=VALUE",
            help="a context value (JSON when it parses, else text); repeat",
        )
        parser.add_argument("--mode", choices=["autonomous", "assisted", "interactive"])
        parser.add_argument(
            "--as",
            dest="username",
            required=True,
            help="the user who starts the run (needs workflows.start_run)",
        )
        parser.add_argument(
            "--no-review",
            action="store_true",
            help="do not pause a low-risk plan file's run for plan review",
        )

    def handle(
        self,
        *args: Any,
        workflow: str | None,
        plan_file: str | None,
        sets: list[str] | None,
        mode: str | None,
        username: str,
        no_review: bool,
        **options: Any,
    ) -> None:
        user = user_named(username, perm="workflows.start_run")
        context = parse_sets(sets)
        try:
            if workflow:
                found = Workflow.objects.filter(slug=workflow).first()
                if found is None:
                    raise CommandError(f"--workflow: no workflow {workflow!r}")
                run = run_create(workflow=found, context=context, mode=mode, requester=user)
            else:
                assert plan_file is not None
                path = Path(plan_file)
                if not path.is_file():
                    raise CommandError(f"--plan-file: {plan_file!r} is not a file")
                plan = parse_spec_text(path.read_text(encoding="utf-8"))
                if isinstance(plan, dict) and "plan" in plan and "nodes" not in plan:
                    plan = plan["plan"]
                run = run_create(
                    plan=plan,
                    context=context,
                    mode=mode,
                    requester=user,
                    review_plan=not no_review,
                )
        except PlanInvalid as exc:
            raise plan_errors(exc) from None
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} queued ({run.mode})"))
