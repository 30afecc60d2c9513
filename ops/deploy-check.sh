#!/usr/bin/env bash
# The Kubernetes deployment's offline check (./dev deploy-check; a step of ./dev test):
#   1. helm, built once from its Go module and cached by version in .local/helm/;
#   2. a Python venv with pinned packages (deploy/tests/requirements.txt);
#   3. helm lint and helm template of deploy/helm/todo for each values set;
#   4. pytest deploy/tests: every rendered object validated strictly against
#      Kubernetes' schemas and the operators' CRDs, and the policy tests.
# Needs the services' binaries for their --help (built here when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${TODO_LOCAL_DIR:-$ROOT/.local}
HELM_VERSION=v3.22.0
HELM=$LOCAL/helm/$HELM_VERSION/bin/helm
VENV=$LOCAL/deploy-venv
KUBE_VERSION=1.33.0
CHART=$ROOT/deploy/helm/todo
OUT=$LOCAL/deploy-check
started=$SECONDS

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$LOCAL/helm"
exec 8>"$LOCAL/helm/.lock"
flock 8
if [ ! -x "$HELM" ]; then
  command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || die "Go is needed to build helm (Debian: apt-get install golang-go)"
  say "building helm $HELM_VERSION from its Go module into ${HELM#"$ROOT"/} (about 3 minutes)"
  t=$SECONDS
  tmp=$LOCAL/helm/$HELM_VERSION.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOFLAGS=-mod=mod GOBIN=$tmp go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$(dirname "$HELM")" && mv "$tmp/helm" "$HELM" && rm -rf "$tmp"
  say "helm built in $((SECONDS - t))s"
fi
flock -u 8

exec 9>"$VENV.lock"
flock 9
req=$ROOT/deploy/tests/requirements.txt
if ! cmp -s "$req" "$VENV/requirements.txt" 2>/dev/null; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "apt-get install python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
  fi
  say "python3 -m venv ${VENV#"$ROOT"/} with deploy/tests/requirements.txt"
  t=$SECONDS
  python3 -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$VENV/requirements.txt"
  say "venv ready in $((SECONDS - t))s"
fi
flock -u 9

# The binaries whose --help the chart's settings are compared with: the debug
# builds that `cargo test --workspace` leaves. The same command with --no-run
# builds the same units, so after the test step it only checks they are fresh.
# TODO_BIN_DIR names a folder of binaries built otherwise (then nothing is built).
if [ -n "${TODO_BIN_DIR:-}" ]; then
  BIN_DIR=$TODO_BIN_DIR
else
  say "cargo test --workspace --no-run (the services' binaries, for their --help)"
  (cd "$ROOT" && cargo test --workspace --no-run --quiet) >"$LOCAL/deploy-check.build.log" 2>&1 ||
    { cat "$LOCAL/deploy-check.build.log" >&2; die "the workspace does not build"; }
  BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
fi
for b in todo-backend todo-event-service; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing (cargo build -p $b)"
done

# Values sets: name and the files layered for it. "external" and "dapr" render the
# other branches (existing Kafka, database and Redis; the Dapr transport).
declare -A SETS=(
  [local]="values-local.yaml"
  [doks]="values-doks.yaml"
  [scale]="values-doks.yaml values-scale.yaml"
  [external]="values-doks.yaml values-external-example.yaml"
  [dapr]="values-doks.yaml values-dapr.yaml"
)
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$CHART"
for name in local doks scale external dapr; do
  args=()
  for f in ${SETS[$name]}; do args+=(-f "$f"); done
  say "helm lint + template deploy/helm/todo (${SETS[$name]})"
  "$HELM" lint --strict --quiet --kube-version "$KUBE_VERSION" "${args[@]}" . 2> >(grep -v 'found symbolic link' >&2) >"$OUT/$name.lint" ||
    { cat "$OUT/$name.lint" >&2; die "helm lint failed for $name"; }
  "$HELM" template todo . --namespace todo --kube-version "$KUBE_VERSION" "${args[@]}" \
    >"$OUT/$name.yaml" 2> >(grep -v 'found symbolic link' >&2)
done

# The migration wrapper's tests run the binaries against the local PostgreSQL and
# Kafka (./dev test has them up; standalone, ./dev up --infra).
cd "$ROOT"
[ -n "${DATABASE_URL:-}" ] || eval "$("$ROOT/dev" env 2>/dev/null)"
select=()
kafka_port=${KAFKA_BOOTSTRAP_SERVERS##*:}
kafka_port=${kafka_port%%,*}
if ! pg_isready -q -d "$DATABASE_URL" 2>/dev/null || ! (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null; then
  say "PostgreSQL or Kafka is not running: the migration wrapper tests are not run (./dev up --infra runs them)"
  select=(-m "not stack")
fi
say "pytest deploy/tests (schemas: Kubernetes $KUBE_VERSION, CRDs in deploy/tests/crds; policy; migrations)"
TODO_RENDERED=$OUT TODO_BIN_DIR=$BIN_DIR TODO_HELM=$HELM TODO_KUBE_VERSION=$KUBE_VERSION \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${select[@]}" deploy/tests "$@"
say "deploy check passed in $((SECONDS - started))s"
