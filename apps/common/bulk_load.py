"""Many rows into one table at once: PostgreSQL's COPY, bulk_create elsewhere.

COPY streams the rows in one statement (psycopg 3's `Cursor.copy`); bulk_create builds a model
instance per row and an INSERT per batch, many times slower on wide or numerous rows. Values are
written as given, in the order of `columns` (attnames, e.g. "order_id"): no field defaults, no
signals; on COPY no `auto_now` either, so pass those columns explicitly.
"""

import contextlib

from django.db import DEFAULT_DB_ALIAS, connections


def load_rows(model, columns, rows, using=DEFAULT_DB_ALIAS):
    """Insert `rows` (sequences of values in `columns` order) into `model`'s table."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(
            model(**dict(zip(columns, row, strict=True))) for row in rows
        )
        return
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(model._meta.db_table)} ({', '.join(quote(name) for name in columns)}) "
        "FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def reserve_ids(model, count=1, using=DEFAULT_DB_ALIAS):
    """`count` fresh primary keys for `model`, to reference rows before they are inserted.

    On PostgreSQL they come from the key's sequence, so concurrent writers never collide. Elsewhere
    (SQLite) they follow the highest key: call it inside the transaction that inserts them, which
    SQLite's serialised writers keep to itself until it ends.
    """
    connection = connections[using]
    if count < 1:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, model._meta.pk.column, count],
            )
            return [row[0] for row in cursor.fetchall()]
    highest = model.objects.using(using).order_by("-pk").values_list("pk", flat=True).first()
    start = (highest or 0) + 1
    return list(range(start, start + count))


@contextlib.contextmanager
def foreign_keys_checked_at_end(*models, using=DEFAULT_DB_ALIAS):
    """Check the foreign keys of the rows loaded into `models`' tables once, at the end.

    On PostgreSQL each inserted row otherwise queues one lookup per foreign key, run at commit,
    which costs more than the insert itself. Here the keys from those tables are dropped and added
    back (each checked by one join over the table), as PostgreSQL's manual advises for bulk
    loads. Call it inside a transaction: no other session ever sees the tables without their
    keys; until it commits, other sessions wait to use those tables at all, and to write the
    tables they reference. Elsewhere it does nothing.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("foreign_keys_checked_at_end needs a transaction (transaction.atomic)")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
            "ORDER BY conrelid, conname",
            [[model._meta.db_table for model in models]],
        )
        keys = cursor.fetchall()
        # Checks still queued on these tables (earlier writes of the transaction) would forbid
        # the ALTER TABLE: run them now. Django's keys are deferred again at the end.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table, name, _ in keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    yield
    with connection.cursor() as cursor:
        for table, name, definition in keys:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
