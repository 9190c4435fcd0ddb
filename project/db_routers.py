"""Primary/replica routing.

Ordinary reads and all writes go to the primary, so a request always reads its own writes.
Reports and analytics opt in to a replica explicitly with `.using(read_replica_alias())`.
"""

import random

from django.conf import settings


def replica_aliases():
    return [alias for alias in settings.DATABASES if alias.startswith("replica_")]


def read_replica_alias():
    """A replica for a heavy read, or the primary when none is configured."""
    replicas = replica_aliases()
    return random.choice(replicas) if replicas else "default"  # noqa: S311 - load spreading


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        # Replicas hold the same rows as the primary.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
