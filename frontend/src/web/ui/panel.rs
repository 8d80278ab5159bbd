//! The task panel: Queue (running tasks with progress, ETA and preview; the pending list with
//! expected starts, drag-and-drop, run, edit, delete; clear, pause/resume, export/import;
//! the backends' section: state, figures, add, disable / drain / enable / remove) and
//! History (filter, sort, host-side search, list or gallery, bookmark, rename, requeue,
//! delete, clear), multi-select with bulk actions (one request each), the full-size viewer
//! and the comparison sheets of groups.
//!
//! Runs as an extension page (`panel.html`, also in the SD.Next page's drawer) and as the
//! web app the host serves at `/` (`app.html`: same origin, a token login when the host
//! wants one, no "send to" since there is no SD.Next page to fill).
//!
//! The root ([`PanelApp`]) holds the state, the live model and the row callbacks; each part
//! is drawn from its own typed inputs (`Header`, `Tabs`, `QueueBar`, `HistoryBar`,
//! `BulkBar`, the running cards, the backends section; the lists and the gallery are
//! components of their own) and its controls send typed messages ([`PanelMsg`]) that the
//! root applies in one place (`apply`). Size matters (every shipped wasm module stays
//! under 200,000 bytes gzip): the parts are plain structs with a `view`, not Yew
//! components (five function components cost 3.7 KB gzip), and every button's handler is
//! the same small closure (`click`).

use std::rc::Rc;

