# shellcheck shell=bash
# daprd, the Dapr sidecar, for the local stack (`./dev up --dapr`) and the tests.
#
# Built once per version from its Go module (no prebuilt binary can be fetched
# here) with only the components we use: pubsub.kafka and the Kubernetes name
# resolver. Cached in .local/dapr/VERSION/bin/daprd; only a cold machine builds it.
#
# One sidecar per service, app ids todo-backend and todo-event-service. Every
# port a sidecar opens is bound to 127.0.0.1, and name resolution is Kubernetes'
# (deploy/dapr/configuration.yaml): standalone daprd's default, mDNS, multicasts.
# Sidecar S uses four ports from its base: HTTP, gRPC, internal gRPC, metrics.
#
# Sourced by ./dev after lib.sh, kafka.sh and services.sh; also runnable on its
# own (`bash ops/dapr.sh` builds daprd and prints its path).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  DAPR_STANDALONE=1
  set -euo pipefail
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  export ROOT
  # shellcheck source=ops/lib.sh
  . "$ROOT/ops/lib.sh"
else
  DAPR_STANDALONE=0
fi

DAPR_VERSION=1.14.4
DAPR_HOME=$LOCAL/dapr
DAPRD=$DAPR_HOME/$DAPR_VERSION/bin/daprd
# Bumped when the recipe below changes what the binary does: rebuilds it.
DAPR_BUILD_REV=2
DAPR_BUILD_REV_FILE=$DAPR_HOME/$DAPR_VERSION/build-rev
DAPR_PUBSUB_NAME=kafka-pubsub
DAPR_RESOURCES=$DAPR_HOME/resources
DAPR_SIDECARS=(dapr-backend dapr-event-service)
# Which transport `./dev up` starts the services with: kafka (direct) or dapr.
# Kept like the Kafka layout, so that `./dev start backend` and `./dev env`
# agree with the last `./dev up`; TODO_TRANSPORT overrides it.
TRANSPORT_FILE=$RUN/transport

transport() {
  if [ -n "${TODO_TRANSPORT:-}" ]; then
    echo "$TODO_TRANSPORT"
  elif [ -f "$TRANSPORT_FILE" ]; then
    cat "$TRANSPORT_FILE"
  else
    echo kafka
  fi
}

# transport_set kafka|dapr: a change restarts nothing by itself but stops the
# services and sidecars started with the other transport.
transport_set() {
  local want=$1 s
  case $want in kafka | dapr) ;; *) die "transport is kafka or dapr, not '$want'" ;; esac
  if [ "$(cat "$TRANSPORT_FILE" 2>/dev/null || echo kafka)" != "$want" ]; then
    for s in "${SERVICES[@]}"; do service_stop "$s"; done
    dapr_stop_all
    say "services switch to the $want transport"
    echo "$want" >"$TRANSPORT_FILE"
  fi
}

# ------------------------------------------------------------------- build
dapr_built() { [ -x "$DAPRD" ] && [ "$(cat "$DAPR_BUILD_REV_FILE" 2>/dev/null)" = "$DAPR_BUILD_REV" ]; }

