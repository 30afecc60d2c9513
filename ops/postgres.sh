# shellcheck shell=bash
# PostgreSQL from Debian's packages, our own cluster under .local/postgres.
# initdb refuses to run as root, so the cluster belongs to the `postgres`
# system user (created by the package).

PG_DIR=$LOCAL/postgres
# A cluster moved out of a private checkout (see pg_reachable_dir) is linked here.
[ -L "$PG_DIR" ] && PG_DIR=$(readlink -f "$PG_DIR")
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/run
PG_USER=todo
PG_PASSWORD=todo
PG_DB=todo
# The event service keeps its store (audit, projections, analytics) apart.
PG_EVENTS_DB=todo_events

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && echo "$d"
}

pg_install() {
  [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || apt_install postgresql postgresql-contrib
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

as_pg() { (cd / && runuser -u postgres -- "$@"); }

# The postgres user must reach the data dir. In a checkout under a private
# directory (say /root) it cannot, so the cluster lives under
# /var/lib/postgresql instead, one per checkout, linked from .local/postgres.
pg_reachable_dir() {
  [ -L "$LOCAL/postgres" ] && return 0
  chmod o+x "$LOCAL" "$ROOT" 2>/dev/null || true
  mkdir -p "$LOCAL"
  runuser -u postgres -- test -x "$LOCAL" 2>/dev/null && return 0
  [ -e "$LOCAL/postgres" ] && die "the postgres user cannot reach $LOCAL/postgres (a parent directory is private)"
  local dir
  dir=/var/lib/postgresql/todo-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
  say "the postgres user cannot reach $LOCAL (a private parent directory): the cluster lives in $dir"
  mkdir -p "$dir"
  chown postgres: "$dir"
  ln -sfn "$dir" "$LOCAL/postgres"
  PG_DIR=$dir
  PG_DATA=$PG_DIR/data
  PG_SOCK=$PG_DIR/run
}

pg_pid() { pidfile_pid "$PG_DATA/postmaster.pid"; }

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$TODO_PG_PORT"; }

pg_start() {
  pg_install
  local bin
  bin=$(pg_bin)
  if [ -n "$(pg_pid)" ]; then
    say "postgres already up on 127.0.0.1:$TODO_PG_PORT (pid $(pg_pid))"
    return
  fi
  port_busy "$TODO_PG_PORT" && die "port $TODO_PG_PORT is taken by another program ($(port_owner "$TODO_PG_PORT")); set TODO_PG_PORT to a free port"
  pg_reachable_dir
  mkdir -p "$PG_DIR" "$PG_SOCK" "$PG_DIR/log"
  chown postgres: "$PG_DIR" "$PG_SOCK" "$PG_DIR/log"
  # The server writes its log as the postgres user; ./dev logs finds it here.
  ln -sfn "$PG_DIR/log/postgres.log" "$LOGS/postgres.log"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "initdb $PG_DATA (superuser $PG_USER)"
    local pw=$PG_DIR/pwfile
    echo "$PG_PASSWORD" >"$pw"
    chown postgres: "$pw"
    as_pg "$bin/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pw" --auth-host=scram-sha-256 --auth-local=trust \
      -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 || die "initdb failed (see $LOGS/postgres-initdb.log)"
    rm -f "$pw"
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# --- todo dev stack ---
listen_addresses = '127.0.0.1'
max_connections = 400
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 15min
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
  fi
  pg_write_tuning
  say "starting postgres on 127.0.0.1:$TODO_PG_PORT"
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/log/postgres.log" -w -t 60 \
    -o "-p $TODO_PG_PORT -k $PG_SOCK" start >/dev/null || die "postgres did not start (see $LOGS/postgres.log)"
  local db
  for db in "$PG_DB" "$PG_EVENTS_DB"; do
    if ! as_pg "$bin/psql" -h "$PG_SOCK" -p "$TODO_PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "select 1 from pg_database where datname='$db'" | grep -q 1; then
      say "creating database $db"
      as_pg "$bin/createdb" -h "$PG_SOCK" -p "$TODO_PG_PORT" -U "$PG_USER" "$db"
    fi
  done
}

# Settings for write throughput that keep every commit durable. Written on
# every start, so an existing cluster gets them too.
# - wal_compression: full-page images after a checkpoint dominate the WAL of
#   inserts into indexes; lz4 shrinks them for little CPU.
# - max_wal_size / checkpoint_timeout: fewer checkpoints, so fewer full-page
#   images (crash recovery replays at most this much WAL).
# synchronous_commit and fsync stay on: a 201 means the task and its event
# are on disk.
pg_write_tuning() {
  cat >"$PG_DATA/todo-stack.conf" <<EOF
# Written by ops/postgres.sh on every start; edits here are lost.
wal_compression = lz4
max_wal_size = 4GB
checkpoint_timeout = 30min
EOF
  chown postgres: "$PG_DATA/todo-stack.conf"
  grep -q "^include_if_exists = 'todo-stack.conf'" "$PG_DATA/postgresql.conf" ||
    echo "include_if_exists = 'todo-stack.conf'" >>"$PG_DATA/postgresql.conf"
}

pg_stop() {
  [ -n "$(pg_pid)" ] || return 0
  say "stopping postgres"
  as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
}

pg_status() {
  local pid
  pid=$(pg_pid)
  if [ -n "$pid" ] && pg_ready; then
    status_line postgres up "$TODO_PG_PORT" "pid $pid"
  elif [ -n "$pid" ]; then
    status_line postgres down "$TODO_PG_PORT" "pid $pid (not accepting connections)"
  else
    status_line postgres down "$TODO_PG_PORT" "-"
  fi
}

pg_url() { echo "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$TODO_PG_PORT/${1:-$PG_DB}"; }

# Drops the per-test databases (test_*) that integration tests create.
pg_drop_test_databases() {
  local bin db
  bin=$(pg_bin)
  for db in $(as_pg "$bin/psql" -h "$PG_SOCK" -p "$TODO_PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "select datname from pg_database where datname like 'test\_%'"); do
    as_pg "$bin/dropdb" -h "$PG_SOCK" -p "$TODO_PG_PORT" -U "$PG_USER" "$db" >/dev/null 2>&1 || true
  done
}
