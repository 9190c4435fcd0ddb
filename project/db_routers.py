"""Primary/replica routing.

Ordinary reads and all writes go to the primary, so a request always reads its own writes.
Reports and analytics opt in to a replica explicitly with
`apps.common.replicas.read_on_replica()` (a replica in rotation, else the primary).
"""


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
