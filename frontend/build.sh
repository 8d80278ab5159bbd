#!/usr/bin/env bash
# Builds the browser extension, one source for two browsers:
#   target/extension/               the shipped Chromium extension (and target/extension.zip)
#   target/extension-firefox/       the shipped Firefox extension (and target/extension-firefox.xpi)
#   target/extension-test/          the Chromium one plus the test-only hooks (feature
#   target/extension-firefox-test/  `test-hooks`) and the test manifest additions, which the
#                                   browser tests load; never shipped.
# Both packages carry the same files and wasm modules; only the manifest differs. The source
# manifest (extension-manifest/manifest.json) is Chromium's; Firefox's is it merged with
# extension-manifest/firefox.json (gecko id and strict_min_version, `background.scripts`
# instead of the service worker, `options_ui`) minus Chromium's `key` and
# `minimum_chrome_version`, with `menus` for `contextMenus` (jq).
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

# variant CARGO_TARGET_DIR OUT_DIR [CARGO_FEATURE]
variant() {
  local cdir=$1 out=$2 features=()
  [ -n "${3:-}" ] && features=(--features "$3")
  rm -rf "$out"
  mkdir -p "$out/pkg"
  # One cargo run per module: each resolves the frontend's features on its own, so a module
  # carries only its context's code.
  for pair in frontend-content:content frontend-panel:panel frontend-viewer:viewer frontend-popup:popup frontend-sw:sw; do
    local crate=${pair%%:*} name=${pair##*:}
    CARGO_TARGET_DIR="$cdir" cargo build --profile wasm-release --target wasm32-unknown-unknown -p "$crate" --locked "${features[@]}"
    wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" --out-name "$name" \
      "$cdir/wasm32-unknown-unknown/wasm-release/${crate//-/_}.wasm"
    if [ -x "$opt" ]; then
      "$opt" -Oz "$out/pkg/${name}_bg.wasm" -o "$out/pkg/${name}_bg.wasm.opt"
      mv "$out/pkg/${name}_bg.wasm.opt" "$out/pkg/${name}_bg.wasm"
    else
      echo "note: $opt not found (run: npm ci --prefix tests/e2e); skipping wasm-opt"
    fi
  done
  cp -R "$root/extension-manifest/." "$out/"
  rm "$out/firefox.json"
}

# firefox_package CHROMIUM_DIR FIREFOX_DIR: the same files under Firefox's manifest.
firefox_package() {
  rm -rf "$2"
  cp -R "$1" "$2"
  jq -s '.[0] * .[1]
    | del(.key, .minimum_chrome_version, .options_page, .background.service_worker)
    | .permissions |= map(if . == "contextMenus" then "menus" else . end)' \
    "$1/manifest.json" "$root/extension-manifest/firefox.json" > "$2/manifest.json"
}

# test_manifest DIR PERMISSION...: the test build's additions to a manifest. The browser
# tests enable a page served under a made-up name (`sdnext.test`) from the popup, which they
# open as a tab: `tabs` stands in for the activeTab grant only a real toolbar click gives
# (Firefox), and Chromium, which has no way to accept its permission prompt in a test, gets
# the name as a host permission already granted (its `permissions.request` then answers
# true without a prompt; Firefox's tests turn its prompt off instead).
test_manifest() {
  local dir=$1; shift
  local add
  add=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  jq --argjson add "$add" '
      .permissions += [$add[] | select(contains("/") | not)]
    | .host_permissions += [$add[] | select(contains("/"))]' \
    "$dir/manifest.json" > "$dir/manifest.json.new"
  mv "$dir/manifest.json.new" "$dir/manifest.json"
}

zip_dir() {
  rm -f "$2"
  if command -v zip >/dev/null; then
    (cd "$1" && zip -qr "$2" .)
  else
    (cd "$1" && python3 -m zipfile -c "$2" $(ls -A))
  fi
}

shipped() {
  out="$target_dir/extension"
  variant "$target_dir" "$out"
  firefox_package "$out" "$target_dir/extension-firefox"
  zip_dir "$out" "$target_dir/extension.zip"
  zip_dir "$target_dir/extension-firefox" "$target_dir/extension-firefox.xpi"
  for w in "$out"/pkg/*.wasm; do
    echo "wasm: $(stat -c %s "$w") bytes raw, $(gzip -9c "$w" | wc -c) bytes gzip -9 (pkg/$(basename "$w"))"
  done
  echo "zip:  $target_dir/extension.zip (Chromium), $target_dir/extension-firefox.xpi (Firefox)"
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
  echo "     or: about:debugging → This Firefox → Load Temporary Add-on → $target_dir/extension-firefox/manifest.json"
}

# The test build compiles in its own cargo target dir, so that with `all` it runs beside the
# shipped build (cargo locks a target dir; each module's LTO link is one thread: two at a time
# keep both cores busy).
test_target_dir="$target_dir/wasm-test-build"
test_build() {
  out="$target_dir/extension-test"
  variant "$test_target_dir" "$out" test-hooks
  # The worker's JS side of the hooks (self.sdq), appended to the module service worker.
  cat "$root/frontend/test-hooks/background.js" >> "$out/background.js"
  firefox_package "$out" "$target_dir/extension-firefox-test"
  test_manifest "$out" "http://sdnext.test/*"
  test_manifest "$target_dir/extension-firefox-test" tabs
  echo "test builds: $out, $target_dir/extension-firefox-test (test hooks on; for the browser tests only)"
}

case "$which" in
  shipped) shipped ;;
  test) test_build ;;
  all)
    test_log=$(mktemp)
    test_build > "$test_log" 2>&1 &
    test_pid=$!
    trap 'kill "$test_pid" 2>/dev/null || true; rm -f "$test_log"' EXIT
    shipped
    test_status=0
    wait "$test_pid" || test_status=$?
    sed 's/^/[test build] /' "$test_log"
    [ "$test_status" = 0 ] || { echo "frontend/build.sh: the test build failed" >&2; exit 1; }
    ;;
  *) echo "usage: frontend/build.sh [shipped|test|all]" >&2; exit 2 ;;
esac