use scheduler_api::client::Method;
use scheduler_api::{
    BulkAction, BulkRequest, HistoryQuery, HistorySort, ImportRequest, ListName, ListQuery,
    MessageResponse, Selection, SelectionFilter, Task, routes,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{Element, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::backends::BackendMsg;
use super::gallery::Gallery;
use super::history::{ListKind, RowAction, TaskList};
use super::live::{
    Action, Conn, LiveState, Toasts, Wants, act, push_toast, spawn, use_host, use_live,
};
use super::notify::{RELOAD_EVENT, TOAST_EVENT};
use crate::messages::{Modal, ModalSpec};
use crate::state::queue::{fmt_eta, percent, task_summary};
use crate::state::{Click, Col, Columns, HistoryFilter, Picked, filter_label, task_label};
use crate::web::host::{Host, Platform, error_text};
use crate::web::util::{self, fmt_clock};

/// The `localStorage` key of the shown columns.
const COLUMNS_KEY: &str = "agent-scheduler-columns";

/// Mounts the panel (or, in the test build, with `?bench=N`, the bench page).
pub fn mount(platform: Platform) {
    #[cfg(feature = "test-hooks")]
    if super::bench::requested() {
        return;
    }
    super::mount_on_app::<PanelApp>(PanelProps { platform });
}

use super::confirm;

/// Starts a browser download of bytes.
pub fn download_bytes(bytes: &[u8], content_type: &str, name: &str) -> Result<(), String> {
    let b = crate::web::host::blob(bytes, content_type)?;
    let url = web_sys::Url::create_object_url_with_blob(&b).map_err(|e| format!("{e:?}"))?;
    let d = util::document();
    if let Ok(a) = d.create_element("a") {
        let _ = a.set_attribute("href", &url);
        let _ = a.set_attribute("download", name);
        if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
            a.click();
        }
    }
    Ok(())
}

/// Rows a viewer gets either side of the one it opens on (it walks through them).
const VIEWER_SPAN: usize = 100;

/// Asks the page's loader (`sdqOpenModal`, in `panel.js` / `app.js`) to show a modal: the
/// modal module is its own wasm module, loaded on first use.
fn open_modal(host: &Host, modal: Modal) {
    let spec = ModalSpec {
        base: host.base.clone(),
        token: host.token.clone(),
        web: host.is_web(),
        modal,
    };
    let opened = serde_json::to_string(&spec).ok().and_then(|json| {
        let f = js_sys::Reflect::get(&js_sys::global(), &"sdqOpenModal".into()).ok()?;
        f.dyn_ref::<js_sys::Function>()?
            .call1(&wasm_bindgen::JsValue::NULL, &json.into())
            .ok()
    });
    if opened.is_none() {
        super::notify::toast("The viewer could not be loaded", true);
    }
}

/// The panel's two views.
#[derive(Clone, Copy, PartialEq)]
pub enum View {
    /// The running and pending tasks.
    Queue,
    /// The finished tasks.
    History,
}

/// Props of [`PanelApp`].
#[derive(Properties, PartialEq)]
pub struct PanelProps {
    /// Extension page or web app.
    pub platform: Platform,
}

/// What the panel's controls ask for: one variant per button, select and input (the
/// backends section's own are [`BackendMsg`]). The panel root applies them (`apply`).
#[derive(Clone)]
pub enum PanelMsg {
    /// Pause, or resume when paused.
    PauseOrResume,
    /// Show the Queue or the History.
    Show(View),
    /// Open or close the columns menu.
    ColumnsMenu,
    /// Show (`true`) or hide a column.
    Column(Col, bool),
    /// Reload every list.
    Refresh,
    /// History: list or gallery.
    ToggleGallery,
    /// History: which finished tasks.
    Filter(HistoryFilter),
    /// History: the order.
    Sort(HistorySort),
    /// History: the search text (answered by the host after a pause in typing).
    Search(String),
    /// Delete every pending task that is not bookmarked (asks first).
    ClearQueue,
    /// Delete every finished task that is not bookmarked (asks first).
    ClearHistory,
    /// Requeue every failed task.
    RequeueFailed,
    /// Download the whole queue as the host exports it.
    Export,
    /// Import a file of exported tasks.
    Import(web_sys::File),
    /// Interrupt a running task.
    Interrupt(String),
    /// Web app: forget the token in this tab.
    SignOut,
    /// One request over the current selection.
    Bulk(BulkAction),
    /// Download the selection as JSON (`POST /tasks/export`) or its results as a zip
    /// (`POST /tasks/zip`): the route.
    BulkDownload(&'static str),
    /// Clear the selection.
    Deselect,
    /// The backends section.
    Backend(BackendMsg),
}

/// A click that sends `m`. One closure type serves every button (the panel's wasm module
/// stays small).
fn click(on: &Callback<PanelMsg>, m: PanelMsg) -> Callback<MouseEvent> {
    let on = on.clone();
    Callback::from(move |_| on.emit(m.clone()))
}

/// A change (or input) that sends the control's value through `f`.
fn changed<E: AsRef<Event>>(on: &Callback<PanelMsg>, f: fn(String) -> PanelMsg) -> Callback<E> {
    let on = on.clone();
    Callback::from(move |e: E| {
        if let Some(el) = e.as_ref().target_dyn_into::<Element>() {
            on.emit(f(value_of(&el)));
        }
    })
}

/// Everything [`apply`] changes or reads: the hooks' handles (cheap to clone).
#[derive(Clone)]
struct Ctx {
    host: Host,
    host_state: UseStateHandle<Option<Host>>,
    d: UseReducerDispatcher<LiveState>,
    view: UseStateHandle<View>,
    gallery: UseStateHandle<bool>,
    filter: UseStateHandle<HistoryFilter>,
    sort: UseStateHandle<HistorySort>,
    search: UseStateHandle<String>,
    cols: UseStateHandle<Columns>,
    cols_open: UseStateHandle<bool>,
    picked: UseStateHandle<Picked>,
    /// The host's refusal of the last backend added.
    bk_err: UseStateHandle<Option<String>>,
    /// The current list's selection as the host reads it.
    selection: Selection,
    /// How many tasks it holds.
    count: usize,
    /// Whether the queue is paused.
    paused: bool,
}

fn value_of(el: &Element) -> String {
    el.dyn_ref::<HtmlSelectElement>()
        .map(|s| s.value())
        .or_else(|| el.dyn_ref::<HtmlInputElement>().map(|i| i.value()))
        .unwrap_or_default()
}

/// Downloads what `GET`/`POST path` answers, as it comes (an export stays the host's JSON).
fn download_answer(c: &Ctx, method: Method, path: &'static str, body: Option<Selection>) {
    let (host, d) = (c.host.clone(), c.d.clone());
    spawn(async move {
        let api = host.api();
        let mut req = api.raw(method, path);
        if let Some(sel) = &body {
            req = match req.json(sel) {
                Ok(r) => r,
                Err(e) => return push_toast(&d, error_text(&e), true),
            };
        }
        let zip = path == routes::TASKS_ZIP;
        let (ct, name) = if zip {
            ("application/zip", "agent-scheduler-results")
        } else {
            ("application/json", "agent-scheduler")
        };
        let name = format!(
            "{name}-{}.{}",
            js_sys::Date::now() as u64,
            if zip { "zip" } else { "json" }
        );
        let r = match req.send().await {
            Ok(resp) if resp.is_success() => download_bytes(&resp.body, ct, &name),
            Ok(resp) => Err(
                scheduler_api::client::ClientError::refused(resp.status, &resp.body).to_string(),
            ),
            Err(e) => Err(error_text(&e)),
        };
        match r {
            Ok(()) => push_toast(&d, "Downloaded", false),
            Err(e) => push_toast(&d, format!("Download failed: {e}"), true),
        }
    });
}

/// Does what a control asked for: the one place every message of the panel is applied.
fn apply(c: &Ctx, msg: PanelMsg) {
    let d = &c.d;
    let api = c.host.api();
    let bulk = |action: BulkAction| {
        let req = BulkRequest {
            action,
            selection: c.selection.clone(),
        };
        let api = c.host.api();
        act(d, async move {
            api.bulk(&req).await.map(|r| MessageResponse::ok(r.message))
        });
        c.picked.set(Picked::default());
    };
    match msg {
        PanelMsg::PauseOrResume => {
            let paused = c.paused;
            act(d, async move {
                if paused {
                    api.resume().await
                } else {
                    api.pause().await
                }
            })
        }
        PanelMsg::Show(v) => c.view.set(v),
        PanelMsg::ColumnsMenu => c.cols_open.set(!*c.cols_open),
        PanelMsg::Column(col, on) => {
            let next = c.cols.with(col, on);
            util::store(COLUMNS_KEY, &next.to_text());
            c.cols.set(next);
        }
        PanelMsg::Refresh => d.dispatch(Action::ReloadAll),
        PanelMsg::ToggleGallery => c.gallery.set(!*c.gallery),
        PanelMsg::Filter(f) => c.filter.set(f),
        PanelMsg::Sort(s) => c.sort.set(s),
        PanelMsg::Search(q) => c.search.set(q),
        PanelMsg::ClearQueue => {
            if confirm("Delete every pending task that is not bookmarked?") {
                act(d, async move { api.clear_queue().await })
            }
        }
        PanelMsg::ClearHistory => {
            if confirm("Delete every finished task that is not bookmarked?") {
                act(d, async move { api.clear_history().await })
            }
        }
        PanelMsg::RequeueFailed => act(d, async move { api.requeue_failed().await }),
        PanelMsg::Export => download_answer(c, Method::Get, routes::EXPORT, None),
        PanelMsg::Import(file) => {
            let d = d.clone();
            spawn(async move {
                let text = wasm_bindgen_futures::JsFuture::from(file.text())
                    .await
                    .ok()
                    .and_then(|t| t.as_string());
                if let Some(content) = text {
                    act(&d, async move {
                        api.import(&ImportRequest { content })
                            .await
                            .map(|r| MessageResponse::ok(r.message))
                    });
                }
            });
        }
        PanelMsg::Interrupt(id) => act(d, async move { api.delete_task(&id).await }),
        PanelMsg::SignOut => c.host_state.set(Some(Host::web_with_token(""))),
        PanelMsg::Bulk(BulkAction::Delete) => {
            if confirm(&format!("Delete {} tasks?", c.count)) {
                bulk(BulkAction::Delete)
            }
        }
        PanelMsg::Bulk(action) => bulk(action),
        PanelMsg::BulkDownload(route) => {
            download_answer(c, Method::Post, route, Some(c.selection.clone()))
        }
        PanelMsg::Deselect => c.picked.set(Picked::default()),
        PanelMsg::Backend(m) => super::backends::apply(&c.host, d, &c.bk_err, m),
    }
}

/// The web app's login form (the host was started with `--token`).
fn login(tried: bool, host_state: &UseStateHandle<Option<Host>>) -> Html {
    let onsubmit = {
        let host_state = host_state.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let token = util::document()
                .get_element_by_id("sdq-token")
                .map(|i| value_of(&i))
                .unwrap_or_default();
            host_state.set(Some(Host::web_with_token(token.trim())));
        })
    };
    html! {
        <div class="panel" data-conn="unauthorized" data-platform="web">
            <form class="login" id="sdq-login" {onsubmit}>
                <h2>{"Agent Scheduler"}</h2>
                <p>{"This host asks for its access token (the one it was started with: "}<code>{"--token"}</code>{")."}</p>
                { if tried { html! { <p class="error">{"That token was refused."}</p> } } else { html! {} } }
                <label>{"Token"}<input id="sdq-token" type="password" autocomplete="current-password" required=true /></label>
                <button type="submit" id="sdq-login-submit">{"Sign in"}</button>
                <p class="meta">{"Kept for this browser tab only (sessionStorage, no cookie). Without TLS the token crosses the network in clear: use it on a trusted LAN."}</p>
            </form>
        </div>
    }
}

