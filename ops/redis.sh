# shellcheck shell=bash
# Redis from Debian's packages, our own instance under .local/redis.

REDIS_DIR=$LOCAL/redis
REDIS_PIDFILE=$REDIS_DIR/redis.pid

redis_pid() { pidfile_pid "$REDIS_PIDFILE"; }

redis_ready() { redis-cli -h 127.0.0.1 -p "$TODO_REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_start() {
  ensure_pkg redis-server command -v redis-server
  if [ -n "$(redis_pid)" ]; then
    say "redis already up on 127.0.0.1:$TODO_REDIS_PORT (pid $(redis_pid))"
    return
  fi
  port_busy "$TODO_REDIS_PORT" && die "port $TODO_REDIS_PORT is taken by another program ($(port_owner "$TODO_REDIS_PORT")); set TODO_REDIS_PORT to a free port"
  mkdir -p "$REDIS_DIR"
  say "starting redis on 127.0.0.1:$TODO_REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$TODO_REDIS_PORT" --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$LOGS/redis.log" \
    --appendonly yes --save "" >/dev/null || die "redis did not start (see $LOGS/redis.log)"
  wait_for 20 redis redis_ready || die "redis did not answer PING (see $LOGS/redis.log)"
}

redis_stop() {
  local pid
  pid=$(redis_pid) || true
  [ -n "$pid" ] && stop_pid redis "$pid" 20
  rm -f "$REDIS_PIDFILE"
}

redis_status() {
  local pid
  pid=$(redis_pid)
  if [ -n "$pid" ] && redis_ready; then
    status_line redis up "$TODO_REDIS_PORT" "pid $pid"
  else
    status_line redis down "$TODO_REDIS_PORT" "${pid:+pid $pid (not answering)}"
  fi
}

redis_url() { echo "redis://127.0.0.1:$TODO_REDIS_PORT/"; }
