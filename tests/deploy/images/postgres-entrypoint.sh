#!/usr/bin/env bash
# The official postgres image's start, reduced to what docker-compose.yml uses: a new data directory is
# initialized with POSTGRES_USER (password POSTGRES_PASSWORD, scram-sha-256 over TCP) and POSTGRES_DB, in UTF-8
# as the official image does (psycopg returns bytes, not str, from an SQL_ASCII database).
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  db="${POSTGRES_DB:-$POSTGRES_USER}"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*'
