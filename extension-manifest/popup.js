import init, { start_popup } from './pkg/popup.js';

init({ module_or_path: './pkg/popup_bg.wasm' }).then(() => start_popup());
