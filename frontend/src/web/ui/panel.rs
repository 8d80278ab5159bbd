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
//! Size matters here (every shipped wasm module stays under 200,000 bytes gzip): the
//! panel's buttons, selects and inputs carry a `data-cmd` word and the root has one handler
//! per event kind ([`run`]), instead of a closure per control.

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

#[derive(Clone, Copy, PartialEq)]
enum View {
    Queue,
    History,
}

/// Props of [`PanelApp`].
#[derive(Properties, PartialEq)]
pub struct PanelProps {
    /// Extension page or web app.
    pub platform: Platform,
}

/// Everything a command changes or reads: the hooks' handles (cheap to clone).
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
}

/// The element a `data-cmd` event came from, and its word.
fn cmd_of(e: &Event) -> Option<(Element, String)> {
    let el = crate::web::util::closest_target(e, "[data-cmd]")?;
    let cmd = el.get_attribute("data-cmd")?;
    Some((el, cmd))
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

/// Runs the command of a control (`data-cmd`): one place for every button, select and input
/// of the panel.
fn run(c: &Ctx, cmd: &str, el: &Element, paused: bool) {
    let d = &c.d;
    if cmd.starts_with("backend-") && super::backends::run(&c.host, d, &c.bk_err, cmd, el) {
        return;
    }
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
    match cmd {
        "pause" => act(d, async move {
            if paused {
                api.resume().await
            } else {
                api.pause().await
            }
        }),
        "tab-queue" => c.view.set(View::Queue),
        "tab-history" => c.view.set(View::History),
        "cols" => c.cols_open.set(!*c.cols_open),
        "col" => {
            let on = el
                .dyn_ref::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            if let Some(col) = el
                .get_attribute("data-col")
                .and_then(|k| Col::ALL.into_iter().find(|c| c.key() == k))
            {
                let next = c.cols.with(col, on);
                util::store(COLUMNS_KEY, &next.to_text());
                c.cols.set(next);
            }
        }
        "refresh" => d.dispatch(Action::ReloadAll),
        "mode" => c.gallery.set(!*c.gallery),
        "filter" => c
            .filter
            .set(HistoryFilter::parse(&value_of(el)).unwrap_or_default()),
        "sort" => c.sort.set(if value_of(el) == "checkpoint" {
            HistorySort::Checkpoint
        } else {
            HistorySort::Time
        }),
        "search" => c.search.set(value_of(el)),
        "queue-clear" if confirm("Delete every pending task that is not bookmarked?") => {
            act(d, async move { api.clear_queue().await })
        }
        "history-clear" if confirm("Delete every finished task that is not bookmarked?") => {
            act(d, async move { api.clear_history().await })
        }
        "requeue-failed" => act(d, async move { api.requeue_failed().await }),
        "export" => download_answer(c, Method::Get, routes::EXPORT, None),
        "import" => {
            let Some(input) = el.dyn_ref::<HtmlInputElement>() else {
                return;
            };
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            input.set_value("");
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
        "interrupt" => {
            let id = el.get_attribute("data-id").unwrap_or_default();
            act(d, async move { api.delete_task(&id).await })
        }
        "sign-out" => c.host_state.set(Some(Host::web_with_token(""))),
        "bulk-top" => bulk(BulkAction::MoveTop),
        "bulk-bottom" => bulk(BulkAction::MoveBottom),
        "bulk-requeue" => bulk(BulkAction::Requeue),
        "bulk-bookmark" => bulk(BulkAction::Bookmark),
        "bulk-delete" if confirm(&format!("Delete {} tasks?", c.count)) => bulk(BulkAction::Delete),
        "bulk-export" => download_answer(
            c,
            Method::Post,
            routes::TASKS_EXPORT,
            Some(c.selection.clone()),
        ),
        "bulk-zip" => download_answer(
            c,
            Method::Post,
            routes::TASKS_ZIP,
            Some(c.selection.clone()),
        ),
        "bulk-clear" => c.picked.set(Picked::default()),
        _ => {}
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
    let page = use_state(|| 50u32);
    let cols = use_state(|| Columns::parse(util::stored(COLUMNS_KEY).as_deref()));
    let cols_open = use_state(|| false);
    let picked_q = use_state(Picked::default);
    let picked_h = use_state(Picked::default);
    let bk_err = use_state(|| None::<String>);
    {
        let (page, platform) = (page.clone(), p.platform);
        use_effect_with((), move |_| {
            if platform == Platform::Extension {
                spawn(async move {
                    let size = crate::web::chrome::load_options().await.page_size;
                    page.set(size.clamp(10, 1000));
                });
            }
        });
    }
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
    // Toasts and reloads asked by the modals (another wasm module).
    {
        let d = live.dispatcher();
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
                let _ = w.add_event_listener_with_callback(
                    TOAST_EVENT,
                    on_toast.as_ref().unchecked_ref(),
                );
                let _ = w.add_event_listener_with_callback(
                    RELOAD_EVENT,
                    on_reload.as_ref().unchecked_ref(),
                );
            }
            on_toast.forget();
            on_reload.forget();
        });
    }
    // The open backends section follows the pool (states and figures change without a
    // queue event): every 3 s while it is open.
    {
        let d = live.dispatcher();
        use_effect_with(host.clone(), move |host| {
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
    };
    let paused = q.paused;
    let on_cmd = |c: &Ctx| {
        let c = c.clone();
        Callback::from(move |e: Event| {
            if let Some((el, cmd)) = cmd_of(&e) {
                run(&c, &cmd, &el, paused);
            }
        })
    };
    let onclick = {
        let c = ctx.clone();
        Callback::from(move |e: MouseEvent| {
            // Changes come from onchange/oninput; a click on them is not a command.
            if let Some((el, cmd)) = cmd_of(&e)
                && !matches!(el.tag_name().as_str(), "SELECT" | "INPUT")
            {
                run(&c, &cmd, &el, paused);
            }
        })
    };
    let onchange = on_cmd(&ctx);
    let oninput = {
        let c = ctx.clone();
        Callback::from(move |e: InputEvent| {
            if let Some((el, cmd)) = cmd_of(&e) {
                run(&c, &cmd, &el, paused);
            }
        })
    };
    // Row picking and row actions (shared by both lists).
    let pick_cb = |picked: &UseStateHandle<Picked>, rows: Rc<Vec<Task>>| {
        let picked = picked.clone();
        Callback::from(move |(i, id, how): (usize, String, Click)| {
            let order: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
            let mut p = (*picked).clone();
            p.click(&order, i, &id, how);
            picked.set(p);
        })
    };
    let pick_all_cb = |picked: &UseStateHandle<Picked>| {
        let picked = picked.clone();
        Callback::from(move |on: bool| {
            let mut p = Picked::default();
            if on {
                p.select_all();
            }
            picked.set(p);
        })
    };
    let on_row = {
        let (host, d) = (host.clone(), d.clone());
        let (hist, pending) = (live.hist.clone(), pending.clone());
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
    };
    let running_n = q.running.len() as i64;
    // More rows as the list scrolls: from the last page's keyset cursor (the same cost at
    // any depth), else by offset.
    let need_more = |history: bool| {
        let (host, d, hq) = (host.clone(), d.clone(), hq.clone());
        let cursor = if history {
            live.hist_next.clone()
        } else {
            q.next_cursor.clone()
        };
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
                    // The running tasks come first in `/queue`.
                    let q = ListQuery {
                        limit: Some(200),
                        offset: offset.map(|o| o + running_n),
                        cursor,
                        q: None,
                    };
                    if let Ok(resp) = api.queue(&q).await {
                        d.dispatch(Action::QueueMore(resp));
                    }
                }
            });
        })
    };
    let conn = match &live.conn {
        Conn::Online => {
            html! { <span class="conn online" title={host.base.clone()}>{"● online"}</span> }
        }
        Conn::Connecting => html! { <span class="conn">{"○ connecting"}</span> },
        Conn::Offline(e) => {
            html! { <span class="conn offline" title={e.clone()}>{"● offline"}</span> }
        }
        Conn::Unauthorized => html! { <span class="conn offline">{"● token refused"}</span> },
    };
    let queue_end = match live.eta.as_deref().and_then(|e| e.queue_ends_at) {
        _ if pending_total == 0 && q.running.is_empty() => "queue empty".to_owned(),
        Some(ms) => format!("queue ends ≈ {}", fmt_clock(ms)),
        None => "queue ends —".to_owned(),
    };
    let hint = match &live.conn {
        Conn::Offline(e) if host.is_web() => {
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
    };
    let body = if queue {
        html! {
            <div class="queue">
                <div class="toolbar">
                    <button id="sdq-queue-clear" data-cmd="queue-clear">{"Clear"}</button>
                    <button id="sdq-export" data-cmd="export">{"Export"}</button>
                    <label class="button">{"Import"}<input id="sdq-import" data-cmd="import" type="file" accept="application/json" hidden=true /></label>
                    <button data-cmd="refresh" title="Refresh">{"⟳"}</button>
                    <span class="spacer"></span>
                    <span class="count" id="sdq-counts">{ format!("{} running · {} pending", q.running.len(), pending_total) }</span>
                    <span class="count eta" id="sdq-queue-end" title="From each backend's measured speed and checkpoint loads, in the order the tasks will run">{ queue_end.clone() }</span>
                </div>
                { super::backends::section(&live.backends, bk_err.as_deref()) }
                { for q.running.iter().map(|t| running_card(t, &live)) }
                { if pending_total == 0 { html! { <div class="empty">{"No pending tasks"}</div> } } else { html! {
                    <TaskList kind={ListKind::Queue} rows={pending.clone()} total={pending_total} cols={*cols}
                        host={host.clone()} picked={(*picked_q).clone()} on_pick={pick_cb(&picked_q, pending.clone())}
                        on_pick_all={pick_all_cb(&picked_q)} on_need_more={need_more(false)} on_action={on_row.clone()}
                        eta={live.eta.clone()} />
                } } }
            </div>
        }
    } else {
        let list = if *gallery {
            html! { <Gallery rows={live.hist.clone()} total={live.hist_total} host={host.clone()}
            picked={(*picked_h).clone()} on_pick={pick_cb(&picked_h, live.hist.clone())}
            on_need_more={need_more(true)} on_action={on_row.clone()} /> }
        } else {
            html! { <TaskList kind={ListKind::History} rows={live.hist.clone()} total={live.hist_total} cols={*cols}
            host={host.clone()} picked={(*picked_h).clone()} on_pick={pick_cb(&picked_h, live.hist.clone())}
            on_pick_all={pick_all_cb(&picked_h)} on_need_more={need_more(true)} on_action={on_row.clone()} /> }
        };
        let by_ckpt = *sort == HistorySort::Checkpoint;
        html! {
            <div class="history">
                <div class="toolbar">
                    <select id="sdq-filter" data-cmd="filter" aria-label="Show">
                        { for HistoryFilter::ALL.iter().map(|f| html! {
                            <option value={f.as_str()} selected={*f == *filter}>{ filter_label(*f) }</option>
                        }) }
                    </select>
                    <select id="sdq-sort" data-cmd="sort" aria-label="Sort">
                        <option value="time" selected={!by_ckpt}>{"Newest first"}</option>
                        <option value="checkpoint" selected={by_ckpt}>{"By checkpoint"}</option>
                    </select>
                    <input id="sdq-search" data-cmd="search" type="search" placeholder="Search prompt, name, checkpoint…"
                        value={(*search).clone()} />
                    <button id="sdq-mode" data-cmd="mode" title="List or gallery">{ if *gallery { "☰ List" } else { "▦ Gallery" } }</button>
                    <button id="sdq-requeue-failed" data-cmd="requeue-failed">{"Requeue failed"}</button>
                    <button id="sdq-history-clear" data-cmd="history-clear">{"Clear"}</button>
                    <button data-cmd="refresh" title="Refresh">{"⟳"}</button>
                </div>
                { list }
            </div>
        }
    };
    let bulk_bar = if picked.is_empty() {
        html! {}
    } else {
        html! {
            <div class="bulk" id="sdq-bulk" data-count={count.to_string()}>
                <strong>{ format!("{count} selected") }</strong>
                { if queue { html! { <>
                    <button id="sdq-bulk-top" data-cmd="bulk-top">{"⤒ Top"}</button>
                    <button id="sdq-bulk-bottom" data-cmd="bulk-bottom">{"⤓ Bottom"}</button>
                </> } } else { html! { <>
                    <button id="sdq-bulk-requeue" data-cmd="bulk-requeue">{"↩ Requeue"}</button>
                    <button id="sdq-bulk-bookmark" data-cmd="bulk-bookmark">{"★ Bookmark"}</button>
                    <button id="sdq-bulk-zip" data-cmd="bulk-zip">{"Download zip"}</button>
                </> } } }
                <button id="sdq-bulk-export" data-cmd="bulk-export">{"Export"}</button>
                <button id="sdq-bulk-delete" class="danger" data-cmd="bulk-delete">{"✕ Delete"}</button>
                <button id="sdq-bulk-clear" data-cmd="bulk-clear" title="Clear the selection">{"Deselect"}</button>
            </div>
        }
    };
    let cols_menu = if *cols_open {
        let offered = Col::ALL.iter().filter(|c| !(queue && **c == Col::Thumb));
        html! { <div class="menu" id="sdq-columns-menu">{ for offered.map(|c| html! {
            <label class="check"><input type="checkbox" data-cmd="col" data-col={c.key()} checked={cols.shows(*c)} />{ c.label(queue) }</label>
        }) }</div> }
    } else {
        html! {}
    };
    let tab = |v: View, id: &'static str, label: &'static str, n: i64| {
        html! {
            <button class={if *view == v { "tab active" } else { "tab" }} id={format!("sdq-tab-{id}")} data-cmd={format!("tab-{id}")}>
                { label }{" "}<small>{ n.to_string() }</small>
            </button>
        }
    };
    html! {
        <div class={if host.is_web() { "panel web" } else { "panel" }} data-conn={live.conn.word()}
             data-paused={paused.to_string()} data-platform={if host.is_web() { "web" } else { "extension" }}
             {onclick} {onchange} {oninput}>
            <header>
                <strong>{"Agent Scheduler"}</strong>
                { conn }
                <span class="count eta">{ queue_end }</span>
                <span class="spacer"></span>
                { if host.is_web() && !host.token.is_empty() { html! {
                    <button id="sdq-sign-out" data-cmd="sign-out" title="Forget the token in this tab">{"Sign out"}</button>
                } } else { html! {} } }
                <button id="sdq-pause" class={if paused { "paused" } else { "" }} data-cmd="pause">
                    { if paused { "▶ Resume" } else { "❚❚ Pause" } }
                </button>
            </header>
            { hint }
            { q.hold_reason.as_ref().map(|r| html! {
                <div class="hold" id="sdq-hold" role="status">
                    { format!("On hold: {r}. The host starts no task until this is resolved, then resumes by itself.") }
                </div>
            }).unwrap_or_default() }
            <nav class="tabs">
                { tab(View::Queue, "queue", "Queue", q.running.len() as i64 + pending_total) }
                { tab(View::History, "history", "History", live.hist_total) }
                <span class="spacer"></span>
                <button id="sdq-columns" class="tab" data-cmd="cols" title="Columns">{"Columns ▾"}</button>
                { cols_menu }
            </nav>
            <main>{ body }</main>
            { bulk_bar }
            <Toasts toasts={live.toasts.clone()} />
        </div>
    }
}

/// The running task: the live preview, label, progress bar, step and ETA, interrupt.
fn running_card(t: &Task, live: &UseReducerHandle<LiveState>) -> Html {
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
                    <button class="interrupt" title="Interrupt" data-cmd="interrupt" data-id={t.id.clone()}>{"✖"}</button>
                </div>
                <div class="summary">{ task_summary(t) }</div>
                <div class="bar"><div class="fill" style={format!("width:{pct1}%")}></div></div>
                <div class="meta" data-progress={pct}>{ meta }</div>
            </div>
        </div>
    }
}
