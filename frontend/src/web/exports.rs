//! The `#[wasm_bindgen]` entry points called by the JS loader shims, each behind the feature
//! of its context (a module exports only its own).

#[cfg(feature = "sw")]
use js_sys::Promise;
use wasm_bindgen::prelude::*;
#[cfg(feature = "sw")]
use wasm_bindgen_futures::future_to_promise;

#[cfg(feature = "content")]
use super::content;
#[cfg(any(feature = "panel", feature = "popup", feature = "viewer"))]
use super::ui;
#[cfg(feature = "sw")]
use super::{chrome, sw};

/// Every loader's first call: the extension API object of its context (`browser` in
/// Firefox, `chrome` in Chromium), which the module's own global may not show (Firefox: a
/// module imported by a content script, an extension page framed by a web page).
#[wasm_bindgen]
pub fn set_extension_api(api: JsValue) {
    super::chrome::set_root(api);
}

/// Content script entry (`content.js`), with the content script's extension API object
/// (`browser` in Firefox, `chrome` in Chromium): the module cannot find it itself in Firefox.
#[cfg(feature = "content")]
#[wasm_bindgen]
pub fn start_content(api: JsValue) {
    super::chrome::set_root(api);
    content::start();
}

/// Task panel entry (`panel.html`, also embedded in the page's drawer).
#[cfg(feature = "panel")]
#[wasm_bindgen]
pub fn start_panel() {
    ui::panel::mount(crate::web::host::Platform::Extension);
}

/// The web app's entry (`app.html`, served by the host at `/`): the same panel, talking to
/// the host it was loaded from, with a token login when the host asks for one.
#[cfg(feature = "panel")]
#[wasm_bindgen]
pub fn start_webapp() {
    ui::panel::mount(crate::web::host::Platform::Web);
}

/// The modal module's entry: shows the viewer, a group sheet or the edit form over the
/// panel (`spec` is a `messages::ModalSpec` as JSON; the page's loader calls this).
#[cfg(feature = "viewer")]
#[wasm_bindgen]
pub fn open_modal(spec: String) {
    ui::modal::open(&spec);
}

/// Popup entry (`popup.html`).
#[cfg(feature = "popup")]
#[wasm_bindgen]
pub fn start_popup() {
    ui::popup::mount();
}

/// Options page entry (`options.html`).
#[cfg(feature = "popup")]
#[wasm_bindgen]
pub fn start_options() {
    ui::options::mount();
}

/// Service worker: start holding the event stream (notifications).
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_start() {
    sw::start();
}

/// Service worker: (re)create the context menus.
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_install_menus() -> Promise {
    future_to_promise(async {
        sw::install_menus().await;
        Ok(JsValue::TRUE)
    })
}

/// Service worker: the stored options changed (reconnect the stream, rebuild the menus).
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_options_changed() -> Promise {
    future_to_promise(async {
        sw::options_changed().await;
        Ok(JsValue::TRUE)
    })
}

/// Service worker: the enabled sites or a host permission changed (re-register the content
/// scripts, rebuild the menus for the new pages).
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_sites_changed() -> Promise {
    future_to_promise(async {
        sw::sites_changed(true).await;
        Ok(JsValue::TRUE)
    })
}

/// Service worker: a `runtime.onMessage` message; resolves to the answer.
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_on_message(msg: JsValue, sender: JsValue) -> Promise {
    let msg = chrome::from_js(&msg);
    let sender = chrome::from_js(&sender);
    future_to_promise(async move { Ok(chrome::to_js(&sw::on_message(msg, sender).await)) })
}

/// Service worker: a context-menu click.
#[cfg(feature = "sw")]
#[wasm_bindgen]
pub fn sw_on_menu_click(info: JsValue, tab: JsValue) -> Promise {
    let info = chrome::from_js(&info);
    let tab = chrome::from_js(&tab);
    future_to_promise(async move { Ok(chrome::to_js(&sw::on_menu_click(info, tab).await)) })
}

/// Test hook (feature `test-hooks`): the service worker's "Queue with all checkpoints" /
/// "…in folder" handler without a native menu (`folder` null = all checkpoints).
#[cfg(all(feature = "sw", feature = "test-hooks"))]
#[wasm_bindgen]
pub fn sw_queue_all(folder: Option<String>) -> Promise {
    future_to_promise(async move {
        let r = crate::messages::Reply::from(sw::queue_all(folder, None).await);
        Ok(chrome::to_js(&r))
    })
}
