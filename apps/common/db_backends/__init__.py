"""The project's database backends: Django's, with what the service needs whatever it exports.

apps/observability/metrics/db_backends subclasses them to count queries for Prometheus; the
settings name those.
"""
