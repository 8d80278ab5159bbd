import init, { start_panel } from './pkg/scheduler.js';

init({ module_or_path: './pkg/scheduler_bg.wasm' }).then(() => start_panel());
