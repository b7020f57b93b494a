from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from analytics.services.tokens import api_token_issue


class Command(BaseCommand):
    help = "Issue an analytics API token for a staff user (printed once; only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="BI tool", help="What will use it, e.g. Metabase.")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.has_perm("analytics.view_cockpit"):
            self.stderr.write(f"Note: {username} lacks analytics.view_cockpit; the token reads nothing yet.")
        _, key = api_token_issue(user=user, name=name)
        self.stdout.write(key)
