import init, { start_options } from './pkg/popup.js';

init({ module_or_path: './pkg/popup_bg.wasm' }).then(() => start_options());
