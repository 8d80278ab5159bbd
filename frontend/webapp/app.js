// The web app the host serves at `/` (this file at /app/app.js): the task panel's wasm
// module, talking to the host it came from.
import init, { start_webapp } from './pkg/panel.js';

// The panel's modals (viewer, group sheet, edit form) are a wasm module of their own,
// loaded the first time one opens; the panel calls this with a JSON ModalSpec.
let modals;
globalThis.sdqOpenModal = (spec) => {
  modals ??= import('./pkg/viewer.js').then(async (m) => {
    await m.default({ module_or_path: new URL('./pkg/viewer_bg.wasm', import.meta.url) });
    return m;
  });
  modals.then((m) => m.open_modal(spec));
  return true;
};

init({ module_or_path: new URL('./pkg/panel_bg.wasm', import.meta.url) }).then(() => start_webapp());
