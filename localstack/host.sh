#!/usr/bin/env bash
# LocalStack for semichat: `start`, `stop`, `status`, `install`.
#
# With a Docker engine (`docker info` succeeds) it runs localstack/docker-compose.yml, which
# serves SQS and DynamoDB. Without one it runs LocalStack's SQS on the host from a pinned virtual
# environment (.localstack-venv, created on first use); DynamoDB then comes from semichat's
# embedded moto server, because LocalStack's DynamoDB needs a jar it downloads at first use.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="${LOCALSTACK_VENV:-$ROOT/.localstack-venv}"
STATE="${LOCALSTACK_STATE_DIR:-$ROOT/.localstack}"
# Loopback only: LocalStack accepts any credentials, so it must not listen beyond this machine.
HOST=127.0.0.1
PORT="${LOCALSTACK_PORT:-4566}"
START_TIMEOUT_S="${LOCALSTACK_START_TIMEOUT:-120}"
STOP_TIMEOUT_S=20
REQUIREMENTS="$HERE/requirements-host.txt"
COMPOSE=(docker compose -f "$HERE/docker-compose.yml")
PIDFILE="$STATE/localstack.pid"
LOGFILE="$STATE/localstack.log"
HEALTH_URL="http://$HOST:$PORT/_localstack/health"

say() { echo "localstack: $*" >&2; }
die() { say "$*"; exit 1; }

have_docker() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

# The status LocalStack reports for one service ("available", "running", ...), or nothing.
service_state() {
    curl -fsS --max-time 2 "$HEALTH_URL" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["services"].get(sys.argv[1], ""))' "$1" \
            2>/dev/null || true
}

sqs_ready() { case "$(service_state sqs)" in available | running) return 0 ;; esac; return 1; }

# A Python that localstack-core 2026.x accepts: 3.12 or 3.13 (pyenv's 3.13.0 first).
find_python() {
    local candidates=() v
    if command -v pyenv >/dev/null 2>&1; then
        for v in 3.13.0 $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[23]\.[0-9]+$' | sort -rV); do
            candidates+=("env PYENV_VERSION=$v python${v%.*}")
        done
    fi
    candidates+=("python3.13" "python3.12" "python3")
    local c
    for c in "${candidates[@]}"; do
        if $c -c 'import sys; sys.exit(not (3, 12) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

install() {
    local stamp="$VENV/.installed"
    if [[ "${1:-}" == "--if-host-mode" ]] && have_docker; then
        return 0
    fi
    if [[ -f "$stamp" && "$stamp" -nt "$REQUIREMENTS" ]]; then
        return 0
    fi
    local py
    py="$(find_python)" || die "LocalStack host mode needs Python 3.12 or 3.13 and found neither
  (tried pyenv 3.12/3.13, python3.13, python3.12, python3). Install one, e.g. 'pyenv install 3.13',
  or use Docker: with a running engine 'make localstack' runs localstack/docker-compose.yml."
    say "creating $VENV with $py"
    local started=$SECONDS
    rm -rf "$VENV"
    $py -m venv "$VENV"
    # The grep drops pip's warnings about this machine's missing local index directories.
    "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS" 2> >(grep -v "is ignored: it is neither" >&2) ||
        die "installing $REQUIREMENTS into $VENV failed (see above)"
    touch "$stamp"
    say "installed in $((SECONDS - started)) s"
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT_S))
    while ! sqs_ready; do
        if [[ -f "$PIDFILE" ]] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            tail -n 30 "$LOGFILE" >&2 || true
            rm -f "$PIDFILE"
            die "LocalStack exited during start; log: $LOGFILE"
        fi
        ((SECONDS < deadline)) || die "SQS not ready at $HEALTH_URL after ${START_TIMEOUT_S} s; log: $LOGFILE"
        sleep 0.5
    done
}

start() {
    if sqs_ready; then
        say "already running at http://$HOST:$PORT (sqs: $(service_state sqs))"
        return 0
    fi
    if have_docker; then
        say "Docker engine found: ${COMPOSE[*]} up -d"
        "${COMPOSE[@]}" up -d
        wait_ready
        return 0
    fi
    install
    mkdir -p "$STATE"
    local started=$SECONDS
    # setsid: its own session, so a Ctrl-C in the starting shell does not reach it, and `stop`
    # can signal the whole process group it may spawn.
    GATEWAY_LISTEN="$HOST:$PORT" SERVICES=sqs SQS_ENDPOINT_STRATEGY=path \
        LOCALSTACK_HOST="$HOST:$PORT" LOCALSTACK_TELEMETRY_DISABLED=1 DISABLE_EVENTS=1 \
        SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 \
        setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOGFILE" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    wait_ready
    say "SQS ready at http://$HOST:$PORT in $((SECONDS - started)) s (pid $(cat "$PIDFILE"), log $LOGFILE)"
}

stop() {
    if [[ -f "$PIDFILE" ]]; then
        local pid
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
            local deadline=$((SECONDS + STOP_TIMEOUT_S))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
            if kill -0 "$pid" 2>/dev/null; then
                say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S} s; killing it"
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
            fi
        fi
        rm -f "$PIDFILE"
        say "stopped (pid $pid)"
    elif have_docker && [[ -n "$("${COMPOSE[@]}" ps -q 2>/dev/null)" ]]; then
        "${COMPOSE[@]}" down
    else
        say "not running (no $PIDFILE)"
    fi
}

status() {
    if curl -fs --max-time 2 "$HEALTH_URL"; then
        echo
        return 0
    fi
    say "not running at $HEALTH_URL"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    install) install "${2:-}" ;;
    *) die "usage: $0 start|stop|status|install [--if-host-mode]" ;;
esac
