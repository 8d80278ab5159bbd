//! The `#[wasm_bindgen]` entry points called by the JS loader shims.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{chrome, content, sw, ui};

/// Content script entry (`content.js`).
#[wasm_bindgen]
pub fn start_content() {
    content::start();
}

/// Task panel entry (`panel.html`, also embedded in the page's drawer).
#[wasm_bindgen]
pub fn start_panel() {
    ui::panel::mount();
}

/// Popup entry (`popup.html`).
#[wasm_bindgen]
pub fn start_popup() {
    ui::popup::mount();
}

/// Options page entry (`options.html`).
#[wasm_bindgen]
pub fn start_options() {
    ui::options::mount();
}

/// Service worker: start holding the event stream (notifications).
#[wasm_bindgen]
pub fn sw_start() {
    sw::start();
}

/// Service worker: (re)create the context menus.
#[wasm_bindgen]
pub fn sw_install_menus() -> Promise {
    future_to_promise(async {
        sw::install_menus().await;
        Ok(JsValue::TRUE)
    })
}

/// Service worker: the stored options changed (reconnect the stream, rebuild the menus).
#[wasm_bindgen]
pub fn sw_options_changed() -> Promise {
    future_to_promise(async {
        sw::options_changed().await;
        Ok(JsValue::TRUE)
    })
}

/// Service worker: a `chrome.runtime` message; resolves to the answer.
#[wasm_bindgen]
pub fn sw_on_message(msg: JsValue, sender: JsValue) -> Promise {
    let msg = chrome::from_js(&msg);
    let sender = chrome::from_js(&sender);
    future_to_promise(async move { Ok(chrome::to_js(&sw::on_message(msg, sender).await)) })
}

/// Service worker: a context-menu click.
#[wasm_bindgen]
pub fn sw_on_menu_click(info: JsValue, tab: JsValue) -> Promise {
    let info = chrome::from_js(&info);
    let tab = chrome::from_js(&tab);
    future_to_promise(async move { Ok(chrome::to_js(&sw::on_menu_click(info, tab).await)) })
}

/// Service worker: the "Queue with all checkpoints" / "…in folder" handler, callable from
/// tests (`folder` null = all checkpoints).
#[wasm_bindgen]
pub fn sw_queue_all(folder: Option<String>) -> Promise {
    future_to_promise(async move {
        let r = crate::messages::Reply::from(sw::queue_all(folder, None).await);
        Ok(chrome::to_js(&r))
    })
}
