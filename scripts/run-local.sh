#!/usr/bin/env bash
# Quick start: runs Cordon end to end on this machine — a local Kafka-protocol broker (unless
# CORDON_KAFKA__BROKERS names one), PostgreSQL, the pipeline in one process — and sends the sample
# feed from examples/. Ctrl-C stops Cordon first (it finishes its batches and commits), then the
# broker.
#
#   CORDON_LOCAL_STATE        broker store, keys, admin password (default $CORDON_CACHE/local)
#   CORDON_LOCAL_DIR          Cordon's log and index (default .cordon)
#   CORDON_LOCAL_BROKER_PORT  the local broker's port (default 9092)
#   CORDON_SKIP_SETUP=1       skip scripts/setup.sh (the tests run this script after it)
#   CORDON_<SECTION>__<KEY>   any configuration option, as always
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${CORDON_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
source scripts/env.sh

state="${CORDON_LOCAL_STATE:-$CORDON_CACHE/local}"
work="${CORDON_LOCAL_DIR:-.cordon}"
mkdir -p "$state" "$work"
export CORDON_INDEX__DIR="${CORDON_INDEX__DIR:-$work/index}"
log="$work/cordon.log"
listen="${CORDON_API__LISTEN:-127.0.0.1:8080}"
broker_pid="" cordon_pid=""
# Stops one process started below and waits for it.
stop() { [ -z "$1" ] || { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }; }
# Cordon first, while the broker still takes its last offsets and verdicts; then the broker.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -z "$cordon_pid" ] || echo "[run] stopping cordon"
  stop "$cordon_pid"
  [ -z "$broker_pid" ] || echo "[run] stopping the broker"
  stop "$broker_pid"
  exit "$status"
}
trap cleanup EXIT INT TERM

if [ -z "${CORDON_KAFKA__BROKERS:-}" ]; then
  port="${CORDON_LOCAL_BROKER_PORT:-9092}"
  export CORDON_KAFKA__BROKERS="127.0.0.1:$port"
  # The local broker's settings: one copy per partition, a short fetch wait (deploy/local.toml).
  export CORDON_CONFIG="${CORDON_CONFIG:-deploy/local.toml}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "[run] a broker already listens on 127.0.0.1:$port; using it"
  else
    echo "[run] starting the tansu broker on 127.0.0.1:$port (store: $state/tansu.db)"
    # In a session of its own (as Cordon below), so that Ctrl-C reaches only this script, which
    # stops the two in order. tansu resolves the sqlite:// path relative to its working directory.
    (cd "$state" && exec setsid tansu broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine sqlite://tansu.db >tansu.log 2>&1) &
    broker_pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  fi
fi

export CORDON_DATABASE__URL="${CORDON_DATABASE__URL:-postgres://postgres@127.0.0.1:5432/cordon}"
db="${CORDON_DATABASE__URL##*/}"
psql "${CORDON_DATABASE__URL%/*}/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
  || psql "${CORDON_DATABASE__URL%/*}/postgres" -qc "CREATE DATABASE \"$db\""

# The key a local "platform backend" signs reporter identities with (see [reports] in
# deploy/cordon.toml).
[ -f "$state/report-key" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$state/report-key"
export CORDON_REPORTS__PLATFORM_KEYS__LOCAL="$(cat "$state/report-key")"

cordon="$CARGO_TARGET_DIR/release/cordon"
echo "[run] starting cordon (log: $log)"
CORDON_CONTEXT__ENABLED=true setsid "$cordon" run --role all >>"$log" 2>&1 &
cordon_pid=$!
for _ in $(seq 150); do curl -fs "http://$listen/readyz" >/dev/null && break; sleep 0.2; done
curl -fs "http://$listen/readyz" >/dev/null || { tail -20 "$log"; echo "[run] cordon did not become ready"; exit 1; }

# A local admin for the console, with a random password kept in the state directory.
if [ ! -f "$state/admin-password" ]; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$state/admin-password"
  "$cordon" user add admin --role admin <"$state/admin-password" >/dev/null 2>>"$log" \
    || echo "[run] the account admin exists already; its password is not the one in $state/admin-password"
fi

echo "[run] sending the sample feed (one malformed line goes to the dead-letter topic)"
"$cordon" produce --no-validate examples/sample-feed.jsonl 2>>"$log"
sleep 2
# A user report, so the console's queue has a case to show, signed as the platform's backend
# signs its users' reports (the local key is made above).
report=$(python3 scripts/sign-report.py "$state/report-key" local tg:channel/101/post/1 demo-reporter counterfeit)
curl -fs -X POST "http://$listen/v1/reports" -H 'content-type: application/json' -d "$report" \
  >/dev/null || echo "[run] filing the demo report failed (see $log)"
cat <<MSG

Cordon is running.
  Moderator console: http://$listen/console  (user admin, password: $(cat "$state/admin-password"))
  Public search:     curl 'http://$listen/v1/search?q=delivery'
  Report an item:    curl -X POST http://$listen/v1/reports -H 'content-type: application/json' \\
                       -d "\$(python3 scripts/sign-report.py $state/report-key local tg:channel/101/post/1 user-1 drugs)"
  Metrics:           curl http://${CORDON_OPS__LISTEN:-127.0.0.1:9464}/metrics
  Classify offline:  echo '{"id":1,"text":"mdma pills 10 for 100\$"}' | $cordon classify
Press Ctrl-C to stop.
MSG
wait "$cordon_pid"
