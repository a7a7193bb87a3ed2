#!/bin/sh
# Generates the Python bindings from the built core library and runs the Python test.
# Usage (from the repository root): shared/tests/python/run.sh
# Needs: python3. Uses CARGO_TARGET_DIR (default: target).
set -eu
cd "$(dirname "$0")/../../.."
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build -p keyway-shared -p uniffi-bindgen
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$TARGET/debug/uniffi-bindgen" generate --library "$TARGET/debug/libkeyway_shared.so" \
    --language python --out-dir "$OUT" --no-format
cp "$TARGET/debug/libkeyway_shared.so" "$OUT/"
KEYWAY_PY_BINDINGS="$OUT" python3 shared/tests/python/test_bindings.py