/// The header: the connection, the queue's end, sign out, pause/resume.: its inputs, drawn by `view`.
struct Header {
    /// The connection to the host.
    conn: Conn,
    /// The host's base URL (the online badge's title).
    base: String,
    /// "queue ends ≈ …".
    queue_end: String,
    /// Whether the queue is paused.
    paused: bool,
    /// Whether to offer "Sign out" (the web app with a token).
    sign_out: bool,
    /// Where the controls send their messages.
    on: Callback<PanelMsg>,
}

impl Header {
    fn view(&self) -> Html {
        let conn = match &self.conn {
            Conn::Online => {
                html! { <span class="conn online" title={self.base.clone()}>{"● online"}</span> }
            }
            Conn::Connecting => html! { <span class="conn">{"○ connecting"}</span> },
            Conn::Offline(e) => {
                html! { <span class="conn offline" title={e.clone()}>{"● offline"}</span> }
            }
            Conn::Unauthorized => html! { <span class="conn offline">{"● token refused"}</span> },
        };
        html! {
            <header>
                <strong>{"Agent Scheduler"}</strong>
                { conn }
                <span class="count eta">{ self.queue_end.clone() }</span>
                <span class="spacer"></span>
                { if self.sign_out { html! {
                    <button id="sdq-sign-out" onclick={click(&self.on, PanelMsg::SignOut)} title="Forget the token in this tab">{"Sign out"}</button>
                } } else { html! {} } }
                <button id="sdq-pause" class={if self.paused { "paused" } else { "" }} onclick={click(&self.on, PanelMsg::PauseOrResume)}>
                    { if self.paused { "▶ Resume" } else { "❚❚ Pause" } }
                </button>
            </header>
        }
    }
}

