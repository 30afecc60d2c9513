#!/usr/bin/env bash
# Self-test of ./dev: status after up, stop and start of one component.
# Run by `./dev test` after the cargo tests (it stops Kafka for a moment).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=$ROOT/dev
passed=0 failed=0

check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   - $name"
  else
    failed=$((failed + 1))
    echo "FAIL - $name"
  fi
}

state_of() { "$DEV" status 2>/dev/null | awk -v c="$1" '$1 == c { print $2 }'; }
all_infra_up() {
  local s
  s=$("$DEV" status 2>/dev/null)
  echo "$s" | awk 'NR > 1 && $1 ~ /^(postgres|redis|kafka-[0-9])$/ && $2 != "up" { bad = 1 } END { exit bad }'
}
first_kafka=$("$DEV" status 2>/dev/null | awk '$1 ~ /^kafka-/ { print $1; exit }')

"$DEV" up --infra >/dev/null 2>&1
check "status after up shows postgres, redis and every kafka node up" all_infra_up
t0=$SECONDS
"$DEV" up --infra >/dev/null 2>&1
check "a second up while everything runs takes seconds ($((SECONDS - t0))s)" test $((SECONDS - t0)) -lt 20
"$DEV" stop kafka >/dev/null 2>&1
check "stop kafka, then status shows $first_kafka down" test "$(state_of "$first_kafka")" = down
check "postgres stays up while kafka is stopped" test "$(state_of postgres)" = up
"$DEV" start kafka >/dev/null 2>&1
check "start kafka brings $first_kafka back up" test "$(state_of "$first_kafka")" = up
check "./dev env prints the stack's variables" bash -c "'$DEV' env | grep -q '^export KAFKA_BOOTSTRAP_SERVERS=' && '$DEV' env | grep -q '^export DATABASE_URL=postgres://'"

# A Dapr sidecar as ./dev runs it (no service needed: outbound health only).
loopback_only() {
  local pid addrs
  pid=$(cat "$ROOT/.local/run/$1.pid") || return 1
  addrs=$(ss -Htulnp | grep "pid=$pid," | awk '{ print $5 }')
  [ -n "$addrs" ] && ! echo "$addrs" | grep -qv '^127\.0\.0\.1:'
}
"$DEV" start dapr-backend >/dev/null 2>&1
check "start dapr-backend, then status shows it up" test "$(state_of dapr-backend)" = up
check "every port dapr-backend listens on is on 127.0.0.1" loopback_only dapr-backend
"$DEV" kill dapr-backend >/dev/null 2>&1
check "kill dapr-backend, then status shows it down" test "$(state_of dapr-backend)" = down
"$DEV" start dapr-backend >/dev/null 2>&1
check "start dapr-backend right after the kill brings it back" test "$(state_of dapr-backend)" = up
check "./dev env in Dapr mode prints the sidecars' ports" bash -c "TODO_TRANSPORT=dapr '$DEV' env | grep -q '^export DAPR_EVENT_SERVICE_HTTP_PORT=[0-9]'"
"$DEV" stop dapr-backend >/dev/null 2>&1
check "stop dapr-backend stops it" test "$(state_of dapr-backend)" != up

# A pidfile left by a killed process, whose pid a later process took (another
# checkout's broker, say): stop must leave that process alone.
sleep 300 &
stranger=$!
echo "$stranger" >"$ROOT/.local/run/dapr-backend.pid"
touch -d '10 minutes ago' "$ROOT/.local/run/dapr-backend.pid"
"$DEV" stop dapr-backend >/dev/null 2>&1
check "stop leaves alone the process that now holds a stale pidfile's pid" kill -0 "$stranger"
kill "$stranger" 2>/dev/null

# The three-broker layout, then back to the layout we found.
if true; then
  mode_before=$(cat "$ROOT/.local/kafka/mode" 2>/dev/null || echo single)
  "$DEV" up --infra --brokers 3 >/dev/null 2>&1
  check "up --brokers 3 starts three kafka nodes" test "$("$DEV" status | grep -c '^kafka-[123] .* up ')" = 3
  check "RF=3, min.insync.replicas=2 takes acks=all writes, also with one broker stopped" \
    bash -c "cd '$ROOT' && eval \"\$('$DEV' env)\" && cargo run -q -p todo-testkit --bin cluster-check"
  [ "$mode_before" = single ] && "$DEV" up --infra --brokers 1 >/dev/null 2>&1
fi

echo "dev: $passed passed, $failed failed"
[ "$failed" = 0 ]
