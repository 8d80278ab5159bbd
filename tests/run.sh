#!/usr/bin/env bash
# Runs every test of the project: builds the extension (shipped and test builds) and checks
# it (module sizes, no test hooks shipped), builds the binaries the tests start as real
# processes (host, fake SD.Next), then the native suite (unit, integration, browser
# end-to-end), the OpenAPI fuzzer (tests/openapi-fuzz.sh, about 40 s) and the frontend's
# wasm-bindgen tests in headless Chromium, and closes with one summary line over all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash frontend/build.sh
bash tests/check-extension.sh
cargo build --workspace --bins --locked
cargo test --workspace --locked 2>&1 | tee -a "$log"
bash tests/openapi-fuzz.sh 2>&1 | tee -a "$log"
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" \
  cargo test -p frontend --target wasm32-unknown-unknown --locked 2>&1 | tee -a "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
