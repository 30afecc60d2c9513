#!/usr/bin/env bash
# Contract conformance, by tools that no one here wrote: openapi-spec-validator
# on both services' OpenAPI documents, schemathesis (every check, stateful phase
# included) against both services, and the official AsyncAPI parser on
# docs/asyncapi.yaml. The services are this script's own instances of the
# release binaries, on free ports, with fresh databases and their own topics,
# so the shared stack's services are never touched. Needs the infrastructure
# (./dev up --infra) and `eval "$(./dev env)"`. Tools are installed into .local/
# once per pinned version.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${TODO_LOCAL_DIR:-$ROOT/.local}

# Pinned tool versions: change one here and its tools are installed anew.
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
ASYNCAPI_PARSER_VERSION=3.6.3
ASYNCAPI_AVRO_PARSER_VERSION=3.0.24
AJV_VERSION=8.20.0
# Test cases per operation in the fuzzing phase, and the time each service's
# run may take: fuzzing and the stateful phase repeat until it is spent. The
# backend gets more: its DELETE is mostly reached through the stateful phase.
EXAMPLES=${TODO_CONTRACT_EXAMPLES:-200}
BACKEND_SECONDS=${TODO_CONTRACT_BACKEND_SECONDS:-90}
EVENT_SERVICE_SECONDS=${TODO_CONTRACT_EVENT_SERVICE_SECONDS:-45}

PY_TOOLS=$LOCAL/contracts/py-schemathesis-$SCHEMATHESIS_VERSION-osv-$OPENAPI_SPEC_VALIDATOR_VERSION
NODE_TOOLS=$LOCAL/contracts/node-parser-$ASYNCAPI_PARSER_VERSION-avro-$ASYNCAPI_AVRO_PARSER_VERSION-ajv-$AJV_VERSION
RUN=$LOCAL/contracts/run-$$
started=$SECONDS

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

: "${DATABASE_URL:?run eval \"\$(./dev env)\" first}" "${KAFKA_BOOTSTRAP_SERVERS:?}" "${REDIS_URL:?}"

install_python_tools() {
  local ready=$PY_TOOLS/.installed
  [ -f "$ready" ] && return 0
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "apt-get install python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
  fi
  say "python3 -m venv $PY_TOOLS; pip install schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
  python3 -m venv --clear "$PY_TOOLS"
  "$PY_TOOLS/bin/python" -m pip install -q --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" >&2
  touch "$ready"
}

install_node_tools() {
  local ready=$NODE_TOOLS/.installed
  [ -f "$ready" ] && return 0
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    say "apt-get install nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
  fi
  say "npm install @asyncapi/parser@$ASYNCAPI_PARSER_VERSION @asyncapi/avro-schema-parser@$ASYNCAPI_AVRO_PARSER_VERSION ajv@$AJV_VERSION into $NODE_TOOLS"
  rm -rf "$NODE_TOOLS" && mkdir -p "$NODE_TOOLS"
  (cd "$NODE_TOOLS" && echo '{"private":true}' >package.json &&
    npm install --no-audit --no-fund --silent --save-exact \
      "@asyncapi/parser@$ASYNCAPI_PARSER_VERSION" "@asyncapi/avro-schema-parser@$ASYNCAPI_AVRO_PARSER_VERSION" "ajv@$AJV_VERSION" >&2)
  touch "$ready"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

psql_admin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  "$bin/psql" "$DATABASE_URL" -v ON_ERROR_STOP=1 -qtAc "$1"
}

PIDS=()
DBS=()
cleanup() {
  local pid db
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${DBS[@]}"; do psql_admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_ready() {
  local name=$1 url=$2 log=$3 pid=$4 i
  for i in $(seq 1 120); do
    curl -fsS -o /dev/null "$url/ready" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "$name exited during start"; }
    sleep 0.5
  done
  tail -20 "$log" >&2
  die "$name was not ready within 60s"
}

