// Module service worker (its own wasm module, pkg/sw_bg.wasm: no UI code). SW rules:
// listeners are registered synchronously at the top level; no top-level await and no dynamic
// import(); the wasm is instantiated lazily in handlers.
import init, * as wasm from './pkg/sw.js';

let ready = null;
function ensure() {
  if (!ready) {
    ready = init({ module_or_path: chrome.runtime.getURL('pkg/sw_bg.wasm') }).then(() => {
      wasm.sw_start();
      return wasm;
    });
  }
  return ready;
}

chrome.runtime.onInstalled.addListener(() => {
  ensure().then((w) => w.sw_install_menus());
});
chrome.runtime.onStartup.addListener(() => {
  ensure().then((w) => w.sw_install_menus());
});
chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  ensure()
    .then((w) => w.sw_on_message(msg, sender))
    .then(sendResponse, (e) => sendResponse({ ok: false, error: String(e) }));
  return true;
});
chrome.contextMenus.onClicked.addListener((info, tab) => {
  ensure().then((w) => w.sw_on_menu_click(info, tab));
});
chrome.storage.onChanged.addListener((changes) => {
  if (changes.options) ensure().then((w) => w.sw_options_changed());
});
chrome.alarms.onAlarm.addListener(() => {
  ensure();
});
chrome.alarms.create('sdq-keepalive', { periodInMinutes: 0.5 });

ensure();