dapr_install() {
  dapr_built && return 0
  mkdir -p "$DAPR_HOME"
  (
    # One build at a time (./dev test and ./dev up may race on a cold machine).
    exec 7>"$DAPR_HOME/.lock"
    flock 7
    dapr_built && exit 0
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=$PATH:/usr/local/go/bin
    command -v go >/dev/null || die "Go is needed to build daprd (Debian: apt-get install golang-go)"
    local t=$SECONDS src=$DAPR_HOME/$DAPR_VERSION/src log=$LOGS/dapr-build.log dir
    say "building daprd $DAPR_VERSION from its Go module into ${DAPRD#"$ROOT"/} (about 3 minutes; log: ${log#"$ROOT"/})"
    : >"$log"
    dir=$(cd "$DAPR_HOME" && go mod download -json "github.com/dapr/dapr@v$DAPR_VERSION" 2>>"$log" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download github.com/dapr/dapr@v$DAPR_VERSION failed (see $log)"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    # Only the components we use: the Kafka pub/sub and the Kubernetes name
    # resolver (zz_notag.go is the registry's default). The rest would pull in
    # every cloud SDK and triple the build.
    find "$src/cmd/daprd/components" -maxdepth 1 -type f -name '*.go' \
      ! -name pubsub_kafka.go ! -name nameresolution_kubernetes.go ! -name zz_notag.go -delete
    # NB: daprd 1.14 parses --metrics-listen-address but never passes it on,
    # so its metrics server listens on every interface. Pass it on.
    printf '\n// ListenAddress is --metrics-listen-address (patched in by ops/dapr.sh).\nfunc (f *FlagOptions) ListenAddress() string { return f.listenAddress }\n' \
      >>"$src/pkg/metrics/options.go"
    sed -i 's|^\([[:space:]]*\)Port:      opts.Metrics.Port(),$|&\n\1ListenAddress: opts.Metrics.ListenAddress(),|' "$src/cmd/daprd/app/app.go"
    grep -q 'ListenAddress: opts.Metrics.ListenAddress()' "$src/cmd/daprd/app/app.go" ||
      die "the metrics listen address patch no longer applies to daprd $DAPR_VERSION (cmd/daprd/app/app.go)"
    local tmp=$DAPRD.tmp
    mkdir -p "$(dirname "$DAPRD")"
    (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false -tags stablecomponents \
      -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION" \
      -o "$tmp" ./cmd/daprd) >>"$log" 2>&1 || die "daprd build failed (see $log; the sources stay in ${src#"$ROOT"/})"
    mv "$tmp" "$DAPRD"
    echo "$DAPR_BUILD_REV" >"$DAPR_BUILD_REV_FILE"
    rm -rf "$src"
    say "daprd $DAPR_VERSION built in $((SECONDS - t))s ($(du -h "$DAPRD" | cut -f1))"
  ) || exit 1
}

# ------------------------------------------------------------------- ports
# Sidecar base ports; four each (HTTP, gRPC, internal gRPC, metrics). Chosen
# only in Dapr mode, so a direct-mode checkout's ports.env does not change.
dapr_choose_ports() {
  choose_port TODO_DAPR_BACKEND_PORT 3500 4
  choose_port TODO_DAPR_EVENT_SERVICE_PORT 3510 4
}

dapr_service() { echo "${1#dapr-}"; }
dapr_app_id() { echo "todo-$(dapr_service "$1")"; }
dapr_base_port() {
  case $1 in
  dapr-backend) echo "$TODO_DAPR_BACKEND_PORT" ;;
  dapr-event-service) echo "$TODO_DAPR_EVENT_SERVICE_PORT" ;;
  esac
}
dapr_http_port() { dapr_base_port "$1"; }
dapr_grpc_port() { echo $(($(dapr_base_port "$1") + 1)); }
dapr_internal_grpc_port() { echo $(($(dapr_base_port "$1") + 2)); }
dapr_metrics_port() { echo $(($(dapr_base_port "$1") + 3)); }
dapr_pidfile() { echo "$RUN/$1.pid"; }
dapr_url() { echo "http://127.0.0.1:$(dapr_http_port "$1")"; }

dapr_pid() { pidfile_pid "$(dapr_pidfile "$1")"; }

# Outbound: components loaded (the sidecar can publish). Full: the app's port
# answers too (the sidecar delivers to it).
dapr_outbound_healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$(dapr_url "$1")/v1.0/healthz/outbound")" = 204 ]; }
dapr_healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$(dapr_url "$1")/v1.0/healthz")" = 204 ]; }

# ---------------------------------------------------------------- resources
# deploy/dapr as the deployment has it, with the brokers of this stack
# (TODO_KAFKA_PORT may move them off 9092): the Component and the Resiliency
# (there are no Subscription files: the event service subscribes itself
# through GET /dapr/subscribe). The scopes stay: the local services use the
# real app ids and topic names.
dapr_render_resources() { dapr_render_resources_to "$DAPR_RESOURCES"; }

