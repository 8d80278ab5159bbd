#!/usr/bin/env bash
# Runs every test of the project: builds the extension and the binaries the tests start as
# real processes (host, fake SD.Next), then the native suite (unit, integration, browser
# end-to-end) and the frontend's wasm-bindgen tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash frontend/build.sh
cargo build --workspace --bins --locked
cargo test --workspace --locked
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" \
  cargo test -p frontend --target wasm32-unknown-unknown --locked