/// The Queue and History tabs and the columns menu.: its inputs, drawn by `view`.
struct Tabs {
    /// The view shown.
    view: View,
    /// Tasks in the queue (running and pending).
    queue_n: i64,
    /// Finished tasks the history shows.
    history_n: i64,
    /// The columns shown.
    cols: Columns,
    /// Whether the columns menu is open.
    cols_open: bool,
    /// Where the controls send their messages.
    on: Callback<PanelMsg>,
}

impl Tabs {
    fn view(&self) -> Html {
        let queue = self.view == View::Queue;
        let tab = |v: View, id: &'static str, label: &'static str, n: i64| {
            html! {
                <button class={if self.view == v { "tab active" } else { "tab" }} id={format!("sdq-tab-{id}")} onclick={click(&self.on, PanelMsg::Show(v))}>
                    { label }{" "}<small>{ n.to_string() }</small>
                </button>
            }
        };
        let cols_menu = if self.cols_open {
            let offered = Col::ALL.iter().filter(|c| !(queue && **c == Col::Thumb));
            html! { <div class="menu" id="sdq-columns-menu">{ for offered.map(|c| {
                let (on, col) = (self.on.clone(), *c);
                let onchange = Callback::from(move |e: Event| {
                    let checked = e
                        .target_dyn_into::<HtmlInputElement>()
                        .is_some_and(|i| i.checked());
                    on.emit(PanelMsg::Column(col, checked));
                });
                html! {
                    <label class="check"><input type="checkbox" data-col={c.key()} checked={self.cols.shows(*c)} {onchange} />{ c.label(queue) }</label>
                }
            }) }</div> }
        } else {
            html! {}
        };
        html! {
            <nav class="tabs">
                { tab(View::Queue, "queue", "Queue", self.queue_n) }
                { tab(View::History, "history", "History", self.history_n) }
                <span class="spacer"></span>
                <button id="sdq-columns" class="tab" onclick={click(&self.on, PanelMsg::ColumnsMenu)} title="Columns">{"Columns ▾"}</button>
                { cols_menu }
            </nav>
        }
    }
}

/// The queue's toolbar: clear, export, import, refresh and the counts.: its inputs, drawn by `view`.
struct QueueBar {
    /// Running tasks.
    running: usize,
    /// Pending tasks.
    pending: i64,
    /// "queue ends ≈ …".
    queue_end: String,
    /// Where the controls send their messages.
    on: Callback<PanelMsg>,
}

impl QueueBar {
    fn view(&self) -> Html {
        let on_import = {
            let on = self.on.clone();
            Callback::from(move |e: Event| {
                let Some(input) = e.target_dyn_into::<HtmlInputElement>() else {
                    return;
                };
                if let Some(file) = input.files().and_then(|f| f.get(0)) {
                    input.set_value("");
                    on.emit(PanelMsg::Import(file));
                }
            })
        };
        html! {
            <div class="toolbar">
                <button id="sdq-queue-clear" onclick={click(&self.on, PanelMsg::ClearQueue)}>{"Clear"}</button>
                <button id="sdq-export" onclick={click(&self.on, PanelMsg::Export)}>{"Export"}</button>
                <label class="button">{"Import"}<input id="sdq-import" onchange={on_import} type="file" accept="application/json" hidden=true /></label>
                <button onclick={click(&self.on, PanelMsg::Refresh)} title="Refresh">{"⟳"}</button>
                <span class="spacer"></span>
                <span class="count" id="sdq-counts">{ format!("{} running · {} pending", self.running, self.pending) }</span>
                <span class="count eta" id="sdq-queue-end" title="From each backend's measured speed and checkpoint loads, in the order the tasks will run">{ self.queue_end.clone() }</span>
            </div>
        }
    }
}

/// The history's toolbar: filter, sort, search, list or gallery, requeue failed, clear,
/// refresh.: its inputs, drawn by `view`.
struct HistoryBar {
    /// Which finished tasks.
    filter: HistoryFilter,
    /// Their order.
    sort: HistorySort,
    /// The search text as typed.
    search: String,
    /// Whether the gallery is shown.
    gallery: bool,
    /// Where the controls send their messages.
    on: Callback<PanelMsg>,
}

