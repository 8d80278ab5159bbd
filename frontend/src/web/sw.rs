//! The service worker's logic. `background.js` registers the listeners synchronously and
//! calls into these functions once the wasm is instantiated.

use std::cell::{Cell, RefCell};

use scheduler_api::client::StreamItem;
use scheduler_api::{EnqueueResponse, Event, QueueEvent};
use serde_json::{Value, json};

use super::chrome;
use super::host::{Host, error_text};
use super::{sites, util};
use crate::capture::checkpoint_folders;
use crate::messages::{Captured, Filled, Reply, ToContent, ToWorker};
use crate::state::queue::notification_for;

thread_local! {
    static STREAM_STARTED: Cell<bool> = const { Cell::new(false) };
    static PREV_QUEUE: RefCell<Option<QueueEvent>> = const { RefCell::new(None) };
    static OPTIONS_GEN: Cell<u32> = const { Cell::new(0) };
    static SITES_SYNCING: Cell<bool> = const { Cell::new(false) };
    static SITES_AGAIN: Cell<bool> = const { Cell::new(false) };
}

/// Id of the "all checkpoints" menu item.
pub const MENU_ALL: &str = "sdq-all";
/// Id of the folder parent menu item.
pub const MENU_FOLDER: &str = "sdq-folder";
const MENU_FOLDER_PREFIX: &str = "sdq-folder:";
const MENU_REFRESH: &str = "sdq-folder-refresh";

/// Starts holding the host's event stream (once per worker lifetime).
pub fn start() {
    if STREAM_STARTED.with(|s| s.replace(true)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(event_loop());
    // Re-register the enabled sites' content scripts (and drop revoked ones) at every start.
    wasm_bindgen_futures::spawn_local(sites_changed(false));
}

/// The enabled sites or their permissions changed (or the worker started): the registered
/// content scripts follow ([`sites::sync`]), one sync at a time (a change during one runs
/// another after it), and the menus are rebuilt for the new page patterns when `menus`.
pub async fn sites_changed(menus: bool) {
    if SITES_SYNCING.with(|s| s.replace(true)) {
        SITES_AGAIN.with(|a| a.set(true));
        return;
    }
    loop {
        if let Err(e) = sites::sync().await {
            util::console_log(&format!(
                "[agent-scheduler] content scripts not registered: {e}"
            ));
        }
        if !SITES_AGAIN.with(|a| a.replace(false)) {
            break;
        }
    }
    SITES_SYNCING.with(|s| s.set(false));
    if menus {
        install_menus().await;
    }
}

/// Holds the host's event stream for notifications, resuming after the last event seen
/// (kept in `chrome.storage`, so a restarted worker does not notify twice); reconnects to
/// the new host when the options change.
async fn event_loop() {
    loop {
        let generation = OPTIONS_GEN.with(Cell::get);
        let host = Host::load().await;
        let opts = chrome::load_options().await;
        let stored = chrome::storage_get("sse_last_id").await;
        let last = stored
            .as_u64()
            .or_else(|| stored.as_str().and_then(|s| s.parse().ok()));
        let mut stream = host.api().events(last).backoff(1000, 15_000);
        while OPTIONS_GEN.with(Cell::get) == generation {
            let Some(item) = stream.next().await else {
                break;
            };
            let StreamItem::Event { id, event } = item else {
                continue;
            };
            let prev = PREV_QUEUE.with(|p| p.borrow().clone());
            if let Some((title, msg)) = notification_for(&event, &opts, prev.as_ref()) {
                let nid = format!(
                    "sdq-{}",
                    id.map_or_else(|| util::perf_now().to_string(), |i| i.to_string())
                );
                wasm_bindgen_futures::spawn_local(async move {
                    chrome::notify(&nid, &title, &msg).await;
                });
            }
            if let Event::Queue(q) = &event {
                PREV_QUEUE.with(|p| *p.borrow_mut() = Some(q.clone()));
            }
            if let Some(id) = id {
                wasm_bindgen_futures::spawn_local(async move {
                    chrome::storage_set("sse_last_id", &json!(id)).await;
                });
            }
        }
    }
}

/// (Re)creates the context menus, with one submenu entry per checkpoint folder.
pub async fn install_menus() {
    chrome::menu_remove_all().await;
    let contexts = json!(["page", "selection", "image", "link", "editable"]);
    let patterns = crate::state::sites::all_patterns(&sites::stored().await);
    chrome::menu_create(&json!({
        "id": MENU_ALL, "title": "Queue with all checkpoints",
        "contexts": contexts, "documentUrlPatterns": patterns,
    }));
    chrome::menu_create(&json!({
        "id": MENU_FOLDER, "title": "Queue with checkpoints in folder…",
        "contexts": contexts, "documentUrlPatterns": patterns,
    }));
    let host = Host::load().await;
    match host.api().sd_models().await {
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
            "title": format!("(host: {})", error_text(&e)), "enabled": false, "contexts": contexts})),
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
        return crate::messages::ok_reply();
    }
    let folder = if item == MENU_ALL {
        None
    } else if let Some(dir) = item.strip_prefix(MENU_FOLDER_PREFIX) {
        Some(dir.to_owned())
    } else {
        return reply(Err::<(), _>("unknown menu item".to_owned()));
    };
    reply(queue_all(folder, tab_id).await)
}

