import init, { set_extension_api, start_popup } from './pkg/popup.js';

const api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;
init({ module_or_path: './pkg/popup_bg.wasm' }).then(() => {
  set_extension_api(api);
  start_popup();
});
