# shellcheck shell=bash
# Our own services: todo-backend and todo-event-service, built in release mode
# and started with the stack's environment (see `./dev env`).

SERVICES=(backend event-service)

service_crate() { echo "todo-$1"; }
service_port() {
  case $1 in
  backend) echo "$TODO_BACKEND_PORT" ;;
  event-service) echo "$TODO_EVENT_SERVICE_PORT" ;;
  esac
}
service_pidfile() { echo "$RUN/$1.pid"; }
service_exists() { [ -f "$ROOT/crates/$(service_crate "$1")/src/main.rs" ]; }
service_url() { echo "http://127.0.0.1:$(service_port "$1")"; }

service_pid() { pidfile_pid "$(service_pidfile "$1")"; }

service_healthy() { curl -fsS -m 2 "$(service_url "$1")/health" >/dev/null 2>&1; }

services_build() {
  local pkgs=() s
  for s in "${SERVICES[@]}"; do service_exists "$s" && pkgs+=(-p "$(service_crate "$s")"); done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  say "cargo build --release ${pkgs[*]}"
  (cd "$ROOT" && cargo build --release --quiet "${pkgs[@]}") || die "build failed"
}

# The variables every service reads; also what `./dev env` prints.
stack_env() {
  cat <<EOF
export KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)
export KAFKA_BROKERS=$(kafka_count)
export KAFKA_SASL_BOOTSTRAP_SERVERS=$(kafka_sasl_bootstrap)
export KAFKA_SASL_TEST_USERNAME=$KAFKA_SASL_USER
export KAFKA_SASL_TEST_PASSWORD=$KAFKA_SASL_PASSWORD
export DATABASE_URL=$(pg_url)
export EVENT_DATABASE_URL=$(pg_url todo_events)
export REDIS_URL=$(redis_url)
export BACKEND_URL=$(service_url backend)
export EVENT_SERVICE_URL=$(service_url event-service)
EOF
}

# The local stack's console admin token: made once, kept in $RUN, printed by
# `./dev status`. A deployment sets CONSOLE_ADMIN_TOKEN from its own secret.
console_admin_token() {
  local f=$RUN/console-admin-token
  [ -s "$f" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$f")
  cat "$f"
}

service_start() {
  local s=$1 bin port pid
  service_exists "$s" || {
    say "$s: not part of this checkout yet; skipped"
    return 0
  }
  if [ -n "$(service_pid "$s")" ]; then
    say "$s already up on $(service_url "$s") (pid $(service_pid "$s"))"
    if declare -F transport >/dev/null && [ "$(transport)" = dapr ]; then dapr_start "dapr-$s"; fi
    if [ "$ROOT/target/release/$(service_crate "$s")" -nt "$(service_pidfile "$s")" ]; then
      warn "$s was built again since it started; ./dev stop $s && ./dev start $s runs the new build"
    fi
    return
  fi
  port=$(service_port "$s")
  port_busy "$port" && die "port $port is taken by another program ($(port_owner "$port")); set TODO_$(echo "$s" | tr a-z- A-Z_)_PORT"
  bin=$ROOT/target/release/$(service_crate "$s")
  [ -x "$bin" ] || services_build
  # Dapr mode (ops/dapr.sh): the service reaches Kafka through its sidecar,
  # which starts first (it waits for the app's port before it subscribes).
  local dapr=0
  if declare -F transport >/dev/null && [ "$(transport)" = dapr ]; then
    dapr=1
    dapr_start "dapr-$s"
  fi
  local log=$LOGS/$s.log
  [ -f "$log" ] && mv "$log" "$log.1"
  say "starting $s on $(service_url "$s")"
  (
    eval "$(stack_env)"
    if [ "$s" = event-service ]; then
      # The console's health page scrapes the backend for its publish alert,
      # and replays need the admin token (.env may set its own).
      export CONSOLE_BACKEND_METRICS_URL=$(service_url backend)/metrics
      CONSOLE_ADMIN_TOKEN=$(console_admin_token)
      export CONSOLE_ADMIN_TOKEN
    fi
    # shellcheck disable=SC1091
    [ -f "$ROOT/.env" ] && set -a && . "$ROOT/.env" && set +a
    # After .env, which serves both services: each listens on its own port.
    export HTTP_ADDR=127.0.0.1:$port
    # After .env: --dapr means Dapr whatever .env says.
    if [ "$dapr" = 1 ]; then eval "$(dapr_service_env "$s")"; fi
    launch_detached "$log" "$bin" >"$(service_pidfile "$s")"
  )
  wait_healthy "$s" "$(service_url "$s")/health" "$log" || die "$s did not become healthy in 60s (see $log)"
  if [ "$dapr" = 1 ]; then
    wait_for 30 "dapr-$s" dapr_healthy "dapr-$s" || warn "dapr-$s does not reach $s yet (see $LOGS/dapr-$s.log)"
  fi
}

service_stop() {
  local pid
  pid=$(service_pid "$1") || true
  [ -n "$pid" ] && stop_pid "$1" "$pid" 30
  rm -f "$(service_pidfile "$1")"
}

service_status() {
  local s=$1 pid
  service_exists "$s" || return 0
  pid=$(service_pid "$s")
  if [ -n "$pid" ] && service_healthy "$s"; then
    status_line "$s" up "$(service_port "$s")" "pid $pid"
  else
    status_line "$s" down "$(service_port "$s")" "${pid:+pid $pid (unhealthy)}"
  fi
}
