import init, { start_panel } from './pkg/panel.js';

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

init({ module_or_path: './pkg/panel_bg.wasm' }).then(() => start_panel());
