#!/bin/sh
# Run by the postgres image once, on an empty data directory (docker-compose.yml): statement
# statistics for the ops database page, and the replica's replication login.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"

# The image's pg_hba.conf admits every database but not replication connections; the replica
# streams as the same (superuser) login, with its password, from the compose network.
echo "host replication $POSTGRES_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
