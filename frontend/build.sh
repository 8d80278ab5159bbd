#!/usr/bin/env bash
# Builds the browser extension into target/extension/ (and target/extension.zip).
#   cargo (wasm-release: opt-level z, LTO, 1 CGU) -> wasm-bindgen --target web -> wasm-opt -Oz
#   -> copy extension-manifest/* -> zip.   Idempotent; never writes outside target/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
out="$target_dir/extension"

cargo build --profile wasm-release --target wasm32-unknown-unknown -p frontend-wasm --locked
wasm="$target_dir/wasm32-unknown-unknown/wasm-release/frontend_wasm.wasm"

rm -rf "$out"
mkdir -p "$out/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" --out-name scheduler "$wasm"

opt="$root/tests/e2e/node_modules/.bin/wasm-opt"
if [ -x "$opt" ]; then
  "$opt" -Oz "$out/pkg/scheduler_bg.wasm" -o "$out/pkg/scheduler_bg.wasm.opt"
  mv "$out/pkg/scheduler_bg.wasm.opt" "$out/pkg/scheduler_bg.wasm"
else
  echo "note: $opt not found (run: npm ci --prefix tests/e2e); skipping wasm-opt"
fi

cp -R "$root/extension-manifest/." "$out/"

rm -f "$target_dir/extension.zip"
if command -v zip >/dev/null; then
  (cd "$out" && zip -qr "$target_dir/extension.zip" .)
else
  (cd "$out" && python3 -m zipfile -c "$target_dir/extension.zip" $(ls -A))
fi

raw=$(stat -c %s "$out/pkg/scheduler_bg.wasm")
gz=$(gzip -9c "$out/pkg/scheduler_bg.wasm" | wc -c)
echo "wasm: $raw bytes raw, $gz bytes gzip (pkg/scheduler_bg.wasm)"
echo "zip:  $target_dir/extension.zip"
echo "Load it: chrome://extensions → Developer mode → Load unpacked → $out"
