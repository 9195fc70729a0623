#!/usr/bin/env bash
# N survey replicas and nginx in front of them, on one machine, for a try-out.
#
#   export TURING_DB_URL=postgresql://user:password@127.0.0.1/turing   # required for N > 1
#   bash scripts/serve_replicas.sh 2                 # the whole app (python app.py) twice
#   bash scripts/serve_replicas.sh 4 --port 8080 --turing-only --dir /tmp/replicas
#
# Options: --port P (the proxy, default 8080, on 127.0.0.1 unless --host), --host H,
# --first-port P (replica i listens on P+i-1, default 7861), --dir D (logs, pid files, nginx's
# rendered config; default /tmp/turing_replicas), --turing-only (serve `python -m turing_test
# serve` instead of the whole app), --no-demo (no demo survey on an empty database).
# TURING_TRUSTED_PROXY: the address whose X-Forwarded-For nginx believes (default 127.0.0.1).
#
# It checks the database (SQLite is refused for N > 1), creates its tables and keys once, starts
# the replicas (each with its own stimulus and Gradio folders under D/replica-i), waits until
# each answers, renders deploy/nginx-turing.conf into D/nginx.conf and runs nginx in the
# foreground. Ctrl-C (or SIGTERM) stops nginx and the replicas. D/replica-i.pid holds each
# replica's process id; D/ready appears once the proxy is up. A replica that dies is not
# restarted: nginx sends its participants to the others.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "serve_replicas: $*" >&2; exit 2; }

[ $# -ge 1 ] || usage
N="$1"; shift
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "the number of replicas must be a whole number of at least 1, not '$N'"
PORT=8080; HOST=127.0.0.1; FIRST=7861; DIR=/tmp/turing_replicas; TURING_ONLY=0; DEMO=1
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --host) HOST="${2:?--host needs a value}"; shift 2 ;;
    --first-port) FIRST="${2:?--first-port needs a value}"; shift 2 ;;
    --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
    --turing-only) TURING_ONLY=1; shift ;;
    --no-demo) DEMO=0; shift ;;
    -h|--help) usage ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for v in "$PORT" "$FIRST"; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] && [ "$v" -le 65535 ] || die "'$v' is not a port number"
done
[ $((FIRST + N - 1)) -le 65535 ] || die "replica ports $FIRST.. do not fit below 65536"

NGINX="$(command -v nginx || true)"
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
[ -n "$NGINX" ] || die "nginx is not installed: apt-get install nginx-light (Debian's nginx)"
PY="${PYTHON:-python3}"

# the database: refused before anything starts if N replicas cannot share it
demo_flag=(); [ "$DEMO" = 1 ] || demo_flag=(--no-demo)
note="$("$PY" -m turing_test.replicas prepare "$N" "${demo_flag[@]}")" || exit 2
echo "serve_replicas: database ready; $note" >&2

mkdir -p "$DIR/tmp"
chmod 0777 "$DIR/tmp"  # nginx's workers may run as another user
rm -f "$DIR/ready"

PIDS=()
cleanup() {
  trap - EXIT INT TERM
  [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -f "$DIR/ready"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

SERVERS=""
for i in $(seq 1 "$N"); do
  port=$((FIRST + i - 1))
  rd="$DIR/replica-$i"
  mkdir -p "$rd/gradio"
  if [ "$TURING_ONLY" = 1 ]; then
    cmd=("$PY" -m turing_test serve --host 127.0.0.1 --port "$port" --no-demo)
  else
    cmd=("$PY" app.py)
  fi
  # the demo survey was made above, once: no replica makes it again
  GRADIO_SERVER_NAME=127.0.0.1 GRADIO_SERVER_PORT="$port" TURING_DEMO=0 \
    TURING_STIMULUS_CACHE="$rd/stimuli" GRADIO_TEMP_DIR="$rd/gradio" \
    "${cmd[@]}" >"$rd/server.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$DIR/replica-$i.pid"
  SERVERS+="        server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"$'\n'
done

for i in $(seq 1 "$N"); do  # each replica answers before the proxy opens
  port=$((FIRST + i - 1))
  "$PY" - "$port" "${PIDS[$((i - 1))]}" "$DIR/replica-$i/server.log" <<'EOF' || exit 1
import os, sys, time, urllib.request
port, pid, logf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t0 = time.time()
while time.time() - t0 < 300:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"serve_replicas: the replica on port {port} exited; see {logf}")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2)
        print(f"serve_replicas: replica on 127.0.0.1:{port} up after {time.time() - t0:.0f} s",
              file=sys.stderr)
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(f"serve_replicas: the replica on port {port} did not answer within 300 s; see {logf}")
EOF
done

MAX_MB="${COLORIZER_MAX_UPLOAD_MB:-100}"
[[ "$MAX_MB" =~ ^[0-9]+$ ]] || MAX_MB=100
TRUSTED="${TURING_TRUSTED_PROXY:-127.0.0.1}"
sed -e "s#{{RUN_DIR}}#$DIR#g" -e "s#{{TRUSTED}}#$TRUSTED#" -e "s#{{LISTEN}}#$HOST:$PORT#" -e "s#{{MAX_BODY}}#$((MAX_MB + 5))m#" \
    "$REPO/deploy/nginx-turing.conf" | awk -v servers="$SERVERS" '
      /\{\{SERVERS\}\}/ { printf "%s", servers; next } { print }' >"$DIR/nginx.conf"
"$NGINX" -t -q -p "$DIR" -c "$DIR/nginx.conf" || die "nginx refused $DIR/nginx.conf (see above)"
"$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -g "daemon off;" &
NGINX_PID=$!
for _ in $(seq 1 50); do
  [ -f "$DIR/nginx.pid" ] && break
  kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited; see $DIR/nginx-error.log"
  sleep 0.1
done
touch "$DIR/ready"
echo "serve_replicas: http://$HOST:$PORT/ -> $N replicas on 127.0.0.1:$FIRST..$((FIRST + N - 1)) (logs in $DIR)" >&2
wait "$NGINX_PID"
