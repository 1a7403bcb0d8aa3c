"""Plan a request in plain language and print the validated plan."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows import executor_config
from workflows.plan_review import review_table
from workflows.planner import draft


class Command(BaseCommand):
    help = (
        "Turn a request into a plan with the configured planner and print it with its "
        "validation; exit 1 when no valid plan came out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text", help='e.g. "move the PDFs in Downloads to Reports"')
        parser.add_argument(
            "--provider", choices=["builtin", "openai"], help="override AGENTOS_PLANNER"
        )
        parser.add_argument("--output", "-o", help="also write the plan (JSON) to this file")

    def handle(
        self, *args: Any, text: str, provider: str | None, output: str | None, **options: Any
    ) -> None:
        result = draft(text, provider=provider)
        if result["plan"] is not None:
            self.stdout.write(review_table(result["plan"], executor_config.registry()))
            self.stdout.write(json.dumps(result["plan"], indent=2))
            if output:
                with open(output, "w", encoding="utf-8") as handle:
                    json.dump(result["plan"], handle, indent=2)
        if not result["valid"]:
            lines = [
                f"  {e['node'] or '-'} {e['field'] or '-'}: {e['message']}"
                for e in result["errors"]
            ]
            raise CommandError(
                f"no valid plan ({result['provider']} planner):\n" + "\n".join(lines)
            )
        self.stdout.write(self.style.SUCCESS(f"valid plan ({result['provider']} planner)"))
