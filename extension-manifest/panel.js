import init, { start_panel } from './pkg/panel.js';
import './modals.js';

init({ module_or_path: './pkg/panel_bg.wasm' }).then(() => start_panel());
