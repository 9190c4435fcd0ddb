"""SQL fingerprints: one shape whatever the literals, lists, rows and generated names."""

import pytest

from apps.common.sql import fingerprint_of, normalise_sql


def test_string_and_number_literals_become_placeholders():
    first, _ = normalise_sql("SELECT * FROM t WHERE name = 'it''s' AND id = 42 AND r = 1.5")
    second, _ = normalise_sql("SELECT * FROM t WHERE name = 'other' AND id = 7 AND r = 2")

    assert first == second == "SELECT * FROM t WHERE name = %s AND id = %s AND r = %s"


def test_digits_inside_identifiers_are_kept():
    normalised, _ = normalise_sql('SELECT U0."id", "t2"."col_3" FROM "t2" T3 WHERE T3.x = %s')

    assert normalised == 'SELECT U0."id", "t2"."col_3" FROM "t2" T3 WHERE T3.x = %s'


def test_in_lists_of_any_length_are_one_shape():
    short, _ = normalise_sql('SELECT * FROM "t" WHERE "t"."id" IN (%s)')
    long, _ = normalise_sql('SELECT * FROM "t" WHERE "t"."id" IN (%s, %s, %s, %s)')
    literal, _ = normalise_sql('SELECT * FROM "t" WHERE "t"."id" in (1,2,3)')

    assert short == long == 'SELECT * FROM "t" WHERE "t"."id" IN (...)'
    assert literal == 'SELECT * FROM "t" WHERE "t"."id" IN (...)'


def test_multi_row_values_are_one_shape_and_ignored():
    one_row, one_row_ignored = normalise_sql('INSERT INTO "t" ("a", "b") VALUES (%s, %s)')
    rows, rows_ignored = normalise_sql('INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, %s)')

    assert one_row == rows
    assert (one_row_ignored, rows_ignored) == (False, True)


def test_savepoint_names_are_normalised():
    created, _ = normalise_sql('SAVEPOINT "s140012_x1"')
    other, _ = normalise_sql('SAVEPOINT "s140099_x7"')
    released, _ = normalise_sql('RELEASE SAVEPOINT "s140012_x1"')
    rolled_back, _ = normalise_sql('ROLLBACK TO SAVEPOINT "s140012_x1"')

    assert created == other == "SAVEPOINT %s"
    assert released == "RELEASE SAVEPOINT %s"
    assert rolled_back == "ROLLBACK TO SAVEPOINT %s"


def test_server_side_cursor_names_are_normalised():
    first, _ = normalise_sql('DECLARE "_django_curs_1401_sync_3" NO SCROLL CURSOR FOR SELECT 1')
    second, _ = normalise_sql('DECLARE "_django_curs_99_sync_12" NO SCROLL CURSOR FOR SELECT 1')

    assert first == second


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        'SAVEPOINT "s1_x1"',
        'RELEASE SAVEPOINT "s1_x1"',
        'ROLLBACK TO SAVEPOINT "s1_x1"',
        "SET TIME ZONE 'UTC'",
        "SHOW server_version",
        "PRAGMA foreign_keys=ON",
        'FETCH FORWARD 2000 FROM "_django_curs_1_sync_1"',
        'CLOSE "_django_curs_1_sync_1"',
    ],
)
def test_transaction_set_up_and_cursor_statements_are_ignored(sql):
    assert normalise_sql(sql)[1] is True


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT "t"."id" FROM "t" WHERE "t"."id" = %s',
        'UPDATE "t" SET "a" = %s WHERE "t"."id" = %s',
        'DELETE FROM "t" WHERE "t"."id" IN (%s, %s)',
        "WITH x AS (SELECT 1) SELECT * FROM x",
    ],
)
def test_queries_are_not_ignored(sql):
    assert normalise_sql(sql)[1] is False


def test_whitespace_is_collapsed():
    assert normalise_sql("SELECT  a\n  FROM\tt")[0] == "SELECT a FROM t"


def test_normalising_is_memoised():
    normalise_sql.cache_clear()
    normalise_sql("SELECT %s")
    normalise_sql("SELECT %s")

    assert normalise_sql.cache_info().hits == 1


def test_fingerprints_are_short_stable_digests():
    assert fingerprint_of("SELECT %s") == fingerprint_of("SELECT %s")
    assert fingerprint_of("SELECT %s") != fingerprint_of("SELECT %s FROM t")
    assert len(fingerprint_of("SELECT %s")) == 16
