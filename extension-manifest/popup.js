import init, { start_popup } from './pkg/pages.js';

init({ module_or_path: './pkg/pages_bg.wasm' }).then(() => start_popup());