impl HistoryBar {
    fn view(&self) -> Html {
        let by_ckpt = self.sort == HistorySort::Checkpoint;
        let on = &self.on;
        html! {
            <div class="toolbar">
                <select id="sdq-filter" aria-label="Show"
                    onchange={changed::<Event>(on, |v| PanelMsg::Filter(HistoryFilter::parse(&v).unwrap_or_default()))}>
                    { for HistoryFilter::ALL.iter().map(|f| html! {
                        <option value={f.as_str()} selected={*f == self.filter}>{ filter_label(*f) }</option>
                    }) }
                </select>
                <select id="sdq-sort" aria-label="Sort"
                    onchange={changed::<Event>(on, |v| PanelMsg::Sort(if v == "checkpoint" { HistorySort::Checkpoint } else { HistorySort::Time }))}>
                    <option value="time" selected={!by_ckpt}>{"Newest first"}</option>
                    <option value="checkpoint" selected={by_ckpt}>{"By checkpoint"}</option>
                </select>
                <input id="sdq-search" type="search" placeholder="Search prompt, name, checkpoint…"
                    value={self.search.clone()} oninput={changed::<InputEvent>(on, PanelMsg::Search)} />
                <button id="sdq-mode" onclick={click(on, PanelMsg::ToggleGallery)} title="List or gallery">{ if self.gallery { "☰ List" } else { "▦ Gallery" } }</button>
                <button id="sdq-requeue-failed" onclick={click(on, PanelMsg::RequeueFailed)}>{"Requeue failed"}</button>
                <button id="sdq-history-clear" onclick={click(on, PanelMsg::ClearHistory)}>{"Clear"}</button>
                <button onclick={click(on, PanelMsg::Refresh)} title="Refresh">{"⟳"}</button>
            </div>
        }
    }
}

/// The actions on a selection, one request each.: its inputs, drawn by `view`.
struct BulkBar {
    /// Tasks selected.
    count: usize,
    /// Whether the selection is the queue's (else the history's).
    queue: bool,
    /// Where the controls send their messages.
    on: Callback<PanelMsg>,
}

impl BulkBar {
    fn view(&self) -> Html {
        let on = &self.on;
        let count = self.count;
        html! {
            <div class="bulk" id="sdq-bulk" data-count={count.to_string()}>
                <strong>{ format!("{count} selected") }</strong>
                { if self.queue { html! { <>
                    <button id="sdq-bulk-top" onclick={click(on, PanelMsg::Bulk(BulkAction::MoveTop))}>{"⤒ Top"}</button>
                    <button id="sdq-bulk-bottom" onclick={click(on, PanelMsg::Bulk(BulkAction::MoveBottom))}>{"⤓ Bottom"}</button>
                </> } } else { html! { <>
                    <button id="sdq-bulk-requeue" onclick={click(on, PanelMsg::Bulk(BulkAction::Requeue))}>{"↩ Requeue"}</button>
                    <button id="sdq-bulk-bookmark" onclick={click(on, PanelMsg::Bulk(BulkAction::Bookmark))}>{"★ Bookmark"}</button>
                    <button id="sdq-bulk-zip" onclick={click(on, PanelMsg::BulkDownload(routes::TASKS_ZIP))}>{"Download zip"}</button>
                </> } } }
                <button id="sdq-bulk-export" onclick={click(on, PanelMsg::BulkDownload(routes::TASKS_EXPORT))}>{"Export"}</button>
                <button id="sdq-bulk-delete" class="danger" onclick={click(on, PanelMsg::Bulk(BulkAction::Delete))}>{"✕ Delete"}</button>
                <button id="sdq-bulk-clear" onclick={click(on, PanelMsg::Deselect)} title="Clear the selection">{"Deselect"}</button>
            </div>
        }
    }
}

/// The history's page size: the extension's option (10..=1000), 50 in the web app.
#[hook]
fn use_page_size(platform: Platform) -> UseStateHandle<u32> {
    let page = use_state(|| 50u32);
    {
        let page = page.clone();
        use_effect_with((), move |_| {
            if platform == Platform::Extension {
                spawn(async move {
                    let size = crate::web::chrome::load_options().await.page_size;
                    page.set(size.clamp(10, 1000));
                });
            }
        });
    }
    page
}

/// Toasts and reloads asked by the modals (another wasm module), as window events.
#[hook]
fn use_modal_requests(d: UseReducerDispatcher<LiveState>) {
    use_effect_with((), move |_| {
        let on_toast = {
            let d = d.clone();
            Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
                let v = crate::web::chrome::from_js(&e.detail());
                let text = v["text"].as_str().unwrap_or_default().to_owned();
                push_toast(&d, text, v["error"].as_bool().unwrap_or(false));
            })
        };
        let on_reload =
            Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |_: web_sys::CustomEvent| {
                d.dispatch(Action::ReloadAll)
            });
        if let Some(w) = web_sys::window() {
            let _ =
                w.add_event_listener_with_callback(TOAST_EVENT, on_toast.as_ref().unchecked_ref());
            let _ = w
                .add_event_listener_with_callback(RELOAD_EVENT, on_reload.as_ref().unchecked_ref());
        }
        on_toast.forget();
        on_reload.forget();
    });
}

