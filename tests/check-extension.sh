#!/usr/bin/env bash
# Checks the extension frontend/build.sh made (run by tests/run.sh right after it):
#   - every shipped .wasm of both packages (target/extension/pkg for Chromium,
#     target/extension-firefox/pkg for Firefox) is at most 200,000 bytes gzip -9;
#   - each manifest is right for its browser: Chromium's has the service worker and its key,
#     Firefox's the background scripts, the gecko id and strict_min_version 128 (the
#     page-world bridge needs it), `menus`, and neither the key nor the service worker; both
#     ask for the optional host permissions that enabling a site needs;
#   - the shipped builds and the web app (target/webapp) carry none of the test-only hooks,
#     and the test builds carry every one of them (so the check itself is proven to see them);
#   - the web app has its page, loader, style and the shipped panel and viewer modules.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=200000
fail=0
bad() { echo "FAIL $*"; fail=1; }

for shipped in target/extension target/extension-firefox; do
  modules=0
  for w in "$shipped"/pkg/*.wasm; do
    [ -f "$w" ] || continue
    modules=$((modules + 1))
    gz=$(gzip -9c "$w" | wc -c)
    if [ "$gz" -gt "$limit" ]; then
      bad "$w: $gz bytes gzip -9, over the $limit limit"
    else
      echo "ok   $w: $gz bytes gzip -9 ($(stat -c %s "$w") raw; limit $limit)"
    fi
  done
  [ "$modules" -eq 5 ] || bad "$shipped/pkg: $modules wasm modules, expected 5 (content, panel, viewer, popup, sw)"
done
[ -f target/extension.zip ] || bad "target/extension.zip missing"
[ -f target/extension-firefox.xpi ] || bad "target/extension-firefox.xpi missing"

# manifest FILE JQ_EXPR WHAT: the manifest satisfies the jq condition.
manifest() {
  if jq -e "$2" "$1" >/dev/null; then echo "ok   $1: $3"; else bad "$1: $3"; fi
}
for m in target/extension/manifest.json target/extension-test/manifest.json; do
  manifest "$m" '.background.service_worker == "background.js" and (.background.scripts | not)' "service worker"
  manifest "$m" '(.key | length) > 0 and (.browser_specific_settings | not)' "key, no gecko settings"
  manifest "$m" '.permissions | index("contextMenus") and index("scripting")' "contextMenus, scripting"
done
for m in target/extension-firefox/manifest.json target/extension-firefox-test/manifest.json; do
  manifest "$m" '.background.scripts == ["background.js"] and (.background.service_worker | not)' "background scripts"
  manifest "$m" '.browser_specific_settings.gecko.id == "agent-scheduler@sdnext" and .browser_specific_settings.gecko.strict_min_version == "128.0"' "gecko id, strict_min_version 128.0"
  manifest "$m" '(.key | not) and (.minimum_chrome_version | not) and (.options_page | not) and .options_ui.page == "options.html"' "no Chromium-only keys; options_ui"
  manifest "$m" '(.permissions | index("menus") and index("scripting")) and (.permissions | index("contextMenus") | not)' "menus, scripting"
done
for m in target/extension/manifest.json target/extension-firefox/manifest.json; do
  manifest "$m" '.optional_host_permissions == ["http://*/*", "https://*/*"]' "optional host permissions for enabled sites"
  manifest "$m" '(.permissions | index("tabs") | not) and (.host_permissions | all(. != "http://sdnext.test/*"))' "none of the test build's additions"
done
for f in target/extension target/extension-firefox; do
  if ! diff -rq --exclude=manifest.json "$f" target/extension >/dev/null; then
    bad "$f differs from target/extension beyond the manifest"
  fi
done

# One marker per hook: the notification log, the panel's bench mode, the worker's test
# export and its JS side, the content script's "gave up" message.
for marker in __sdqNotifications bench= sw_queue_all self.sdq "not an SD.Next page"; do
  if found=$(grep -rlaF -- "$marker" target/extension target/extension-firefox target/webapp); then
    bad "test hook \`$marker\` in the shipped build: $found"
  else
    echo "ok   no \`$marker\` in the shipped builds"
  fi
  for t in target/extension-test target/extension-firefox-test; do
    grep -rqaF -- "$marker" "$t" \
      || bad "test hook \`$marker\` missing from $t (is the check still looking for the right thing?)"
  done
done
for f in app.html app.js ui.css pkg/panel.js pkg/panel_bg.wasm pkg/viewer.js pkg/viewer_bg.wasm; do
  if [ -f "target/webapp/$f" ]; then
    echo "ok   target/webapp/$f"
  else
    bad "target/webapp/$f missing (frontend/build.sh assembles the web app)"
  fi
done
for m in panel viewer; do
  cmp -s "target/webapp/pkg/${m}_bg.wasm" "target/extension/pkg/${m}_bg.wasm" \
    || bad "target/webapp/pkg/${m}_bg.wasm is not the shipped $m module"
done
exit "$fail"
