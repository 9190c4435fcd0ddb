#!/bin/sh
# The compose `replica` service: on an empty data directory, clone the primary with
# pg_basebackup -R (which writes primary_conninfo and standby.signal), then run PostgreSQL as its
# hot standby. Runs as the postgres user; PGPASSWORD is the primary's password.
set -eu

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_basebackup --host="$PRIMARY_HOST" --username="$PRIMARY_USER" --pgdata="$PGDATA" \
    --write-recovery-conf --wal-method=stream --checkpoint=fast --progress; do
    echo "waiting for the primary at $PRIMARY_HOST"
    rm -rf "${PGDATA:?}"/*
    sleep 2
  done
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