/// The open backends section follows the pool (states and figures change without a queue
/// event): every 3 s while it is open.
#[hook]
fn use_backends_poll(host: Option<Host>, d: UseReducerDispatcher<LiveState>) {
    use_effect_with(host, move |host| {
        let host = host.clone();
        let t = gloo::timers::callback::Interval::new(3000, move || {
            let open = util::document()
                .get_element_by_id("sdq-backends-section")
                .is_some_and(|e| e.has_attribute("open"));
            if let (true, Some(h)) = (open, host.clone()) {
                let d = d.clone();
                spawn(async move {
                    if let Ok(b) = h.api().backends().await {
                        d.dispatch(Action::Backends(b));
                    }
                });
            }
        });
        move || drop(t)
    });
}

/// The panel root.
#[function_component(PanelApp)]
pub fn panel_app(p: &PanelProps) -> Html {
    let host_state = use_host(p.platform);
    let host = (*host_state).clone();
    let view = use_state(|| View::Queue);
    let gallery = use_state(|| false);
    let filter = use_state(HistoryFilter::default);
    let sort = use_state(HistorySort::default);
    let search = use_state(String::new);
    let search_q = use_state(String::new);
    let page = use_page_size(p.platform);
    let cols = use_state(|| Columns::parse(util::stored(COLUMNS_KEY).as_deref()));
    let cols_open = use_state(|| false);
    let picked_q = use_state(Picked::default);
    let picked_h = use_state(Picked::default);
    let bk_err = use_state(|| None::<String>);
    // Debounced search: answered by the host (`?q=`).
    {
        let search_q = search_q.clone();
        use_effect_with((*search).clone(), move |s| {
            let s = s.clone();
            let t = gloo::timers::callback::Timeout::new(250, move || search_q.set(s));
            move || drop(t)
        });
    }
    // A new filter, sort or search is a new list: nothing of it is selected yet.
    {
        let picked_h = picked_h.clone();
        use_effect_with((*filter, *sort, (*search_q).clone()), move |_| {
            picked_h.set(Picked::default())
        });
    }
    let q_text = Some((*search_q).clone()).filter(|q| !q.is_empty());
    let hq = (
        HistoryQuery {
            status: Some(*filter),
            sort: Some(*sort),
        },
        ListQuery {
            limit: Some(i64::from(*page)),
            q: q_text.clone(),
            ..ListQuery::default()
        },
    );
    let live = use_live(
        host.clone(),
        Wants {
            queue_limit: 200,
            history: Some(hq.clone()),
            eta: true,
        },
    );
    use_modal_requests(live.dispatcher());
    use_backends_poll(host.clone(), live.dispatcher());
    let Some(host) = host else {
        return html! { <div class="panel loading">{"Loading…"}</div> };
    };
    if host.is_web() && live.conn == Conn::Unauthorized {
        return login(!host.token.is_empty(), &host_state);
    }
    let d = live.dispatcher();
    let q = &live.q;
    let queue = *view == View::Queue;
    let pending_total = (q.total - q.running.len() as i64).max(q.pending.len() as i64);
    let pending = Rc::new(q.pending.clone());
    let (picked, sel_filter, list_total) = if queue {
        (
            picked_q.clone(),
            SelectionFilter {
                list: ListName::Queue,
                status: None,
                q: None,
            },
            pending_total,
        )
    } else {
        (
            picked_h.clone(),
            SelectionFilter {
                list: ListName::History,
                status: Some(*filter),
                q: q_text.clone(),
            },
            live.hist_total,
        )
    };
    let count = picked.count(list_total.max(0) as usize);
    let paused = q.paused;
    let ctx = Ctx {
        host: host.clone(),
        host_state: host_state.clone(),
        d: d.clone(),
        view: view.clone(),
        gallery: gallery.clone(),
        filter: filter.clone(),
        sort: sort.clone(),
        search: search.clone(),
        cols: cols.clone(),
        cols_open: cols_open.clone(),
        picked: picked.clone(),
        bk_err: bk_err.clone(),
        selection: picked.to_selection(sel_filter),
        count,
        paused,
    };
    let on = Callback::from(move |m: PanelMsg| apply(&ctx, m));
    let on_row = row_actions(&host, &d, live.hist.clone(), pending.clone());
    let need_more = |history: bool| {
        let cursor = if history {
            live.hist_next.clone()
        } else {
            q.next_cursor.clone()
        };
        more_rows(&host, &d, &hq, history, cursor, q.running.len() as i64)
    };
    let queue_end = queue_end_text(
        live.eta.as_deref(),
        pending_total == 0 && q.running.is_empty(),
    );
    let hint = hint(&live.conn, host.is_web());
    let body = if queue {
        let backend_on = on.reform(PanelMsg::Backend);
        html! {
            <div class="queue">
                { QueueBar { running: q.running.len(), pending: pending_total, queue_end: queue_end.clone(), on: on.clone() }.view() }
                { super::backends::section(&live.backends, bk_err.as_deref(), &backend_on) }
                { for q.running.iter().map(|t| running_card(t, &live, &on)) }
                { if pending_total == 0 { html! { <div class="empty">{"No pending tasks"}</div> } } else { html! {
                    <TaskList kind={ListKind::Queue} rows={pending.clone()} total={pending_total} cols={*cols}
                        host={host.clone()} picked={(*picked_q).clone()} on_pick={pick_rows(&picked_q, pending.clone())}
                        on_pick_all={pick_all_rows(&picked_q)} on_need_more={need_more(false)} on_action={on_row.clone()}
                        eta={live.eta.clone()} />
                } } }
            </div>
        }
    } else {
        let list = if *gallery {
            html! { <Gallery rows={live.hist.clone()} total={live.hist_total} host={host.clone()}
            picked={(*picked_h).clone()} on_pick={pick_rows(&picked_h, live.hist.clone())}
            on_need_more={need_more(true)} on_action={on_row.clone()} /> }
        } else {
            html! { <TaskList kind={ListKind::History} rows={live.hist.clone()} total={live.hist_total} cols={*cols}
            host={host.clone()} picked={(*picked_h).clone()} on_pick={pick_rows(&picked_h, live.hist.clone())}
            on_pick_all={pick_all_rows(&picked_h)} on_need_more={need_more(true)} on_action={on_row.clone()} /> }
        };
        html! {
            <div class="history">
                { HistoryBar { filter: *filter, sort: *sort, search: (*search).clone(), gallery: *gallery, on: on.clone() }.view() }
                { list }
            </div>
        }
    };
    html! {
        <div class={if host.is_web() { "panel web" } else { "panel" }} data-conn={live.conn.word()}
             data-paused={paused.to_string()} data-platform={if host.is_web() { "web" } else { "extension" }}>
            { Header { conn: live.conn.clone(), base: host.base.clone(), queue_end, paused, sign_out: host.is_web() && !host.token.is_empty(), on: on.clone() }.view() }
            { hint }
            { q.hold_reason.as_ref().map(|r| html! {
                <div class="hold" id="sdq-hold" role="status">
                    { format!("On hold: {r}. The host starts no task until this is resolved, then resumes by itself.") }
                </div>
            }).unwrap_or_default() }
            { Tabs { view: *view, queue_n: q.running.len() as i64 + pending_total, history_n: live.hist_total, cols: *cols, cols_open: *cols_open, on: on.clone() }.view() }
            <main>{ body }</main>
            { if picked.is_empty() { html! {} } else { BulkBar { count, queue, on: on.clone() }.view() } }
            <Toasts toasts={live.toasts.clone()} />
        </div>
    }
}

