#!/usr/bin/env bash
# Builds the browser extension:
#   target/extension/       the shipped extension (and target/extension.zip)
#   target/extension-test/  the same plus the test-only hooks (feature `test-hooks`), which the
#                           browser tests load; never shipped.
#   target/webapp/          the task panel as a web app, which the host serves at `/` (it finds
#                           this folder beside its own binary's folder): frontend/webapp/* plus
#                           the shipped panel and viewer modules, ui.css, modals.js and the icons.
# One wasm module per extension context, each its own thin cdylib over the frontend rlib with
# only that context's feature: pkg/content_bg.wasm (frontend/content: the content script, loaded
# into every SD.Next page), pkg/panel_bg.wasm (frontend/panel: the task panel, also the web
# app), pkg/viewer_bg.wasm (frontend/viewer: the panel's modals — viewer, group sheet, edit
# form — loaded on first use), pkg/popup_bg.wasm (frontend/popup: the popup and the options
# page) and pkg/sw_bg.wasm (frontend/sw: the service worker).
#   cargo (wasm-release: opt-level z, LTO, 1 CGU) -> wasm-bindgen --target web -> wasm-opt -Oz
#   -> copy extension-manifest/* -> zip.   Idempotent; never writes outside target/.
#   bash frontend/build.sh [shipped|test|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
which=${1:-all}
opt="$root/tests/e2e/node_modules/.bin/wasm-opt"

# variant OUT_DIR [CARGO_FEATURE]
variant() {
  local out=$1 features=()
  [ -n "${2:-}" ] && features=(--features "$2")
  rm -rf "$out"
  mkdir -p "$out/pkg"
  # One cargo run per module: each resolves the frontend's features on its own, so a module
  # carries only its context's code.
  for pair in frontend-content:content frontend-panel:panel frontend-viewer:viewer frontend-popup:popup frontend-sw:sw; do
    local crate=${pair%%:*} name=${pair##*:}
    cargo build --profile wasm-release --target wasm32-unknown-unknown -p "$crate" --locked "${features[@]}"
    wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" --out-name "$name" \
      "$target_dir/wasm32-unknown-unknown/wasm-release/${crate//-/_}.wasm"
    if [ -x "$opt" ]; then
      "$opt" -Oz "$out/pkg/${name}_bg.wasm" -o "$out/pkg/${name}_bg.wasm.opt"
      mv "$out/pkg/${name}_bg.wasm.opt" "$out/pkg/${name}_bg.wasm"
    else
      echo "note: $opt not found (run: npm ci --prefix tests/e2e); skipping wasm-opt"
    fi
  done
  cp -R "$root/extension-manifest/." "$out/"
}

if [ "$which" = all ] || [ "$which" = shipped ]; then
  out="$target_dir/extension"
  variant "$out"
  rm -f "$target_dir/extension.zip"
  if command -v zip >/dev/null; then
    (cd "$out" && zip -qr "$target_dir/extension.zip" .)
  else
    (cd "$out" && python3 -m zipfile -c "$target_dir/extension.zip" $(ls -A))
  fi
  for w in "$out"/pkg/*.wasm; do
    echo "wasm: $(stat -c %s "$w") bytes raw, $(gzip -9c "$w" | wc -c) bytes gzip -9 (pkg/$(basename "$w"))"
  done
  echo "zip:  $target_dir/extension.zip"
  # The web app: the same panel module, served by the host at `/`.
  web="$target_dir/webapp"
  rm -rf "$web"
  mkdir -p "$web/pkg" "$web/icons"
  cp "$root"/frontend/webapp/* "$web/"
  cp "$out/ui.css" "$out/modals.js" "$web/"
  cp "$out"/icons/*.png "$web/icons/"
  cp "$out"/pkg/panel.js "$out"/pkg/panel_bg.wasm "$out"/pkg/viewer.js "$out"/pkg/viewer_bg.wasm "$web/pkg/"
  echo "web app: $web (served by the host at /)"
  echo "Load it: chrome://extensions → Developer mode → Load unpacked → $out"
fi

if [ "$which" = all ] || [ "$which" = test ]; then
  out="$target_dir/extension-test"
  variant "$out" test-hooks
  # The worker's JS side of the hooks (self.sdq), appended to the module service worker.
  cat "$root/frontend/test-hooks/background.js" >> "$out/background.js"
  echo "test build: $out (test hooks on; for the browser tests only)"
fi