# dapr_render_resources_to DIR [GROUP [unscoped]]: the Component (the stack's
# brokers; GROUP as its consumer group if given) and the Resiliency into DIR.
# `unscoped` drops the component's scopes, for prefixed topic names (chaos runs).
dapr_render_resources_to() {
  local dir=$1 group=${2:-} scoping=${3:-scoped}
  rm -rf "$dir"
  mkdir -p "$dir"
  awk -v brokers="$(kafka_bootstrap)" -v group="$group" -v scoping="$scoping" '
    /^[[:space:]]*- name: brokers[[:space:]]*$/ { print; getline; sub(/value: .*/, "value: \"" brokers "\""); print; next }
    /^[[:space:]]*- name: consumerGroup[[:space:]]*$/ && group != "" { print; getline; sub(/value: .*/, "value: \"" group "\""); print; next }
    scoping == "unscoped" && /^[[:space:]]*- name: (publishingScopes|subscriptionScopes)[[:space:]]*$/ { getline; next }
    scoping == "unscoped" && /^scopes:/ { skip = 1; next }
    skip && /^[[:space:]]+- / { next }
    { skip = 0; print }' "$ROOT/deploy/dapr/pubsub.yaml" >"$dir/pubsub.yaml"
  grep -q "value: \"$(kafka_bootstrap)\"" "$dir/pubsub.yaml" ||
    die "deploy/dapr/pubsub.yaml has no brokers entry to point at $(kafka_bootstrap)"
  cp "$ROOT/deploy/dapr/resiliency.yaml" "$dir/resiliency.yaml"
}

# daprd_launch APP_ID APP_PORT HTTP GRPC INTERNAL_GRPC METRICS RESOURCES LOG:
# one daprd in the background, every port on 127.0.0.1; prints its pid.
daprd_launch() {
  # No placement or scheduler service: daprd only warns (no actors, no jobs).
  launch_detached "$8" "$DAPRD" \
    --mode standalone \
    --app-id "$1" \
    --app-port "$2" \
    --app-protocol http \
    --app-channel-address 127.0.0.1 \
    --dapr-http-port "$3" \
    --dapr-grpc-port "$4" \
    --dapr-internal-grpc-port "$5" \
    --metrics-port "$6" \
    --dapr-listen-addresses 127.0.0.1 \
    --dapr-internal-grpc-listen-address 127.0.0.1 \
    --metrics-listen-address 127.0.0.1 \
    --dapr-public-listen-address 127.0.0.1 \
    --resources-path "$7" \
    --config "$ROOT/deploy/dapr/configuration.yaml" \
    --log-level info
}

# --------------------------------------------------------------- processes
# The environment a service gets in Dapr mode, on top of `./dev env`.
dapr_service_env() {
  local c=dapr-$1
  case $1 in
  backend) echo "export EVENT_TRANSPORT=dapr" ;;
  event-service) echo "export EVENT_SOURCE=dapr" ;;
  esac
  cat <<EOF
export DAPR_HTTP_PORT=$(dapr_http_port "$c")
export DAPR_GRPC_PORT=$(dapr_grpc_port "$c")
export DAPR_PUBSUB_NAME=$DAPR_PUBSUB_NAME
EOF
}

# What `./dev env` adds in Dapr mode.
dapr_env() {
  cat <<EOF
export TODO_TRANSPORT=dapr
export TODO_DAPRD=$DAPRD
export DAPR_PUBSUB_NAME=$DAPR_PUBSUB_NAME
export DAPR_BACKEND_HTTP_PORT=$(dapr_http_port dapr-backend)
export DAPR_BACKEND_GRPC_PORT=$(dapr_grpc_port dapr-backend)
export DAPR_BACKEND_URL=$(dapr_url dapr-backend)
export DAPR_EVENT_SERVICE_HTTP_PORT=$(dapr_http_port dapr-event-service)
export DAPR_EVENT_SERVICE_GRPC_PORT=$(dapr_grpc_port dapr-event-service)
export DAPR_EVENT_SERVICE_URL=$(dapr_url dapr-event-service)
EOF
}