/// Picking rows of a list (`rows` in the order shown).
fn pick_rows(
    picked: &UseStateHandle<Picked>,
    rows: Rc<Vec<Task>>,
) -> Callback<(usize, String, Click)> {
    let picked = picked.clone();
    Callback::from(move |(i, id, how): (usize, String, Click)| {
        let order: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
        let mut p = (*picked).clone();
        p.click(&order, i, &id, how);
        picked.set(p);
    })
}

/// Picking every row of a list (`true`), or none.
fn pick_all_rows(picked: &UseStateHandle<Picked>) -> Callback<bool> {
    let picked = picked.clone();
    Callback::from(move |on: bool| {
        let mut p = Picked::default();
        if on {
            p.select_all();
        }
        picked.set(p);
    })
}

/// What a row's own controls ask for (both lists and the gallery): the viewer over the
/// history rows around it, the edit form of a pending one, the group sheet, one request.
fn row_actions(
    host: &Host,
    d: &UseReducerDispatcher<LiveState>,
    hist: Rc<Vec<Task>>,
    pending: Rc<Vec<Task>>,
) -> Callback<RowAction> {
    let (host, d) = (host.clone(), d.clone());
    Callback::from(move |a: RowAction| {
        let api = host.api();
        match a {
            RowAction::Open(i) => {
                let from = i.saturating_sub(VIEWER_SPAN);
                let tasks = hist
                    .iter()
                    .skip(from)
                    .take(2 * VIEWER_SPAN + 1)
                    .cloned()
                    .collect();
                open_modal(
                    &host,
                    Modal::Viewer {
                        tasks,
                        start: i - from,
                    },
                );
            }
            RowAction::Edit(i) => {
                if let Some(t) = pending.get(i) {
                    open_modal(
                        &host,
                        Modal::Edit {
                            task: Box::new(t.clone()),
                        },
                    );
                }
            }
            RowAction::Sheet(group_id) => open_modal(&host, Modal::Sheet { group_id }),
            RowAction::Bookmark(id, on) => act(&d, async move { api.bookmark(&id, on).await }),
            RowAction::Rename(id, name) => act(&d, async move { api.rename(&id, &name).await }),
            RowAction::Requeue(id) => act(&d, async move {
                api.requeue(&id)
                    .await
                    .map(|r| MessageResponse::ok(r.message))
            }),
            RowAction::Delete(id) => act(&d, async move { api.delete_task(&id).await }),
            RowAction::Run(id) => act(&d, async move { api.run_task(&id).await }),
            RowAction::Move(id, target) => {
                d.dispatch(Action::Move(id.clone(), target.clone()));
                act(&d, async move { api.move_task(&id, &target).await });
            }
        }
    })
}

