// The panel's modals (viewer, group sheet, edit form) are a wasm module of their own,
// loaded the first time one opens; the panel calls `sdqOpenModal` with a JSON ModalSpec.
// Shared by the extension's panel (panel.js) and the web app (app.js; frontend/build.sh
// copies this file beside it).
let modals;
globalThis.sdqOpenModal = (spec) => {
  modals ??= import('./pkg/viewer.js').then(async (m) => {
    await m.default({ module_or_path: new URL('./pkg/viewer_bg.wasm', import.meta.url) });
    // The extension's API (none in the web app): "send to" asks the worker through it.
    m.set_extension_api(globalThis.browser?.runtime?.id ? globalThis.browser : globalThis.chrome);
    return m;
  });
  modals.then((m) => m.open_modal(spec));
  return true;
};
