//! Minimal bindings to the `chrome.*` extension APIs used here (MV3: they return promises).

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use serde::de::DeserializeOwned;

use crate::messages::{Reply, ToContent, ToWorker};
use crate::state::ExtOptions;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "runtime"], js_name = sendMessage, catch)]
    fn runtime_send_message_raw(msg: &JsValue) -> Result<Promise, JsValue>;
    /// `chrome.runtime.getURL(path)`: the extension's URL of one of its files.
    #[wasm_bindgen(js_namespace = ["chrome", "runtime"], js_name = getURL)]
    pub fn runtime_get_url(path: &str) -> String;
    /// `chrome.runtime.onMessage.addListener(cb)`: the messages of the other contexts.
    #[wasm_bindgen(js_namespace = ["chrome", "runtime", "onMessage"], js_name = addListener)]
    pub fn on_message_add_listener(cb: &Function);
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = get)]
    fn storage_local_get(keys: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = set)]
    fn storage_local_set(items: &JsValue) -> Promise;
    /// `chrome.storage.onChanged.addListener(cb)`: the options changed.
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "onChanged"], js_name = addListener)]
    pub fn storage_on_changed_add_listener(cb: &Function);
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = sendMessage, catch)]
    fn tabs_send_message_raw(tab_id: i32, msg: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = query)]
    fn tabs_query_raw(q: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = create)]
    fn tabs_create_raw(p: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = ["chrome", "notifications"], js_name = create, catch)]
    fn notifications_create_raw(id: &str, opts: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["chrome", "contextMenus"], js_name = create, catch)]
    fn context_menus_create_raw(p: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = ["chrome", "contextMenus"], js_name = removeAll, catch)]
    fn context_menus_remove_all_raw() -> Result<Promise, JsValue>;
}

/// Converts a serde value to a JS value (plain objects, not Maps).
pub fn to_js<T: serde::Serialize>(v: &T) -> JsValue {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    js_sys::JSON::parse(&s).unwrap_or(JsValue::NULL)
}

/// Converts a JS value to a serde_json value.
pub fn from_js(v: &JsValue) -> serde_json::Value {
    if v.is_undefined() {
        return serde_json::Value::Null;
    }
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn err_text(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Asks the service worker (`chrome.runtime.sendMessage`) and decodes its [`Reply`].
pub async fn ask_worker<T: DeserializeOwned>(msg: &ToWorker) -> Result<T, String> {
    let p = runtime_send_message_raw(&to_js(msg)).map_err(err_text)?;
    let v = JsFuture::from(p).await.map_err(err_text)?;
    Reply::decode(from_js(&v))
}

/// Asks the content script of a tab (`chrome.tabs.sendMessage`) and decodes its [`Reply`].
pub async fn ask_tab<T: DeserializeOwned>(tab: i32, msg: &ToContent) -> Result<T, String> {
    let p = tabs_send_message_raw(tab, &to_js(msg)).map_err(err_text)?;
    let v = JsFuture::from(p).await.map_err(err_text)?;
    Reply::decode(from_js(&v))
}

/// `chrome.tabs.query`.
pub async fn tabs_query(q: &serde_json::Value) -> Vec<serde_json::Value> {
    match JsFuture::from(tabs_query_raw(&to_js(q))).await {
        Ok(v) => from_js(&v).as_array().cloned().unwrap_or_default(),
        Err(_) => vec![],
    }
}

/// Opens an extension page in a new tab.
pub async fn open_tab(path: &str) {
    let url = runtime_get_url(path);
    let _ = JsFuture::from(tabs_create_raw(&to_js(&serde_json::json!({ "url": url })))).await;
}

/// A basic desktop notification.
pub async fn notify(id: &str, title: &str, message: &str) {
    let opts = serde_json::json!({
        "type": "basic",
        "iconUrl": runtime_get_url("icons/icon128.png"),
        "title": title,
        "message": message,
    });
    if let Ok(p) = notifications_create_raw(id, &to_js(&opts)) {
        let _ = JsFuture::from(p).await;
    }
    #[cfg(feature = "test-hooks")]
    log_notification(id, title, message);
}

/// Test hook: a log of the notifications shown, on the worker's global `__sdqNotifications`
/// (read by the browser tests through the worker), written once the notification is up.
#[cfg(feature = "test-hooks")]
fn log_notification(id: &str, title: &str, message: &str) {
    use wasm_bindgen::JsCast;
    let g = js_sys::global();
    let key = JsValue::from_str("__sdqNotifications");
    let log = Reflect::get(&g, &key)
        .ok()
        .filter(|v| v.is_object())
        .unwrap_or_else(|| {
            let a: JsValue = js_sys::Array::new().into();
            let _ = Reflect::set(&g, &key, &a);
            a
        });
    if let Some(arr) = log.dyn_ref::<js_sys::Array>() {
        arr.push(&to_js(
            &serde_json::json!({ "id": id, "title": title, "message": message }),
        ));
    }
}

/// `chrome.contextMenus.create` (errors such as duplicates are ignored).
pub fn menu_create(p: &serde_json::Value) {
    let _ = context_menus_create_raw(&to_js(p));
}

/// `chrome.contextMenus.removeAll`.
pub async fn menu_remove_all() {
    if let Ok(p) = context_menus_remove_all_raw() {
        let _ = JsFuture::from(p).await;
    }
}

/// Reads one key of `chrome.storage.local`.
pub async fn storage_get(key: &str) -> serde_json::Value {
    match JsFuture::from(storage_local_get(&JsValue::from_str(key))).await {
        Ok(v) => from_js(&v)
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

/// Writes one key of `chrome.storage.local`.
pub async fn storage_set(key: &str, value: &serde_json::Value) {
    let o = Object::new();
    let _ = Reflect::set(&o, &JsValue::from_str(key), &to_js(value));
    let _ = JsFuture::from(storage_local_set(&o)).await;
}

/// The extension options (defaults when none are stored).
pub async fn load_options() -> ExtOptions {
    ExtOptions::from_json(&storage_get("options").await)
}

/// Stores the extension options.
pub async fn save_options(o: &ExtOptions) {
    storage_set("options", &serde_json::to_value(o).unwrap_or_default()).await;
}
