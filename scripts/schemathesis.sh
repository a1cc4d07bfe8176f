#!/usr/bin/env bash
# Fuzz the running HTTP API with schemathesis (from PyPI) against its own OpenAPI document: it must find no
# 500 and no response that violates the schema. Starts a server on a fresh store and stops it afterwards.
# Long polls of the changes feed wait up to 30 s by design, hence the response time limit of 35 s. Event streams
# (`.../events/stream`) never end while the server runs, so they are left out (tests/http.rs covers them).
# usage: scripts/schemathesis.sh [EXTRA SCHEMATHESIS FLAGS...]   (pip install schemathesis)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v schemathesis > /dev/null || { echo "schemathesis: pip install schemathesis" >&2; exit 2; }
port=${ANTHILL_TEST_PORT:-17576}
work=$(mktemp -d)
server=
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --quiet --locked
./target/debug/anthill serve --listen "127.0.0.1:$port" --data "$work/data" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/openapi.json" > /dev/null && break
  sleep 0.1
done
status=0
schemathesis run "http://127.0.0.1:$port/openapi.json" --checks all --max-examples "${MAX_EXAMPLES:-25}" \
  --workers 2 --request-timeout 40 --max-response-time 35 --exclude-path-regex '/events/stream$' "$@" || status=$?
if grep -E "ERROR|WARN" "$work/server.log"; then
  echo "schemathesis.sh: the server logged the errors above" >&2
fi
exit "$status"
