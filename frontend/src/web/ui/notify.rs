//! What every Yew module of the extension shares: running futures, and toasts and reloads
//! asked of the panel by code that holds no handle on its state (the modal module): DOM
//! events on the window ([`TOAST_EVENT`], [`RELOAD_EVENT`]) that the panel listens to.

use std::future::Future;

use scheduler_api::MessageResponse;
use scheduler_api::client::ClientError;
use wasm_bindgen::JsValue;

use crate::web::host::error_text;

/// `CustomEvent` asking the panel for a toast; `detail` is `{text, error}`.
pub const TOAST_EVENT: &str = "sdq-toast";
/// `CustomEvent` asking the panel to reload its lists.
pub const RELOAD_EVENT: &str = "sdq-reload";

/// Runs a future on the page's event loop. Boxed, so every call site shares one
/// instantiation of the executor's code (this matters in the browser's wasm).
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    spawn_boxed(Box::pin(f));
}

fn spawn_boxed(f: std::pin::Pin<Box<dyn Future<Output = ()>>>) {
    wasm_bindgen_futures::spawn_local(f);
}

fn dispatch(name: &str, detail: JsValue) {
    let init = web_sys::CustomEventInit::new();
    init.set_detail(&detail);
    if let (Some(w), Ok(ev)) = (
        web_sys::window(),
        web_sys::CustomEvent::new_with_event_init_dict(name, &init),
    ) {
        let _ = w.dispatch_event(&ev);
    }
}

/// Asks the panel for a toast.
pub fn toast(text: impl Into<String>, error: bool) {
    dispatch(
        TOAST_EVENT,
        crate::web::chrome::to_js(&serde_json::json!({ "text": text.into(), "error": error })),
    );
}

/// Asks the panel to reload its lists.
pub fn reload() {
    dispatch(RELOAD_EVENT, JsValue::NULL);
}

/// Runs a host call, toasts its outcome (the host's message, or the error) and asks for a
/// reload.
pub fn act(call: impl Future<Output = Result<MessageResponse, ClientError>> + 'static) {
    act_boxed(Box::pin(call));
}

fn act_boxed(call: std::pin::Pin<Box<dyn Future<Output = Result<MessageResponse, ClientError>>>>) {
    spawn(async move {
        match call.await {
            Ok(m) => toast(m.message, false),
            Err(e) => toast(error_text(&e), true),
        }
        reload();
    });
}
