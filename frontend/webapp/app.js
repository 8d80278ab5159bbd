// The web app the host serves at `/` (this file at /app/app.js): the task panel's wasm
// module, talking to the host it came from; its modals come from modals.js.
import init, { start_webapp } from './pkg/panel.js';
import './modals.js';

init({ module_or_path: new URL('./pkg/panel_bg.wasm', import.meta.url) }).then(() => start_webapp());
