#!/usr/bin/env bash
# A throw-away PostgreSQL on 127.0.0.1 for the Turing test's store tests.
#
#   export TURING_TEST_PG_URL="$(bash scripts/ci_postgres.sh)"   # install if needed, start, print URL
#   bash scripts/ci_postgres.sh stop                             # stop it and delete its data
#
# Installs Debian's postgresql when its binaries are missing (apt-get), creates a cluster in
# $TURING_PG_DIR (default /tmp/turing_pg) owned by the postgres user, listening only on
# 127.0.0.1:$TURING_PG_PORT (default 55432) with trust authentication, and creates the database
# turing_test. Everything but the URL goes to stderr.
set -euo pipefail

PGDIR="${TURING_PG_DIR:-/tmp/turing_pg}"
PORT="${TURING_PG_PORT:-55432}"
DBNAME=turing_test

log() { echo "ci_postgres: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

as_pg() {  # run a command as the postgres user (initdb refuses to run as root)
  if [ "$(id -u)" = "0" ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

if [ "${1:-start}" = "stop" ]; then
  if BIN="$(find_bindir)" && [ -f "$PGDIR/data/PG_VERSION" ]; then
    as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$PGDIR"
  exit 0
fi

if ! BIN="$(find_bindir)"; then
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
  BIN="$(find_bindir)"
fi
id postgres >/dev/null 2>&1 || { log "no postgres user after the install"; exit 1; }

if [ -f "$PGDIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
  PORT="$(cat "$PGDIR/port" 2>/dev/null || echo "$PORT")"
  log "already running in $PGDIR"
else
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  chown postgres "$PGDIR" 2>/dev/null || true
  as_pg "$BIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  started=""
  for _ in 1 2 3 4 5 6 7 8; do  # a port still held by another program: take the next one
    : > "$PGDIR/server.log"; chown postgres "$PGDIR/server.log" 2>/dev/null || true
    if as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDIR -c fsync=on -c max_connections=200" start >&2; then
      started=1; break
    fi
    grep -q "Address already in use" "$PGDIR/server.log" || break
    log "port $PORT is in use; trying $((PORT + 1))"
    PORT=$((PORT + 1))
  done
  [ -n "$started" ] || { log "PostgreSQL did not start; see $PGDIR/server.log"; exit 1; }
  echo "$PORT" > "$PGDIR/port"
fi
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DBNAME'" \
  | grep -q 1 || "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DBNAME"
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, database $DBNAME"
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DBNAME"