# dapr_start dapr-backend|dapr-event-service: starts the sidecar (its app may
# come later) and waits until it can publish.
dapr_start() {
  local c=$1 s port
  s=$(dapr_service "$c")
  dapr_choose_ports
  if [ -n "$(dapr_pid "$c")" ]; then
    say "$c already up on $(dapr_url "$c") (pid $(dapr_pid "$c"))"
    return
  fi
  for port in $(dapr_http_port "$c") $(dapr_grpc_port "$c") $(dapr_internal_grpc_port "$c") $(dapr_metrics_port "$c"); do
    port_busy "$port" && die "port $port is taken by another program ($(port_owner "$port")); set TODO_DAPR_$(echo "$s" | tr a-z- A-Z_)_PORT to a free base port (4 ports)"
  done
  dapr_install
  dapr_render_resources
  local log=$LOGS/$c.log
  [ -f "$log" ] && mv "$log" "$log.1"
  say "starting $c on $(dapr_url "$c") (app $(dapr_app_id "$c") on port $(service_port "$s"))"
  daprd_launch "$(dapr_app_id "$c")" "$(service_port "$s")" "$(dapr_http_port "$c")" "$(dapr_grpc_port "$c")" \
    "$(dapr_internal_grpc_port "$c")" "$(dapr_metrics_port "$c")" "$DAPR_RESOURCES" "$log" >"$(dapr_pidfile "$c")"
  wait_for 60 "$c" dapr_outbound_healthy "$c" || {
    tail -20 "$log" >&2
    die "$c did not become healthy in 60s (see $log)"
  }
  dapr_assert_loopback "$c"
}

# A sidecar that listens beyond 127.0.0.1 is stopped: nothing of the local
# stack may be reachable from other machines.
dapr_assert_loopback() {
  local c=$1 pid wide
  pid=$(dapr_pid "$1")
  wide=$(ss -Htulnp 2>/dev/null | grep "pid=$pid," | awk '{ print $5 }' | grep -v '^127\.0\.0\.1:' || true)
  if [ -n "$wide" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$(dapr_pidfile "$c")"
    die "$c listened on $(echo "$wide" | tr '\n' ' ')beyond 127.0.0.1: stopped it (a daprd built by an older ops/dapr.sh? rm -r ${DAPR_HOME#"$ROOT"/} and retry)"
  fi
}

dapr_stop() {
  local pid
  pid=$(dapr_pid "$1") || true
  [ -n "$pid" ] && stop_pid "$1" "$pid" 20
  rm -f "$(dapr_pidfile "$1")"
}

dapr_stop_all() {
  local c
  # Ports are only needed for messages; a checkout that never ran Dapr has none.
  for c in "${DAPR_SIDECARS[@]}"; do dapr_stop "$c"; done
}

dapr_status() {
  local c pid
  dapr_choose_ports
  for c in "${DAPR_SIDECARS[@]}"; do
    service_exists "$(dapr_service "$c")" || continue
    pid=$(dapr_pid "$c")
    if [ -n "$pid" ] && dapr_healthy "$c"; then
      status_line "$c" up "$(dapr_http_port "$c")" "pid $pid (app $(dapr_app_id "$c"))"
    elif [ -n "$pid" ] && dapr_outbound_healthy "$c"; then
      status_line "$c" up "$(dapr_http_port "$c")" "pid $pid (app $(dapr_app_id "$c") not reachable)"
    else
      status_line "$c" down "$(dapr_http_port "$c")" "${pid:+pid $pid (unhealthy)}"
    fi
  done
}

# Run on its own: build daprd and print its path.
if [ "$DAPR_STANDALONE" = 1 ]; then
  dapr_install
  echo "$DAPRD"
fi
