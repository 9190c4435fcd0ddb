import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

# The variable Django's own createsuperuser --noinput reads.
PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name, not a secret


class Command(BaseCommand):
    help = (
        "Create the admin superuser if it does not exist. The password comes from "
        f"{PASSWORD_VARIABLE} (which also resets an existing user's password) or is generated "
        "and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")

    def handle(self, *args, username, email, **options):
        users = get_user_model()
        password_from_environment = os.environ.get(PASSWORD_VARIABLE, "")
        user = users.objects.filter(username=username).first()
        if user is None:
            password = password_from_environment or secrets.token_urlsafe(12)
            users.objects.create_superuser(username=username, email=email, password=password)
            shown = (
                f"(from {PASSWORD_VARIABLE})"
                if password_from_environment
                else f"{password}  (generated; shown only this once)"
            )
            self.stdout.write(f"Admin login: username {username}  password {shown}")
        elif password_from_environment:
            user.set_password(password_from_environment)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["password", "is_staff", "is_superuser", "is_active"])
            self.stdout.write(
                f"Admin login: username {username}  password (from {PASSWORD_VARIABLE})"
            )
        else:
            self.stdout.write(
                f"Admin login: username {username}  password as printed when it was created "
                f"(set {PASSWORD_VARIABLE} and run again to reset it)"
            )
