"""Create an API token for a user and print it once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import token_create


class Command(BaseCommand):
    help = "Create an API token for USER and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="username the token acts as")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="days until the token expires (default: never)",
        )
        parser.add_argument("--name", default="created with manage.py create_token")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["user"]})
        except User.DoesNotExist:
            raise CommandError(f"no user {options['user']!r}") from None
        if options["expires_days"] is not None and options["expires_days"] < 1:
            raise CommandError("--expires-days must be at least 1")
        new = token_create(user=user, name=options["name"], expires_days=options["expires_days"])
        self.stdout.write(new.plain)
