#!/usr/bin/env bash
# Browser test of the catalog page in headless Chromium: serve a fresh store, load the page, send a command
# through the API, and check that the page's own JavaScript shows the new event in its live changes feed.
# Keeps a screenshot (path printed; base64 in the log with --base64).
# usage: scripts/browser-test.sh [--base64]   (needs Debian's chromium: apt-get install chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "browser-test: chromium is not installed (apt-get install chromium)" >&2
  exit 2
fi
port=${ANTHILL_TEST_PORT:-17574}
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
curl -fs -X POST -H 'Content-Type: application/json' -d '{"owner": "browser", "overdraft-limit": 0}' \
  "http://127.0.0.1:$port/ledger/account/web-1/open" > /dev/null

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile" --virtual-time-budget=3000)
"$chromium" "${flags[@]}" --dump-dom "http://127.0.0.1:$port/" > "$work/before.html" 2>/dev/null
grep -q 'id="send"' "$work/before.html" || { echo "browser-test: the page has no command form" >&2; exit 1; }
# The command goes through the API, as the page's form sends it; the page must then show it in its feed.
curl -fs -X POST -H 'Content-Type: application/json' -H 'Idempotency-Key: browser-test-1' -d '{"amount": "12.34"}' \
  "http://127.0.0.1:$port/ledger/account/web-1/deposit" > /dev/null
"$chromium" "${flags[@]}" --dump-dom "http://127.0.0.1:$port/" > "$work/after.html" 2>/dev/null
if ! grep -qF 'account/web-1 v2 {"amount":"12.34","type":"deposited"}' "$work/after.html"; then
  echo "browser-test: the deposit did not appear in the page's live feed; the feed shows:" >&2
  sed -n '/id="tail"/,/<\/pre>/p' "$work/after.html" >&2
  exit 1
fi
shot=${ANTHILL_SCREENSHOT:-target/browser-test.png}
mkdir -p "$(dirname "$shot")"
"$chromium" "${flags[@]}" --window-size=1200,1400 --screenshot="$shot" "http://127.0.0.1:$port/" 2>/dev/null
echo "browser-test: the page shows the new event; screenshot: $shot ($(wc -c < "$shot") bytes)"
if [ "${1:-}" = "--base64" ]; then
  echo "--- screenshot (PNG, base64)"
  base64 -w 0 "$shot"; echo
fi
