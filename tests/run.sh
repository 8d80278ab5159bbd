#!/usr/bin/env bash
# Runs every test of the project: builds the extension (shipped and test builds) and checks
# it (module sizes, no test hooks shipped), builds the binaries the tests start as real
# processes (host, fake SD.Next) and every test, then runs the native suite (unit,
# integration, browser end-to-end), the OpenAPI fuzzer (tests/openapi-fuzz.sh, about 40 s) and
# the frontend's wasm-bindgen tests in headless Chromium, and closes with one summary line
# over all of them.
#
# The integration binary (the longest, its browser tests its critical path) runs beside the
# rest: its tests mostly wait on timers, sockets and the browser and leave the CPU idle, so
# the other crates' tests, the fuzzer and the wasm tests run meanwhile, one after another.
# The integration tests print as they go; the others print when the integration tests end.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
bash frontend/build.sh
bash tests/check-extension.sh
cargo build --workspace --bins --locked
# Everything compiled first: the runs below then share the CPU, not cargo's build lock.
cargo test --workspace --locked --no-run
cargo test -p frontend --target wasm32-unknown-unknown --locked --no-run

# (The native cargo runs all select the whole workspace: the same features, the same builds.)
(
  status=0
  cargo test --workspace --locked --lib --bins || status=1
  cargo test --workspace --locked --doc || status=1
  bash tests/openapi-fuzz.sh || status=1
  CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" \
    cargo test -p frontend --target wasm32-unknown-unknown --locked || status=1
  exit $status
) > "$logs/rest" 2>&1 &
rest=$!

status=0
cargo test --workspace --locked --test integration 2>&1 | tee "$logs/integration" || status=1
wait "$rest" || status=1
cat "$logs/rest"
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' \
  "$logs/integration" "$logs/rest"
exit "$status"
