"""Database helpers shared by the apps: execute wrappers, pool statistics, upserts, pruning.

Nothing here runs a query on import; each helper works on any configured alias, on PostgreSQL
and SQLite alike. Replica routing and the connection breakers live in `apps.common.replicas`.
"""

import logging

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)


def replica_aliases():
    """The read replicas' aliases (DATABASE_REPLICA_URLS: replica_1, replica_2, …)."""
    return [alias for alias in settings.DATABASES if alias.startswith("replica_")]


def install_execute_wrapper(wrapper, dispatch_uid):
    """Run `wrapper` around every query of every connection of the process, from now on.

    New connections (any thread, any alias) get it when they connect; connections this thread
    already opened get it now. Inserted first (outermost): other code pushes and pops its wrappers
    at the end of the list with `connection.execute_wrapper()`, which an append in the middle of
    its block would break. Idempotent.
    """

    def install_on(connection):
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.insert(0, wrapper)

    def on_connection_created(sender, connection, **kwargs):
        install_on(connection)

    connection_created.connect(on_connection_created, weak=False, dispatch_uid=dispatch_uid)
    for connection in connections.all(initialized_only=True):
        install_on(connection)


def pool_statistics(alias, open_pool=False):
    """psycopg pool statistics of this process for `alias`, or None without a pool.

    Only a pool that exists is read unless `open_pool`: asking the connection for its pool opens
    one, which a metrics scrape must not do.
    """
    if open_pool:
        pool = getattr(connections[alias], "pool", None)
    else:
        pool = getattr(type(connections[alias]), "_connection_pools", {}).get(alias)
    return pool.get_stats() if pool is not None else None


def all_pool_statistics():
    """pool_statistics of every configured alias, keyed by alias."""
    return {alias: pool_statistics(alias) for alias in connections}


def close_connection(alias):
    """Give this thread's connection of `alias` back to the pool (or close it).

    With the pool, a connection kept by a thread that is done with it is one fewer for requests.
    A failure to close is logged, never raised: the connection is unusable either way.
    """
    try:
        connections[alias].close()
    except Exception:
        logger.debug("closing the %s connection failed", alias, exc_info=True)


def close_all_connections():
    """close_connection for every connection this thread opened."""
    for connection in connections.all(initialized_only=True):
        close_connection(connection.alias)


def greatest(connection):
    return "GREATEST" if connection.vendor == "postgresql" else "MAX"


def least(connection):
    return "LEAST" if connection.vendor == "postgresql" else "MIN"


def upsert_sql(connection, table, columns, conflict_columns, assignments):
    """INSERT ... ON CONFLICT DO UPDATE SET `assignments`, the same on PostgreSQL and SQLite.

    In an assignment `table.column` is the stored row and `excluded.column` the incoming one.
    Names come from models, never from input; values are passed as parameters.
    """
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {table} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(column) for column in conflict_columns)}) "
        f"DO UPDATE SET {', '.join(assignments)}"
    )


def delete_older_than(queryset, field, cutoff, batch_size):
    """Delete the rows of `queryset` whose `field` is before `cutoff`, `batch_size` at a time.

    Each batch is its own short statement, so that pruning a backlog never holds the locks a
    writer waits for. Returns how many rows were deleted.
    """
    old = queryset.filter(**{f"{field}__lt": cutoff}).order_by(field)
    deleted = 0
    while batch := list(old.values_list("pk", flat=True)[:batch_size]):
        queryset.filter(pk__in=batch).delete()
        deleted += len(batch)
    return deleted
