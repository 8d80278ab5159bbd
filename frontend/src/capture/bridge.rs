//! Calls into the page-world bridge (`extension-manifest/bridge.js`): a synchronous
//! `sdq-bridge` CustomEvent whose answer comes back in an `sdq-bridge-answer` event during the
//! same dispatch. Without the bridge (or without the page's Gradio config, as on recorded
//! pages) every call answers `None` and the DOM readers fall back to what the DOM shows.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Asks the bridge `op` with `args`; `None` when it is absent or answers nothing.
pub fn call(op: &str, args: Value) -> Option<Value> {
    let d = crate::web::util::document();
    let answer: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let slot = answer.clone();
    let listener = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        if let Some(ce) = e.dyn_ref::<web_sys::CustomEvent>() {
            *slot.borrow_mut() = ce.detail().as_string();
        }
    });
    let _ =
        d.add_event_listener_with_callback("sdq-bridge-answer", listener.as_ref().unchecked_ref());
    let init = web_sys::CustomEventInit::new();
    init.set_detail(&JsValue::from_str(
        &json!({"op": op, "args": args}).to_string(),
    ));
    if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict("sdq-bridge", &init) {
        let _ = d.dispatch_event(&ev);
    }
    let _ = d.remove_event_listener_with_callback(
        "sdq-bridge-answer",
        listener.as_ref().unchecked_ref(),
    );
    let text = answer.borrow_mut().take()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    if v.get("ok").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    v.get("value").cloned().filter(|v| !v.is_null())
}

/// The live value of the Gradio component with `elem_id`.
pub fn get(elem_id: &str) -> Option<Value> {
    call("get", json!({ "id": elem_id }))?.get("value").cloned()
}

/// Sets a Gradio component's value the way the page does; whether it was found.
pub fn set(elem_id: &str, value: &Value) -> bool {
    call("set", json!({ "id": elem_id, "value": value })).and_then(|v| v.as_bool()) == Some(true)
}

/// A dropdown's or radio's choices, in the page's order.
pub fn choices(elem_id: &str) -> Option<Vec<Value>> {
    call("choices", json!({ "id": elem_id }))?
        .as_array()
        .cloned()
}
