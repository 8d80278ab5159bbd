//! The service worker's logic. `background.js` registers the listeners synchronously and
//! calls into these functions once the wasm is instantiated.

use std::cell::{Cell, RefCell};

use scheduler_api::{Event, QueueEvent, routes};
use serde_json::{Value, json};

use super::chrome;
use super::host::Host;
use super::util;
use crate::capture::checkpoint_folders;
use crate::state::queue::notification_for;

thread_local! {
    static STREAM_STARTED: Cell<bool> = const { Cell::new(false) };
    static PREV_QUEUE: RefCell<Option<QueueEvent>> = const { RefCell::new(None) };
    static OPTIONS_GEN: Cell<u32> = const { Cell::new(0) };
}

/// Id of the "all checkpoints" menu item.
pub const MENU_ALL: &str = "sdq-all";
/// Id of the folder parent menu item.
pub const MENU_FOLDER: &str = "sdq-folder";
const MENU_FOLDER_PREFIX: &str = "sdq-folder:";
const MENU_REFRESH: &str = "sdq-folder-refresh";
const PATTERNS: [&str; 3] = ["http://127.0.0.1/*", "http://localhost/*", "http://[::1]/*"];

/// Starts holding the host's event stream (once per worker lifetime).
pub fn start() {
    if STREAM_STARTED.with(|s| s.replace(true)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(event_loop());
}

async fn event_loop() {
    let mut last = chrome::storage_get("sse_last_id")
        .await
        .as_str()
        .map(str::to_owned);
    let mut backoff = 1000;
    loop {
        let generation = OPTIONS_GEN.with(Cell::get);
        let host = Host::load().await;
        let opts = chrome::load_options().await;
        let on_event = |id: Option<String>, ev: Event| {
            let prev = PREV_QUEUE.with(|p| p.borrow().clone());
            if let Some((title, msg)) = notification_for(&ev, &opts, prev.as_ref()) {
                let nid = format!(
                    "sdq-{}",
                    id.clone().unwrap_or_else(|| util::perf_now().to_string())
                );
                wasm_bindgen_futures::spawn_local(async move {
                    chrome::notify(&nid, &title, &msg).await;
                });
            }
            if let Event::Queue(q) = &ev {
                PREV_QUEUE.with(|p| *p.borrow_mut() = Some(q.clone()));
            }
            if let Some(id) = id {
                wasm_bindgen_futures::spawn_local(async move {
                    chrome::storage_set("sse_last_id", &Value::String(id)).await;
                });
            }
        };
        let same_options = || OPTIONS_GEN.with(Cell::get) == generation;
        match host
            .stream_events(last.clone(), &|| {}, &on_event, &same_options)
            .await
        {
            Ok(l) => {
                last = l.or(last);
                backoff = 1000;
            }
            Err(_) => backoff = (backoff * 2).min(15_000),
        }
        if let Value::String(s) = chrome::storage_get("sse_last_id").await {
            last = Some(s);
        }
        util::sleep_ms(backoff).await;
    }
}

/// (Re)creates the context menus, with one submenu entry per checkpoint folder.
pub async fn install_menus() {
    chrome::menu_remove_all().await;
    let contexts = json!(["page", "selection", "image", "link", "editable"]);
    chrome::menu_create(&json!({
        "id": MENU_ALL, "title": "Queue with all checkpoints",
        "contexts": contexts, "documentUrlPatterns": PATTERNS,
    }));
    chrome::menu_create(&json!({
        "id": MENU_FOLDER, "title": "Queue with checkpoints in folder…",
        "contexts": contexts, "documentUrlPatterns": PATTERNS,
    }));
    let host = Host::load().await;
    match host.get::<Vec<String>>(routes::SD_MODELS).await {
        Ok(titles) => {
            let folders = checkpoint_folders(&titles);
            if folders.is_empty() {
                chrome::menu_create(&json!({"id": "sdq-folder-none", "parentId": MENU_FOLDER,
                    "title": "(no folders)", "enabled": false, "contexts": contexts}));
            }
            for (dir, n) in folders {
                chrome::menu_create(&json!({
                    "id": format!("{MENU_FOLDER_PREFIX}{dir}"), "parentId": MENU_FOLDER,
                    "title": format!("{dir} ({n})"), "contexts": contexts,
                }));
            }
        }
        Err(e) => chrome::menu_create(&json!({"id": "sdq-folder-none", "parentId": MENU_FOLDER,
            "title": format!("(host: {e})"), "enabled": false, "contexts": contexts})),
    }
    chrome::menu_create(&json!({"id": MENU_REFRESH, "parentId": MENU_FOLDER,
        "title": "Refresh folders", "contexts": contexts}));
}

/// A context-menu click.
pub async fn on_menu_click(info: Value, tab: Value) -> Value {
    let item = info
        .get("menuItemId")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let tab_id = tab.get("id").and_then(|v| v.as_i64()).map(|v| v as i32);
    if item == MENU_REFRESH {
        install_menus().await;
        return json!({"ok": true});
    }
    let folder = if item == MENU_ALL {
        None
    } else if let Some(dir) = item.strip_prefix(MENU_FOLDER_PREFIX) {
        Some(dir.to_owned())
    } else {
        return json!({"ok": false, "error": "unknown menu item"});
    };
    answer(queue_all(folder, tab_id).await)
}

fn answer(r: Result<Value, String>) -> Value {
    match r {
        Ok(data) => json!({"ok": true, "data": data}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

async fn find_sdnext_tab() -> Option<i32> {
    let tabs = chrome::tabs_query(&json!({})).await;
    let sd: Vec<&Value> = tabs
        .iter()
        .filter(|t| {
            t.get("title")
                .and_then(|s| s.as_str())
                .is_some_and(|s| s.starts_with("SD.Next"))
        })
        .collect();
    sd.iter()
        .find(|t| t.get("active").and_then(|a| a.as_bool()) == Some(true))
        .or(sd.first())
        .and_then(|t| t.get("id")?.as_i64())
        .map(|i| i as i32)
}

/// Captures the request of the SD.Next tab and enqueues it with checkpoint `*` (or
/// `<folder>/*`): one task per checkpoint. The handler of the browser context menu.
pub async fn queue_all(folder: Option<String>, tab_id: Option<i32>) -> Result<Value, String> {
    let tab = match tab_id {
        Some(t) => t,
        None => find_sdnext_tab().await.ok_or("no SD.Next tab is open")?,
    };
    let cap = chrome::tab_message(tab, &json!({"type": "capture"})).await?;
    if cap.get("ok").and_then(|o| o.as_bool()) != Some(true) {
        return Err(cap
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("capture failed")
            .to_owned());
    }
    let mut req = cap.get("request").cloned().unwrap_or(json!({}));
    req["checkpoint"] = Value::String(match &folder {
        None => scheduler_api::ALL_CHECKPOINTS.to_owned(),
        Some(d) => format!("{}/*", d.trim_end_matches(['/', '\\'])),
    });
    let path = if cap.get("task_type").and_then(|t| t.as_str()) == Some("img2img") {
        routes::QUEUE_IMG2IMG
    } else {
        routes::QUEUE_TXT2IMG
    };
    let host = Host::load().await;
    let res = host.call("POST", path, Some(&req)).await;
    let text = match &res {
        Ok(v) => format!(
            "Queued {} task(s) ({})",
            v.get("task_ids")
                .and_then(|a| a.as_array())
                .map_or(1, |a| a.len()),
            folder
                .as_deref()
                .map_or("all checkpoints".to_owned(), |d| format!("folder {d}"))
        ),
        Err(e) => format!("Queue failed: {e}"),
    };
    let _ = chrome::tab_message(
        tab,
        &json!({"type": "toast", "text": text, "error": res.is_err()}),
    )
    .await;
    res
}

/// The options changed (host URL, token, notifications): reconnect the event stream with
/// them at its next chunk, and rebuild the menus from the (maybe new) host's checkpoints.
pub async fn options_changed() {
    OPTIONS_GEN.with(|g| g.set(g.get() + 1));
    // A new host has its own event ids.
    chrome::storage_set("sse_last_id", &Value::Null).await;
    install_menus().await;
}

/// A `chrome.runtime` message from the content script, the panel or the popup.
pub async fn on_message(msg: Value, sender: Value) -> Value {
    let sender_tab = sender
        .pointer("/tab/id")
        .and_then(|v| v.as_i64())
        .map(|v| v as i32);
    match msg.get("type").and_then(|t| t.as_str()).unwrap_or_default() {
        "host" => {
            let host = Host::load().await;
            let method = msg.get("method").and_then(|m| m.as_str()).unwrap_or("GET");
            let path = msg.get("path").and_then(|m| m.as_str()).unwrap_or("/");
            let body = msg.get("body").filter(|b| !b.is_null());
            answer(host.call(method, path, body).await)
        }
        "queue-all" => {
            let folder = msg
                .get("folder")
                .and_then(|f| f.as_str())
                .map(str::to_owned);
            let tab = msg
                .get("tab_id")
                .and_then(|v| v.as_i64())
                .map(|v| v as i32)
                .or(sender_tab);
            answer(queue_all(folder, tab).await)
        }
        "fill-page" => {
            let tab = match sender_tab {
                Some(t) => Some(t),
                None => find_sdnext_tab().await,
            };
            let Some(tab) = tab else {
                return json!({"ok": false, "error": "no SD.Next tab is open"});
            };
            let mut m = msg.clone();
            m["type"] = json!("fill");
            answer(chrome::tab_message(tab, &m).await)
        }
        "open-panel" => {
            chrome::open_tab("panel.html").await;
            json!({"ok": true})
        }
        "refresh-menus" => {
            install_menus().await;
            json!({"ok": true})
        }
        "options-changed" => {
            options_changed().await;
            json!({"ok": true})
        }
        other => json!({"ok": false, "error": format!("unknown message {other}")}),
    }
}