/// More rows as a list scrolls: from the last page's keyset cursor (the same cost at any
/// depth), else by offset. `hq` is the history's query; the queue's running tasks
/// (`running`) come first in `/queue`.
fn more_rows(
    host: &Host,
    d: &UseReducerDispatcher<LiveState>,
    hq: &(HistoryQuery, ListQuery),
    history: bool,
    cursor: Option<String>,
    running: i64,
) -> Callback<usize> {
    let (host, d, hq) = (host.clone(), d.clone(), hq.clone());
    Callback::from(move |offset: usize| {
        let (host, d, hq, cursor) = (host.clone(), d.clone(), hq.clone(), cursor.clone());
        spawn(async move {
            let api = host.api();
            let offset = cursor.is_none().then_some(offset as i64);
            if history {
                let q = ListQuery {
                    offset,
                    cursor,
                    ..hq.1
                };
                if let Ok(resp) = api.history_with(&hq.0, &q).await {
                    d.dispatch(Action::History { resp, append: true });
                }
            } else {
                let q = ListQuery {
                    limit: Some(200),
                    offset: offset.map(|o| o + running),
                    cursor,
                    q: None,
                };
                if let Ok(resp) = api.queue(&q).await {
                    d.dispatch(Action::QueueMore(resp));
                }
            }
        });
    })
}

/// "queue ends ≈ 14:05", "queue ends —" (no measured speed yet) or "queue empty".
fn queue_end_text(eta: Option<&scheduler_api::EtaResponse>, empty: bool) -> String {
    match eta.and_then(|e| e.queue_ends_at) {
        _ if empty => "queue empty".to_owned(),
        Some(ms) => format!("queue ends ≈ {}", fmt_clock(ms)),
        None => "queue ends —".to_owned(),
    }
}

/// What to do when the host does not answer, or wants a token.
fn hint(conn: &Conn, web: bool) -> Html {
    match conn {
        Conn::Offline(e) if web => {
            html! { <div class="hint">{ format!("The host does not answer ({e}).") }</div> }
        }
        Conn::Offline(e) => {
            html! { <div class="hint">{ format!("Host not reachable ({e}). Start it with: ") }
            <code>{"cargo run --release -p agent-scheduler -- serve"}</code></div> }
        }
        Conn::Unauthorized => {
            html! { <div class="hint">{"The host wants a token: set it in the extension's options."}</div> }
        }
        _ => html! {},
    }
}

/// The running task: the live preview, label, progress bar, step and ETA, interrupt.
fn running_card(t: &Task, live: &UseReducerHandle<LiveState>, on: &Callback<PanelMsg>) -> Html {
    let q = &live.q;
    let prog = q.progress.as_ref().filter(|pr| pr.task_id == t.id);
    let (pct, pct1) = percent(prog.map_or(0.0, |pr| pr.progress));
    let preview = q
        .preview
        .as_ref()
        .filter(|pv| pv.task_id == t.id)
        .map(|pv| pv.image.clone());
    let mut meta = format!("{pct}%");
    if let Some(pr) = prog {
        meta.push_str(&format!(
            " · step {}/{} · ETA {}",
            pr.step,
            pr.steps,
            fmt_eta(pr.eta_s)
        ));
    }
    if let Some(b) = &t.backend {
        meta.push_str(&format!(" · on {b}"));
    }
    if t.attempts > 0 {
        meta.push_str(&format!(" · attempt {}", t.attempts + 1));
    }
    html! {
        <div class="running" key={t.id.clone()} data-task-id={t.id.clone()}>
            { preview.map(|src| html! { <img class="preview" src={src} alt="preview" /> }).unwrap_or_default() }
            <div class="rmain">
                <div class="row1">
                    <span class="label" title={t.id.clone()}>{ task_label(t) }</span>
                    <button class="interrupt" title="Interrupt" onclick={click(on, PanelMsg::Interrupt(t.id.clone()))}>{"✖"}</button>
                </div>
                <div class="summary">{ task_summary(t) }</div>
                <div class="bar"><div class="fill" style={format!("width:{pct1}%")}></div></div>
                <div class="meta" data-progress={pct}>{ meta }</div>
            </div>
        </div>
    }
}
