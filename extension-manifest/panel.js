import init, { set_extension_api, start_panel } from './pkg/panel.js';
import './modals.js';

const api = globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome;
init({ module_or_path: './pkg/panel_bg.wasm' }).then(() => {
  set_extension_api(api);
  start_panel();
});
