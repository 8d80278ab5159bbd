#!/usr/bin/env bash
# Fuzzes the host's HTTP API from its own OpenAPI document: starts the real `fake-sdnext` and
# `agent-scheduler serve` (debug builds, port 0, a temporary data folder), then runs
# schemathesis (installed by .ci/setup in a venv) against /openapi.json for about 40 s with a
# fixed seed, from a temporary directory, the endless /events stream excluded. Fails on any
# server error and on any answer the document does not describe (status, content type,
# body schema).
#   bash tests/openapi-fuzz.sh            (after: cargo build --workspace --bins)
#   FUZZ_SECONDS=120 FUZZ_SEED=7 bash tests/openapi-fuzz.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/debug
venv=${SCHEMATHESIS_VENV:-$root/target/venv-schemathesis}
seconds=${FUZZ_SECONDS:-40}
seed=${FUZZ_SEED:-42}

for f in "$bin/agent-scheduler" "$bin/fake-sdnext" "$venv/bin/schemathesis"; do
  if [ ! -x "$f" ]; then
    echo "openapi-fuzz: $f is missing (run: bash .ci/setup && cargo build --workspace --bins)" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (10 s at most) for a server's first stdout line `listening on http://ADDR`.
address() {
  local out=$1 i
  for i in $(seq 100); do
    if [ -s "$out" ]; then
      sed -n '1s/^listening on //p' "$out"
      return 0
    fi
    sleep 0.1
  done
  echo "openapi-fuzz: no address in $out" >&2
  return 1
}

# The fake refuses work beyond 512 px, 20 steps and 4 images (422, as SD.Next's validation
# answers), so fuzzed numbers cannot make it allocate gigabytes or sample for hours.
"$bin/fake-sdnext" --listen 127.0.0.1:0 --step-ms 2 --load-ms 1 \
  --checkpoint a --checkpoint "anime/b" --limits 512,20,4 >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
fake=$(address "$work/fake.out")
"$bin/agent-scheduler" serve --listen 127.0.0.1:0 --backend "$fake" \
  --data-dir "$work/data" >"$work/host.out" 2>"$work/host.err" &
pids+=($!)
host=$(address "$work/host.out")

mkdir "$work/run"
cd "$work/run"
status=0
"$venv/bin/schemathesis" run "$host/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /agent-scheduler/v1/events \
  --max-time "$seconds" --seed "$seed" --generation-database none \
  --no-color >"$work/fuzz.log" 2>&1 || status=$?
if grep -q '^=* WARNINGS =*$' "$work/fuzz.log"; then
  sed -n '/^=* WARNINGS =*$/,$p' "$work/fuzz.log"
else
  sed -n '/^=* SUMMARY =*$/,$p' "$work/fuzz.log"
fi
if [ "$status" -ne 0 ]; then
  sed -n '/^=* FAILURES =*$/,/^=* SUMMARY =*$/p' "$work/fuzz.log" | head -200
  echo "--- host log (tail)"; tail -20 "$work/host.err"
  echo "openapi-fuzz: schemathesis exited $status" >&2
  exit "$status"
fi
echo "openapi-fuzz: ok"
