import init, { start_options } from './pkg/pages.js';

init({ module_or_path: './pkg/pages_bg.wasm' }).then(() => start_options());
