#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that need no database (collectstatic runs in the image build, where there is none).
NO_DATABASE_COMMANDS = {"check", "collectstatic", "help", "makemigrations", "version"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now to report bad configuration
    except ImproperlyConfigured as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        sys.exit(2)
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command not in NO_DATABASE_COMMANDS and not command.startswith("-"):
        from project.preflight import missing_database_problem

        problem = missing_database_problem(settings.DATABASES)
        if problem:
            sys.stderr.write(f"Configuration error: {problem}\n")
            sys.exit(2)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
