#!/usr/bin/env bash
# Checks the extension frontend/build.sh made (run by tests/run.sh right after it):
#   - every shipped .wasm (target/extension/pkg) is at most 200,000 bytes gzip -9;
#   - the shipped build and the web app (target/webapp) carry none of the test-only hooks,
#     and the test build (target/extension-test) carries every one of them (so the check
#     itself is proven to see them);
#   - the web app has its page, loader, style and the shipped panel and viewer modules.
set -euo pipefail
cd "$(dirname "$0")/.."
shipped=target/extension
test_build=target/extension-test
limit=200000
fail=0

modules=0
for w in "$shipped"/pkg/*.wasm; do
  [ -f "$w" ] || continue
  modules=$((modules + 1))
  gz=$(gzip -9c "$w" | wc -c)
  if [ "$gz" -gt "$limit" ]; then
    echo "FAIL $w: $gz bytes gzip -9, over the $limit limit"
    fail=1
  else
    echo "ok   $w: $gz bytes gzip -9 ($(stat -c %s "$w") raw; limit $limit)"
  fi
done
if [ "$modules" -ne 5 ]; then
  echo "FAIL $shipped/pkg: $modules wasm modules, expected 5 (content, panel, viewer, popup, sw)"
  fail=1
fi

# One marker per hook: the notification log, the panel's bench mode, the worker's test
# export and its JS side.
for marker in __sdqNotifications bench= sw_queue_all self.sdq; do
  if found=$(grep -rlaF -- "$marker" "$shipped" target/webapp); then
    echo "FAIL test hook \`$marker\` in the shipped build: $found"
    fail=1
  else
    echo "ok   no \`$marker\` in the shipped build"
  fi
  if ! grep -rqaF -- "$marker" "$test_build"; then
    echo "FAIL test hook \`$marker\` missing from the test build (is the check still looking for the right thing?)"
    fail=1
  fi
done
for f in app.html app.js ui.css pkg/panel.js pkg/panel_bg.wasm pkg/viewer.js pkg/viewer_bg.wasm; do
  if [ -f "target/webapp/$f" ]; then
    echo "ok   target/webapp/$f"
  else
    echo "FAIL target/webapp/$f missing (frontend/build.sh assembles the web app)"
    fail=1
  fi
done
for m in panel viewer; do
  if ! cmp -s "target/webapp/pkg/${m}_bg.wasm" "$shipped/pkg/${m}_bg.wasm"; then
    echo "FAIL target/webapp/pkg/${m}_bg.wasm is not the shipped $m module"
    fail=1
  fi
done
exit "$fail"