fn reply<T: serde::Serialize>(r: Result<T, String>) -> Value {
    serde_json::to_value(Reply::from(r)).unwrap_or(Value::Null)
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
pub async fn queue_all(
    folder: Option<String>,
    tab_id: Option<i32>,
) -> Result<EnqueueResponse, String> {
    let tab = match tab_id {
        Some(t) => t,
        None => find_sdnext_tab().await.ok_or("no SD.Next tab is open")?,
    };
    let cap: Captured = chrome::ask_tab(tab, &ToContent::Capture { tab: None }).await?;
    let mut req = cap.request;
    req.checkpoint = match &folder {
        None => scheduler_api::CheckpointChoice::All,
        Some(d) => scheduler_api::CheckpointChoice::Folder(d.clone()),
    }
    .to_value();
    let res = Host::load()
        .await
        .api()
        .enqueue(cap.task_type, &req)
        .await
        .map_err(|e| error_text(&e));
    let text = match &res {
        Ok(v) => format!(
            "Queued {} task(s) ({})",
            v.task_ids.len(),
            folder
                .as_deref()
                .map_or("all checkpoints".to_owned(), |d| format!("folder {d}"))
        ),
        Err(e) => format!("Queue failed: {e}"),
    };
    let toast = ToContent::Toast {
        text,
        error: res.is_err(),
    };
    let _ = chrome::ask_tab::<()>(tab, &toast).await;
    res
}

/// The options changed (host URL, token, notifications): reconnect the event stream with
/// them at its next item (at the latest the next heartbeat), and rebuild the menus from the
/// (maybe new) host's checkpoints.
pub async fn options_changed() {
    OPTIONS_GEN.with(|g| g.set(g.get() + 1));
    // A new host has its own event ids.
    chrome::storage_set("sse_last_id", &Value::Null).await;
    install_menus().await;
}

/// A `chrome.runtime` message from the content script or the panel; the answer is a
/// [`Reply`].
pub async fn on_message(msg: Value, sender: Value) -> Value {
    let sender_tab = sender
        .pointer("/tab/id")
        .and_then(|v| v.as_i64())
        .map(|v| v as i32);
    let msg: ToWorker = match serde_json::from_value(msg) {
        Ok(m) => m,
        Err(e) => return reply(Err::<(), _>(format!("unknown message: {e}"))),
    };
    match msg {
        ToWorker::Checkpoints => reply(
            Host::load()
                .await
                .api()
                .sd_models()
                .await
                .map_err(|e| error_text(&e)),
        ),
        ToWorker::Enqueue { task_type, request } => reply(
            Host::load()
                .await
                .api()
                .enqueue(task_type, &request)
                .await
                .map_err(|e| error_text(&e)),
        ),
        ToWorker::FillPage {
            tab,
            mut params,
            task_id,
        } => {
            if let Some(id) = task_id {
                match Host::load().await.api().task_request(&id).await {
                    Ok(stored) => {
                        params = stored.request;
                        if let Some(ck) = stored.checkpoint {
                            params.insert("checkpoint".into(), Value::String(ck));
                        }
                    }
                    Err(e) => return reply(Err::<(), _>(error_text(&e))),
                }
            }
            let target = match sender_tab {
                Some(t) => Some(t),
                None => find_sdnext_tab().await,
            };
            let Some(target) = target else {
                return reply(Err::<(), _>("no SD.Next tab is open".to_owned()));
            };
            reply(chrome::ask_tab::<Filled>(target, &ToContent::Fill { tab, params }).await)
        }
    }
}
