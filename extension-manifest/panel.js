import init, { start_panel } from './pkg/pages.js';

init({ module_or_path: './pkg/pages_bg.wasm' }).then(() => start_panel());
