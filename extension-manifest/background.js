// The background: Chromium runs it as a module service worker (`background.service_worker`),
// Firefox as a module background page (`background.scripts`); the same file serves both. Its
// own wasm module (pkg/sw_bg.wasm: no UI code). Rules of both: listeners are registered
// synchronously at the top level; no top-level await and no dynamic import(); the wasm is
// instantiated lazily in handlers. `api` is the one extension namespace: `browser` in
// Firefox, `chrome` in Chromium (the Rust side picks it the same way).
import init, * as wasm from './pkg/sw.js';

const api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;
const menus = api.menus ?? api.contextMenus;

let ready = null;
function ensure() {
  if (!ready) {
    ready = init({ module_or_path: api.runtime.getURL('pkg/sw_bg.wasm') }).then(() => {
      wasm.set_extension_api(api);
      wasm.sw_start();
      return wasm;
    });
  }
  return ready;
}

api.runtime.onInstalled.addListener(() => {
  ensure().then((w) => w.sw_install_menus());
});
api.runtime.onStartup.addListener(() => {
  ensure().then((w) => w.sw_install_menus());
});
api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  ensure()
    .then((w) => w.sw_on_message(msg, sender))
    .then(sendResponse, (e) => sendResponse({ ok: false, error: String(e) }));
  return true;
});
menus.onClicked.addListener((info, tab) => {
  ensure().then((w) => w.sw_on_menu_click(info, tab));
});
api.storage.onChanged.addListener((changes) => {
  if (changes.options) ensure().then((w) => w.sw_options_changed());
  if (changes.sites) ensure().then((w) => w.sw_sites_changed());
});
// A site's permission given or taken back (the options page, or the browser's own UI).
api.permissions.onAdded.addListener(() => ensure().then((w) => w.sw_sites_changed()));
api.permissions.onRemoved.addListener(() => ensure().then((w) => w.sw_sites_changed()));
api.alarms.onAlarm.addListener(() => {
  ensure();
});
api.alarms.create('sdq-keepalive', { periodInMinutes: 0.5 });

ensure();
