#!/usr/bin/env bash
# The live tier in both SD.Next themes, against the kit (../shared/tools/sdnext, shared by
# everyone on the machine): for each theme, set `theme_type`, restart the kit under its lock
# when the theme changes (the theme is read at start), switch SD.Next's rate limit off (the
# fidelity table makes about a hundred generations), then run the live tests. The theme the
# kit had is put back at the end. Never in CI.
#   bash tests/live.sh                     (after: bash frontend/build.sh)
#   THEMES="Standard" LIVE_PARTS=button bash tests/live.sh
#   LIVE_TESTS=live_the_extension_on_the_real_sdnext_page_in_firefox bash tests/live.sh   (one test)
# The tests: each browser (Chromium, Firefox ESR) on the loopback page, and each with SD.Next
# at a made-up non-loopback name (sdnext.test) enabled from the popup (see live_capture.rs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# ../shared beside the checkout (the main checkout), or two levels up (a worktree in wt/NAME).
shared=$root/../shared
[ -d "$shared" ] || shared=$root/../../shared
kit=${SDNEXT_KIT:-$shared/tools/sdnext}
url=${SDNEXT_URL:-http://127.0.0.1:17860}
lock=${SDNEXT_LOCK:-$shared/../sdnext.lock}
themes=${THEMES:-Modern Standard}

option() {
  curl -sf "$url/sdapi/v1/options" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', '$2'))"
}
set_options() {
  curl -sf -X POST -H 'content-type: application/json' -d "$1" "$url/sdapi/v1/options" >/dev/null
}
restart() {
  echo "live: restarting the kit for theme $1 (lock $lock)"
  # -o: SD.Next (started inside) must not inherit the lock, or it holds it while it runs.
  flock -o "$lock" bash -c "bash '$kit/stop.sh' && bash '$kit/start.sh'"
}

curl -sf "$url/sdapi/v1/sd-models" >/dev/null || { echo "live: no SD.Next at $url (bash $kit/start.sh)" >&2; exit 1; }
original=$(option theme_type Modern)
status=0
for theme in $themes; do
  if [ "$(option theme_type Modern)" != "$theme" ]; then
    set_options "{\"theme_type\": \"$theme\"}"
    restart "$theme"
  fi
  set_options '{"server_rate_limit": 0}'
  echo "live: theme $theme"
  SDNEXT_URL=$url cargo test -p scheduler-tests --test integration --locked -- --ignored --nocapture --test-threads 1 "${LIVE_TESTS:-live_}" \
    || status=1
done
if [ "$(option theme_type Modern)" != "$original" ]; then
  set_options "{\"theme_type\": \"$original\"}"
  restart "$original"
fi
exit $status
