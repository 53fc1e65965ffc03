# shellcheck shell=bash disable=SC2034  # the URL variables are used by the scripts that source this
# Shell helpers shared by sandbox/up, sandbox/down and sandbox/hapi/{build,run}. Sourced, not run.
# Everything here works from any current directory: paths are derived from this file's location.

SANDBOX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SANDBOX_DIR/.." && pwd)"
VAR_DIR="$SANDBOX_DIR/var"
LOG_DIR="$VAR_DIR/log"
RUN_DIR="$VAR_DIR/run"

HAPI_PORT="${HAPI_PORT:-8080}"
LAUNCHER_PORT="${LAUNCHER_PORT:-8081}"
HAPI_BASE="http://127.0.0.1:$HAPI_PORT/fhir"
LAUNCHER_URL="http://127.0.0.1:$LAUNCHER_PORT"
# The consent-gap app (sandbox/app); sandbox/up registers it with the launcher at this port.
APP_PORT="${APP_PORT:-8082}"
LAUNCHER_DISCOVERY="$LAUNCHER_URL/fhir/.well-known/smart-configuration"

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }

# port_in_use PORT -> 0 when something listens on TCP PORT (any address).
port_in_use() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# http_ok URL -> 0 when URL answers 2xx within a few seconds.
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1" 2>/dev/null; }

# pid_of NAME -> the pid recorded for service NAME if that process is still alive and is the one
# we started (its command line still contains the marker saved next to the pid), else nothing.
pid_of() {
  local name="$1" pidfile="$RUN_DIR/$1.pid" pid marker
  [ -f "$pidfile" ] || return 1
  pid="$(head -n1 "$pidfile" 2>/dev/null)"
  marker="$(sed -n 2p "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -n "$marker" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"; then
    return 1 # the pid was reused by something else
  fi
  printf '%s\n' "$pid"
}

# take_lock : one sandbox/up or sandbox/down at a time (fd 9 on sandbox/var/run/lock), so two
# callers never start two servers or overwrite each other's pid files. Waits up to 10 minutes.
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/lock"
  if ! flock -n 9; then
    say "another sandbox/up or sandbox/down is running; waiting for it"
    flock -w 600 9 || { warn "gave up waiting for the other sandbox/up or sandbox/down"; return 1; }
  fi
}

# start_service NAME MARKER LOGFILE CMD... : run CMD in the background in its own session (so its
# pid is also its process-group id and down can stop its children too), record pid and marker.
start_service() {
  local name="$1" marker="$2" log="$3"
  shift 3
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  : >"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
  local pid=$!
  printf '%s\n%s\n' "$pid" "$marker" >"$RUN_DIR/$name.pid"
}

# stop_service NAME [TIMEOUT] : TERM the process group recorded for NAME, KILL it after TIMEOUT
# seconds (default 30), remove the pid file. Returns 0 if nothing was running.
stop_service() {
  local name="$1" timeout="${2:-30}" pid i
  if ! pid="$(pid_of "$name")"; then
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < timeout * 2; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name did not stop within ${timeout}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    sleep 1
  fi
  # Children that outlived the leader, in the same group: end them too.
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$RUN_DIR/$name.pid"
}

# wait_port_free PORT TIMEOUT -> 0 once nothing listens on PORT.
wait_port_free() {
  local port="$1" timeout="$2" i
  for ((i = 0; i < timeout * 2; i++)); do
    port_in_use "$port" || return 0
    sleep 0.5
  done
  return 1
}

# wait_healthy NAME URL TIMEOUT : poll URL every 2 s printing a dot, fail early if NAME's process
# died. Returns 0 when healthy.
wait_healthy() {
  local name="$1" url="$2" timeout="$3" start now
  start=$(date +%s)
  printf 'waiting for %s at %s ' "$name" "$url"
  while true; do
    if http_ok "$url"; then
      now=$(date +%s)
      printf ' up (%ss)\n' "$((now - start))"
      return 0
    fi
    if ! pid_of "$name" >/dev/null; then
      printf ' its process exited\n'
      return 1
    fi
    now=$(date +%s)
    if ((now - start >= timeout)); then
      printf ' no answer after %ss\n' "$timeout"
      return 1
    fi
    printf '.'
    sleep 2
  done
}

# show_log_tail FILE [LINES] : the end of a log, for a failure message.
show_log_tail() {
  local file="$1" lines="${2:-40}"
  [ -f "$file" ] || return 0
  warn "---- last $lines lines of ${file#"$REPO_ROOT"/} ----"
  tail -n "$lines" "$file" | cut -c1-400 >&2
  warn "----"
}

# rss_mib PID -> resident memory of PID in MiB (ps rss is in KiB).
rss_mib() { ps -o rss= -p "$1" 2>/dev/null | awk '{printf "%d\n", $1 / 1024}'; }
