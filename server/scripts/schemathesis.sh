#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis (PyPI):
# no server errors, responses conform to the schema. Usage: server/scripts/schemathesis.sh
# [path to keyway-server binary]. Installs schemathesis with pip when it is missing.
set -euo pipefail
BIN=${1:-target/debug/keyway-server}
command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis
DIR=$(mktemp -d)
PORT=${KEYWAY_ST_PORT:-18181}
"$BIN" --data-dir "$DIR" serve --demo --listen "127.0.0.1:$PORT" >"$DIR/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/logins" -H 'content-type: application/json' \
  -d '{"email":"owner@acme.test","password":"owner-demo-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# Logging out or rotating keys mid-run would only make later cases unauthorized.
schemathesis run "http://127.0.0.1:$PORT/api/v1/openapi.json" --url "http://127.0.0.1:$PORT/api/v1" \
  -H "Authorization: Bearer $TOKEN" --checks all --max-examples "${KEYWAY_ST_EXAMPLES:-30}" \
  --exclude-path /logins/current --exclude-path '/logins/{id}' --exclude-path '/orgs/{org}/keys/rotate'
