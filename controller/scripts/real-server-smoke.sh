#!/usr/bin/env bash
# End-to-end smoke run of the controller against the real keyway-server and the mobile core's
# `keyway` CLI over the simulated radio: provision, cloud unlock (with an idempotent retry),
# BLE unlock, server outage with BLE from cache, controller restart, upload after reconnect.
# Usage: controller/scripts/real-server-smoke.sh   (uses $CARGO_TARGET_DIR or ./target)
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${CARGO_TARGET_DIR:-target}
cargo build -q -p keyway-server -p keyway-controller -p keyway-cli
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
server() {
  "$T/debug/keyway-server" --data-dir "$work/server" serve --listen "127.0.0.1:$port" "$@" \
    >"$work/server.out" 2>>"$work/server.err" &
  pids+=($!)
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "server did not start"; exit 1
}
# The demo seed prints one JSON object first.
field() { python3 -c "import json; print(json.JSONDecoder().raw_decode(open('$work/server.out').read())[0]$1)"; }
controller() {
  "$T/debug/keyway-controller" run --data-dir "$work/ctl" --radio "sim:127.0.0.1:$radio_port" \
    --position "$front=0,0" >"$work/ctl.out" 2>>"$work/ctl.err" &
  pids+=($!)
  sleep 2
}
phone() { "$T/debug/keyway" --data-dir "$work/phone" --radio "sim:127.0.0.1:$radio_port" "$@"; }
status() { "$T/debug/keyway-controller" status --data-dir "$work/ctl"; }

server --demo
front=$(field '["locks"]["Front door"]')
token=$(field '["provisioning_token"]')
org=$(field '["org_id"]')
"$T/debug/keyway-controller" provision --server "http://127.0.0.1:$port" --token "$token" --data-dir "$work/ctl"
radio_port=$((port + 1))
controller
"$T/debug/keyway" --data-dir "$work/phone" --server "http://127.0.0.1:$port" login \
  --email bob@acme.test --password bob-demo-password

echo "--- cloud unlock, retried with the same Idempotency-Key: opens once"
api="http://127.0.0.1:$port/api/v1"
session=$(curl -sf -X POST "$api/logins" -H 'content-type: application/json' \
  -d '{"email":"alice@acme.test","password":"alice-demo-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for _ in 1 2; do
  curl -sf -X POST "$api/locks/$front/unlock" -H "authorization: Bearer $session" \
    -H 'content-type: application/json' -H 'Idempotency-Key: smoke-1' -d '{}' | tee -a "$work/cloud.txt"
  echo
done
grep -q '"duplicate":true' "$work/cloud.txt"
echo "--- BLE unlock"
phone unlock "Front door" | tee "$work/ble.txt"
grep -q "Bluetooth" "$work/ble.txt"

echo "--- server down: BLE from the cache, then a controller restart mid-outage"
kill "${pids[0]}"; sleep 1
phone unlock "Front door"
kill "${pids[1]}"; sleep 1
controller
phone unlock "Front door"
sleep 1.2; status | grep events

echo "--- server back: events upload once"
server
for _ in $(seq 60); do status | grep -q "0 pending" && break; sleep 1; done
status
status | grep -q "0 pending" || { echo "events not uploaded"; exit 1; }
echo "smoke run passed"
