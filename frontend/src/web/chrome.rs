//! The extension APIs, one binding for both browsers. Every call goes through [`api`]: the
//! API root `browser` (Firefox) or `chrome` (Chromium), picked once per context, and a
//! namespace under it (`runtime`, `storage.local`, `tabs`, `menus` in Firefox or
//! `contextMenus` in Chromium, `permissions`, `scripting`, `notifications`). Both browsers'
//! MV3 methods return promises, so one calling convention serves them. Outside an extension
//! (the web app) there is no root: calls fail with an error instead of throwing.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use serde::de::DeserializeOwned;

use crate::messages::{Reply, ToContent, ToWorker};
use crate::state::ExtOptions;

thread_local! {
    static ROOT: std::cell::RefCell<Option<Option<JsValue>>> = const { std::cell::RefCell::new(None) };
}

/// Whether `v` is the extension API (it has `runtime.id`).
fn is_api(v: &JsValue) -> bool {
    Reflect::get(v, &"runtime".into())
        .ok()
        .and_then(|r| Reflect::get(&r, &"id".into()).ok())
        .is_some_and(|id| id.is_string())
}

/// `globalThis.browser` when it is the extension API (Firefox), else `globalThis.chrome`
/// when it is (Chromium); `None` outside an extension.
fn find_root() -> Option<JsValue> {
    let g = js_sys::global();
    ["browser", "chrome"].iter().find_map(|name| {
        let v = Reflect::get(&g, &JsValue::from_str(name)).ok()?;
        is_api(&v).then_some(v)
    })
}

/// Sets the API root from the loader that started this module. Firefox evaluates a module a
/// content script imports with the page's `globalThis`, where neither `browser` nor `chrome`
/// is the extension API: `content.js` hands its own `browser` over.
pub fn set_root(api: JsValue) {
    if is_api(&api) {
        ROOT.with(|r| *r.borrow_mut() = Some(Some(api)));
    }
}

fn root() -> Option<JsValue> {
    ROOT.with(|r| r.borrow_mut().get_or_insert_with(find_root).clone())
}

/// Whether this code runs in an extension context (content script, page or worker).
pub fn in_extension() -> bool {
    root().is_some()
}

/// The namespace at `path` (dot-separated) under the API root; alternatives separated by
/// `|` are tried in order (`menus|contextMenus`).
pub fn api(path: &str) -> Option<JsValue> {
    let root = root()?;
    path.split('|').find_map(|alt| {
        alt.split('.').try_fold(root.clone(), |v, key| {
            Reflect::get(&v, &JsValue::from_str(key))
                .ok()
                .filter(|x| x.is_object() || x.is_function())
        })
    })
}

/// The menus namespace: `menus` (Firefox) or `contextMenus` (Chromium).
const MENUS: &str = "menus|contextMenus";

/// Calls `namespace.method(args…)`; the value it returns (a promise for most methods).
pub fn call(namespace: &str, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let ns = api(namespace).ok_or_else(|| format!("no extension API {namespace}"))?;
    // Checked with `typeof`, not `instanceof`: the API's functions and promises may come
    // from another realm (Firefox: an extension page framed by a web page).
    let f: Function = Reflect::get(&ns, &JsValue::from_str(method))
        .ok()
        .filter(JsValue::is_function)
        .map(JsCast::unchecked_into)
        .ok_or_else(|| format!("no extension API {namespace}.{method}"))?;
    let list: Array = args.iter().collect();
    Reflect::apply(&f, &ns, &list).map_err(err_text)
}

/// [`call`], awaiting the promise it returns.
pub async fn call_async(
    namespace: &str,
    method: &str,
    args: &[JsValue],
) -> Result<JsValue, String> {
    let v = call(namespace, method, args)?;
    // `Promise.resolve` adopts a promise of any realm (and passes a plain value through).
    JsFuture::from(Promise::resolve(&v)).await.map_err(err_text)
}

/// `namespace.event.addListener(cb)`.
pub fn add_listener(namespace: &str, event: &str, cb: &Function) {
    let _ = call(
        &format!("{namespace}.{event}"),
        "addListener",
        &[cb.clone().into()],
    );
}