# Runs schemathesis with every check and every phase against the document a
# service serves; fails on any failure. Prints the test cases per operation.
# NB: one worker: with two, schemathesis 4.32.5 sometimes stops on an internal
# KeyError in its coverage phase.
schemathesis_run() {
  local name=$1 url=$2 seconds=$3 phases=${4:-examples,coverage,fuzzing,stateful} out=$RUN/schemathesis-$1.txt
  local filter=("${@:5}")
  say "schemathesis run $url/openapi.json --checks all --phases $phases -n $EXAMPLES --max-time $seconds ${filter[*]}"
  if ! "$PY_TOOLS/bin/schemathesis" run "$url/openapi.json" --checks all "${filter[@]}" \
    --phases "$phases" --max-examples "$EXAMPLES" \
    --max-time "$seconds" --workers 1 --request-timeout 10 \
    ${TODO_CONTRACT_SEED:+--seed "$TODO_CONTRACT_SEED"} \
    --report ndjson --report-ndjson-path "$RUN/$name.ndjson" >"$out" 2>&1; then
    cat "$out" >&2
    die "schemathesis found failures in $name (above; reports in $RUN)"
  fi
  grep -E 'generated|Seed:' "$out" | sed "s/^ */   $name: /" >&2 || true
  "$PY_TOOLS/bin/python" - "$RUN/$name.ndjson" >&2 <<'PY'
import collections, json, sys
per_op = collections.Counter()
for line in open(sys.argv[1]):
    event = json.loads(line)
    for case in event.get("ScenarioFinished", {}).get("recorder", {}).get("cases", {}).values():
        v = case["value"]
        per_op[v["operation"]["label"] if "operation" in v else f'{v.get("method")} {v.get("path")}'] += 1
documented = {op: n for op, n in per_op.items() if n > 1}
print("   test cases per operation: " + ", ".join(f"{op} {n}" for op, n in sorted(documented.items())))
PY
}

mkdir -p "$RUN"
say "installing the pinned tools into $LOCAL/contracts (once per version)"
mkdir -p "$LOCAL/contracts"
exec 9>"$LOCAL/contracts/install.lock"
flock 9
install_python_tools
install_node_tools
flock -u 9

say "AsyncAPI parser on docs/asyncapi.yaml, then the golden JSON events against its payload schemas"
NODE_PATH=$NODE_TOOLS/node_modules node "$ROOT/ops/contracts/asyncapi-check.js" \
  "$ROOT/docs/asyncapi.yaml" "$ROOT/schemas/golden" >&2

say "cargo build --release -p todo-backend -p todo-event-service"
(cd "$ROOT" && cargo build --release --quiet -p todo-backend -p todo-event-service)

id=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')
backend_db=test_contracts_$id
events_db=test_contracts_${id}_events
say "creating databases $backend_db and $events_db"
DBS=("$backend_db" "$events_db")
psql_admin "CREATE DATABASE \"$backend_db\""
psql_admin "CREATE DATABASE \"$events_db\""
base=${DATABASE_URL%/*}

# The t- prefix lets ./dev test delete these topics like the tests' own.
prefix=t-contracts-$id.
backend_port=$(free_port)
events_port=$(free_port)
backend_url=http://127.0.0.1:$backend_port
events_url=http://127.0.0.1:$events_port

say "starting todo-backend on $backend_url (topics $prefix*)"
HTTP_ADDR=127.0.0.1:$backend_port DATABASE_URL=$base/$backend_db KAFKA_TOPIC_PREFIX=$prefix \
  RUST_LOG=warn "$ROOT/target/release/todo-backend" >"$RUN/backend.log" 2>&1 &
PIDS+=($!)
wait_ready todo-backend "$backend_url" "$RUN/backend.log" "${PIDS[-1]}"

say "starting todo-event-service on $events_url"
HTTP_ADDR=127.0.0.1:$events_port EVENT_DATABASE_URL=$base/$events_db KAFKA_TOPIC_PREFIX=$prefix \
  KAFKA_GROUP_ID=contracts-$id KAFKA_AUTO_OFFSET_RESET=earliest RUST_LOG=warn \
  "$ROOT/target/release/todo-event-service" >"$RUN/event-service.log" 2>&1 &
PIDS+=($!)
wait_ready todo-event-service "$events_url" "$RUN/event-service.log" "${PIDS[-1]}"

for svc in backend:$backend_url event-service:$events_url; do
  name=${svc%%:*} url=${svc#*:}
  say "openapi-spec-validator on $name's /openapi.json"
  curl -fsS "$url/openapi.json" >"$RUN/$name.openapi.json"
  "$PY_TOOLS/bin/openapi-spec-validator" "$RUN/$name.openapi.json" >&2
done

schemathesis_run backend "$backend_url" "$BACKEND_SECONDS"
# DELETE is reached mostly through the stateful phase, which leaves it fewer
# cases than the others: a run of its own gives it its 200 examples.
schemathesis_run backend-delete "$backend_url" 30 examples,coverage,fuzzing --include-method DELETE
# The backend's run created, changed and deleted tasks; their events give the
# event service's read API something to answer with.
schemathesis_run event-service "$events_url" "$EVENT_SERVICE_SECONDS"

rm -rf "$RUN"
say "contracts hold ($((SECONDS - started))s)"
