# shellcheck shell=bash
# Shared helpers for ./dev and the ops/*.sh component scripts.
# Every step prints one line: "==> what is happening".

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LOCAL=${TODO_LOCAL_DIR:-$ROOT/.local}
LOGS=$LOCAL/logs
RUN=$LOCAL/run
PORTS_FILE=$LOCAL/ports.env
mkdir -p "$LOGS" "$RUN"

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '!!  %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- packages
_apt_updated=0
apt_install() {
  if [ "$_apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$LOGS/apt.log" 2>&1 || die "apt-get update failed (see $LOGS/apt.log)"
    _apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1 ||
    die "apt-get install $* failed (see $LOGS/apt.log)"
}

# ensure_pkg PACKAGE CHECK-COMMAND...: installs PACKAGE when the check fails.
ensure_pkg() {
  local pkg=$1
  shift
  "$@" >/dev/null 2>&1 || apt_install "$pkg"
}

# ------------------------------------------------------------------- ports
# A port is chosen once per checkout and kept in .local/ports.env, so that
# `./dev env` and every later `./dev up` agree. An explicit environment
# variable (e.g. TODO_PG_PORT=6543) always wins. When a default port is taken
# by a program that is not ours we say so and take the next free one: we never
# connect to a stranger's server.
[ -f "$PORTS_FILE" ] && . "$PORTS_FILE"

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

port_owner() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 pid \2/p' | head -1
}

# choose_port VAR DEFAULT [SPAN]: sets VAR (persisted) to DEFAULT or the next
# base whose SPAN consecutive ports are all free.
choose_port() {
  local var=$1 default=$2 span=${3:-1}
  local current=${!var:-}
  if [ -n "$current" ]; then
    printf -v "$var" '%s' "$current"
    return
  fi
  local p=$default i free taken
  # Ports already given to another component of this checkout count as taken.
  taken=" $( (cut -d= -f2 "$PORTS_FILE" 2>/dev/null || true) | tr '\n' ' ') "
  while :; do
    free=1
    for ((i = 0; i < span; i++)); do
      if port_busy $((p + i)) || [[ $taken == *" $((p + i)) "* ]]; then free=0 && break; fi
    done
    [ "$free" = 1 ] && break
    local owner
    owner=$(port_owner $((p + i)))
    warn "port $((p + i)) is taken (${owner:-by another component of this stack}); $var moves to $((p + span))"
    p=$((p + span))
  done
  printf -v "$var" '%s' "$p"
  grep -v "^$var=" "$PORTS_FILE" 2>/dev/null >"$PORTS_FILE.tmp" || true
  echo "$var=$p" >>"$PORTS_FILE.tmp"
  mv "$PORTS_FILE.tmp" "$PORTS_FILE"
}

choose_all_ports() {
  choose_port TODO_PG_PORT 5432
  choose_port TODO_REDIS_PORT 6379
  # Kafka node N listens on base+2(N-1) (broker) and base+2(N-1)+1 (controller).
  choose_port TODO_KAFKA_PORT 9092 6
  choose_port TODO_BACKEND_PORT 8080
  choose_port TODO_EVENT_SERVICE_PORT 8081
}

# -------------------------------------------------------------- processes
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# pidfile_pid FILE: the pid in FILE, if that process is running and is the one
# the file was written for. A process that died without removing its pidfile
# (SIGKILL, a crash) leaves its pid free for reuse: a process that holds it now
# started after the file was written, and is someone else's (another checkout's
# Kafka, a shell). Stopping it would kill a stranger. A minute of slack covers
# start times in whole seconds and a wall clock that stepped forward. A zombie
# (killed, not yet reaped by init: about 2 s here) counts as gone, so `./dev
# kill` then `./dev start` works at once.
pidfile_pid() {
  [ -f "$1" ] || return 0
  local pid stat up written
  pid=$(head -1 "$1" 2>/dev/null)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
  written=$(stat -c %Y "$1" 2>/dev/null) || return 0
  read -r up _ </proc/uptime
  # Field 22 of /proc/PID/stat, the start in clock ticks after boot, is the
  # 20th after the command name (which may hold spaces) and its ')'.
  set -- ${stat##*) }
  [ "$1" != Z ] || return 0
  [ $(($(date +%s) - ${up%.*} + ${20} / $(getconf CLK_TCK))) -le $((written + 60)) ] && echo "$pid"
  return 0
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# launch_detached LOG COMMAND...: starts COMMAND in a session of its own (it
# outlives this shell, and a signal to this shell's group does not reach it),
# with this shell's environment, its output appended to LOG; prints its pid.
# Every process of the stack and of the chaos suite starts here.
launch_detached() {
  local log=$1
  shift
  nohup setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $!
}

# wait_healthy NAME URL LOG: waits up to 60 s for URL to answer 2xx; if it
# does not, shows the tail of LOG and fails.
wait_healthy() {
  local name=$1 url=$2 log=$3
  wait_for 60 "$name" curl -fsS -o /dev/null -m 2 "$url" && return 0
  tail -20 "$log" >&2
  return 1
}

# stop_pid NAME PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
  local name=$1 pid=$2 secs=${3:-30}
  pid_alive "$pid" || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$secs" "$name to stop" bash -c "! kill -0 $pid"; then
    warn "$name did not stop in ${secs}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 5 "$name to die" bash -c "! kill -0 $pid" || true
  fi
}

status_line() { printf '%-14s %-5s %-7s %s\n' "$1" "$2" "$3" "$4"; }