/// `runtime.getURL(path)`: the extension's own URL of a file.
pub fn runtime_get_url(path: &str) -> String {
    call("runtime", "getURL", &[JsValue::from_str(path)])
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// The extension's origin: `chrome-extension://<id>` (fixed by the manifest key) or
/// `moz-extension://<uuid>` (Firefox: one per install).
pub fn extension_origin() -> String {
    runtime_get_url("").trim_end_matches('/').to_owned()
}

/// Whether this is the Firefox package (its pages live under `moz-extension://`).
pub fn is_firefox() -> bool {
    extension_origin().starts_with("moz-extension://")
}

/// `runtime.onMessage.addListener`.
pub fn on_message_add_listener(cb: &Function) {
    add_listener("runtime", "onMessage", cb);
}

/// `storage.onChanged.addListener`.
pub fn storage_on_changed_add_listener(cb: &Function) {
    add_listener("storage", "onChanged", cb);
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

/// Asks the service worker (`runtime.sendMessage`) and decodes its [`Reply`].
pub async fn ask_worker<T: DeserializeOwned>(msg: &ToWorker) -> Result<T, String> {
    let v = call_async("runtime", "sendMessage", &[to_js(msg)]).await?;
    Reply::decode(from_js(&v))
}

/// Asks the content script of a tab (`tabs.sendMessage`) and decodes its [`Reply`].
pub async fn ask_tab<T: DeserializeOwned>(tab: i32, msg: &ToContent) -> Result<T, String> {
    let v = call_async("tabs", "sendMessage", &[tab.into(), to_js(msg)]).await?;
    Reply::decode(from_js(&v))
}

/// `tabs.query`.
pub async fn tabs_query(q: &serde_json::Value) -> Vec<serde_json::Value> {
    match call_async("tabs", "query", &[to_js(q)]).await {
        Ok(v) => from_js(&v).as_array().cloned().unwrap_or_default(),
        Err(_) => vec![],
    }
}

/// `tabs.get`: one tab (its `url` and `title` only with a host permission for it, the
/// `activeTab` grant of a toolbar click, or the `tabs` permission).
pub async fn tabs_get(id: i32) -> Option<serde_json::Value> {
    call_async("tabs", "get", &[id.into()])
        .await
        .ok()
        .map(|v| from_js(&v))
}

/// Opens an extension page in a new tab.
pub async fn open_tab(path: &str) {
    let url = runtime_get_url(path);
    let _ = call_async(
        "tabs",
        "create",
        &[to_js(&serde_json::json!({ "url": url }))],
    )
    .await;
}

/// A basic desktop notification.
pub async fn notify(id: &str, title: &str, message: &str) {
    let opts = serde_json::json!({
        "type": "basic",
        "iconUrl": runtime_get_url("icons/icon128.png"),
        "title": title,
        "message": message,
    });
    let _ = call_async(
        "notifications",
        "create",
        &[JsValue::from_str(id), to_js(&opts)],
    )
    .await;
    #[cfg(feature = "test-hooks")]
    log_notification(id, title, message);
}

/// Test hook: a log of the notifications shown, on the worker's global `__sdqNotifications`
/// (read by the browser tests through the worker), written once the notification is up.
#[cfg(feature = "test-hooks")]
fn log_notification(id: &str, title: &str, message: &str) {
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

/// `menus.create` / `contextMenus.create` (errors such as duplicates are ignored).
pub fn menu_create(p: &serde_json::Value) {
    let _ = call(MENUS, "create", &[to_js(p)]);
}

/// `menus.removeAll` / `contextMenus.removeAll`.
pub async fn menu_remove_all() {
    let _ = call_async(MENUS, "removeAll", &[]).await;
}

/// `permissions.request({origins})`, started at once: call it straight from the click
/// handler (both browsers require the user's gesture to be on the stack), then await the
/// promise. Resolves to whether the user granted them.
pub fn permissions_request(origins: &[String]) -> Result<Promise, String> {
    let arg = to_js(&serde_json::json!({ "origins": origins }));
    call("permissions", "request", &[arg]).map(|v| Promise::resolve(&v))
}

/// Awaits a [`permissions_request`]: whether it was granted.
pub async fn permission_granted(p: Promise) -> Result<bool, String> {
    let v = JsFuture::from(p).await.map_err(err_text)?;
    Ok(v.as_bool() == Some(true))
}

/// `permissions.contains({origins})`.
pub async fn permissions_contain(origins: &[String]) -> bool {
    let arg = to_js(&serde_json::json!({ "origins": origins }));
    call_async("permissions", "contains", &[arg])
        .await
        .ok()
        .and_then(|v| v.as_bool())
        == Some(true)
}

/// `permissions.remove({origins})`.
pub async fn permissions_remove(origins: &[String]) -> Result<(), String> {
    let arg = to_js(&serde_json::json!({ "origins": origins }));
    call_async("permissions", "remove", &[arg])
        .await
        .map(|_| ())
}

/// `scripting.getRegisteredContentScripts({ids})`.
pub async fn registered_scripts(ids: &[&str]) -> Vec<serde_json::Value> {
    let arg = to_js(&serde_json::json!({ "ids": ids }));
    match call_async("scripting", "getRegisteredContentScripts", &[arg]).await {
        Ok(v) => from_js(&v).as_array().cloned().unwrap_or_default(),
        Err(_) => vec![],
    }
}

/// `scripting.registerContentScripts(scripts)`.
pub async fn register_scripts(scripts: &serde_json::Value) -> Result<(), String> {
    call_async("scripting", "registerContentScripts", &[to_js(scripts)])
        .await
        .map(|_| ())
}

/// `scripting.unregisterContentScripts({ids})` (ids not registered are no error here).
pub async fn unregister_scripts(ids: &[&str]) {
    for id in ids {
        let arg = to_js(&serde_json::json!({ "ids": [id] }));
        let _ = call_async("scripting", "unregisterContentScripts", &[arg]).await;
    }
}

/// `scripting.executeScript` of extension files into a tab, in the isolated world or the
/// page's (`world: "MAIN"`).
pub async fn execute_files(tab: i32, files: &[&str], main_world: bool) -> Result<(), String> {
    let mut inj = serde_json::json!({ "target": { "tabId": tab }, "files": files });
    if main_world {
        inj["world"] = "MAIN".into();
    }
    call_async("scripting", "executeScript", &[to_js(&inj)])
        .await
        .map(|_| ())
}

/// Reads one key of `storage.local`.
pub async fn storage_get(key: &str) -> serde_json::Value {
    match call_async("storage.local", "get", &[JsValue::from_str(key)]).await {
        Ok(v) => from_js(&v)
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

/// Writes one key of `storage.local`.
pub async fn storage_set(key: &str, value: &serde_json::Value) {
    let o = Object::new();
    let _ = Reflect::set(&o, &JsValue::from_str(key), &to_js(value));
    let _ = call_async("storage.local", "set", &[o.into()]).await;
}

/// The extension options (defaults when none are stored).
pub async fn load_options() -> ExtOptions {
    ExtOptions::from_json(&storage_get("options").await)
}

/// Stores the extension options.
pub async fn save_options(o: &ExtOptions) {
    storage_set("options", &serde_json::to_value(o).unwrap_or_default()).await;
}
