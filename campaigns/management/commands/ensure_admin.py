"""Create the demo admin user once and print its login. Idempotent."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.env import VAR_DIR


class Command(BaseCommand):
    help = "Create a superuser for the local platform (FISSION_ADMIN_USER / FISSION_ADMIN_PASSWORD)."

    def handle(self, *args, **options):
        User = get_user_model()
        username = os.environ.get("FISSION_ADMIN_USER", "admin")
        password_file = VAR_DIR / "admin_password"
        password = os.environ.get("FISSION_ADMIN_PASSWORD", "")
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                password = secrets.token_urlsafe(12)
                VAR_DIR.mkdir(parents=True, exist_ok=True)
                password_file.write_text(password)
                password_file.chmod(0o600)
            User.objects.create_superuser(username=username, email="", password=password)
        elif password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        elif not password and password_file.exists():
            password = password_file.read_text().strip()
        shown = password or "(unchanged: the password you set)"
        self.stdout.write(f"Admin login: {username} / {shown}")
