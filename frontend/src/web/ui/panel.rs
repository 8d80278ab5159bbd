//! The task panel: Queue (running task with progress/ETA/preview, pending list with
//! drag-and-drop, run, delete/interrupt, clear, pause/resume, export/import, inline edit)
//! and History (filter, host-side search, bookmark, rename, requeue, delete, clear, detail
//! view with gallery, infotext, zip, send to txt2img/img2img). Runs as an extension page
//! (`panel.html`), embedded in the SD.Next page's drawer or opened as a tab.

use std::rc::Rc;

use scheduler_api::{
    ImportRequest, ListQuery, MessageResponse, ResultImage, Task, TaskStatus, UpdateTaskRequest,
};
use serde_json::{Map, Value};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::history::{HistAction, HistoryList};
use super::live::{
    Action, Conn, LiveState, Toasts, act, push_toast, toggle_pause, use_host, use_live,
};
use crate::messages::{Filled, ToWorker};
use crate::state::queue::{fmt_eta, percent, task_summary};
use crate::state::{HistoryFilter, drop_target, filter_label, task_label};
use crate::web::host::{Host, blob, error_text};
use crate::web::{chrome, util};

/// Mounts the panel (or, in the test build, with `?bench=N`, the history list over N
/// synthetic tasks, recording its first render time in `body[data-first-render-ms]`).
pub fn mount() {
    #[cfg(feature = "test-hooks")]
    if bench::requested() {
        return;
    }
    super::mount_on_app::<PanelApp>();
}

/// Test hook: `?bench=N` renders the history list over N synthetic tasks.
#[cfg(feature = "test-hooks")]
mod bench {
    use super::*;
    use serde_json::json;

    /// Starts the bench when the URL asks for it.
    pub fn requested() -> bool {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        if let Some(n) = search
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix("bench="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            wasm_bindgen_futures::spawn_local(bench(n));
            return true;
        }
        false
    }

    fn bench_task(i: usize) -> Task {
        let mut params = Map::new();
        params.insert("prompt".into(), json!(format!("benchmark prompt {i}")));
        params.insert("steps".into(), json!(20));
        params.insert("width".into(), json!(512));
        params.insert("height".into(), json!(512));
        Task {
            id: format!("bench-{i:05}"),
            api_task_id: None,
            api_task_callback: None,
            name: None,
            task_type: scheduler_api::TaskType::Txt2img,
            status: TaskStatus::Done,
            params,
            priority: i as i64,
            position: None,
            result: None,
            bookmarked: false,
            created_at: scheduler_api::WireTime::Epoch(0),
            updated_at: scheduler_api::WireTime::Epoch(0),
            attempts: 1,
            backend: None,
            error: None,
            image_count: 1,
            has_page_snapshot: false,
            next_run_at: None,
            projection: None,
            group_id: None,
            started_at: None,
            finished_at: None,
        }
    }

    async fn bench(n: usize) {
        use crate::web::ui::history::HistoryListProps;
        let d = util::document();
        let Some(root) = d.get_element_by_id("app") else {
            return;
        };
        let _ = root.set_attribute("style", "height:100vh;display:flex;flex-direction:column");
        let rows = Rc::new((0..n).map(bench_task).collect::<Vec<_>>());
        let t0 = util::perf_now();
        let props = HistoryListProps {
            rows,
            total: n as i64,
            on_need_more: Callback::noop(),
            on_action: Callback::noop(),
        };
        let _handle =
            yew::Renderer::<HistoryList>::with_root_and_props(root.clone(), props).render();
        for _ in 0..1000 {
            if root.query_selector(".hrow").ok().flatten().is_some() {
                break;
            }
            util::sleep_ms(0).await;
        }
        let ms = util::perf_now() - t0;
        let rendered = root
            .query_selector_all(".hrow")
            .map(|l| l.length())
            .unwrap_or(0);
        if let Some(b) = d.body() {
            let _ = b.set_attribute("data-first-render-ms", &format!("{ms:.1}"));
            let _ = b.set_attribute("data-rendered-rows", &rendered.to_string());
        }
        std::mem::forget(_handle);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum View {
    Queue,
    History,
}

fn confirm(msg: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(msg).ok())
        .unwrap_or(false)
}

fn download(blob: &web_sys::Blob, name: &str) {
    let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else {
        return;
    };
    let d = util::document();
    if let Ok(a) = d.create_element("a") {
        let _ = a.set_attribute("href", &url);
        let _ = a.set_attribute("download", name);
        if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
            a.click();
        }
    }
}

/// The panel root.
#[function_component(PanelApp)]
pub fn panel_app() -> Html {
    let host = use_host();
    let view = use_state(|| View::Queue);
    let filter = use_state(HistoryFilter::default);
    let search = use_state(String::new);
    let search_q = use_state(String::new);
    let page = use_state(|| 50u32);
    {
        let page = page.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                page.set(chrome::load_options().await.page_size.clamp(10, 1000));
            });
            || ()
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
    let hq: (HistoryFilter, ListQuery) = (
        *filter,
        ListQuery {
            limit: Some(i64::from(*page)),
            offset: None,
            q: Some((*search_q).clone()).filter(|q| !q.is_empty()),
            ..ListQuery::default()
        },
    );
    let live = use_live(host.clone(), Some(hq.clone()));
    let detail = use_state(|| None::<String>);
    let editing = use_state(|| None::<Task>);

    let Some(host) = host else {
        return html! { <div class="panel loading">{"Loading…"}</div> };
    };
    let d = live.dispatcher();
    let conn = match &live.conn {
        Conn::Online => {
            html! { <span class="conn online" title="Connected to the host">{"● online"}</span> }
        }
        Conn::Connecting => html! { <span class="conn">{"○ connecting"}</span> },
        Conn::Offline(e) => {
            html! { <span class="conn offline" title={e.clone()}>{"● offline"}</span> }
        }
    };
    let pause = toggle_pause(&host, &d, live.q.paused);
    let tab_btn = |v: View, label: &str, count: String| {
        let view2 = view.clone();
        html! {
            <button class={classes!("tab", (*view == v).then_some("active"))} id={format!("sdq-tab-{}", label.to_lowercase())}
                onclick={Callback::from(move |_| view2.set(v))}>{ label }{" "}<small>{ count }</small></button>
        }
    };
    let offline_hint = if let Conn::Offline(e) = &live.conn {
        html! { <div class="hint">{ format!("Host not reachable ({e}). Start it with: ") }
        <code>{"cargo run --release -p agent-scheduler -- serve"}</code></div> }
    } else {
        html! {}
    };
    let body = match *view {
        View::Queue => {
            html! { <QueueView host={host.clone()} live={live.clone()} editing={editing.clone()} /> }
        }
        View::History => {
            let on_action = {
                let (host, d, detail) = (host.clone(), d.clone(), detail.clone());
                Callback::from(move |a: HistAction| {
                    let api = host.api();
                    match a {
                        HistAction::Bookmark(id, on) => {
                            act(&d, async move { api.bookmark(&id, on).await })
                        }
                        HistAction::Rename(id, name) => {
                            act(&d, async move { api.rename(&id, &name).await })
                        }
                        HistAction::Requeue(id) => act(&d, async move {
                            api.requeue(&id)
                                .await
                                .map(|r| MessageResponse::ok(r.message))
                        }),
                        HistAction::Delete(id) => {
                            act(&d, async move { api.delete_task(&id).await })
                        }
                        HistAction::Open(id) => detail.set(Some(id)),
                    }
                })
            };
            let on_need_more = {
                let (host, d, hq) = (host.clone(), d.clone(), hq.clone());
                Callback::from(move |offset: usize| {
                    let (host, d, hq) = (host.clone(), d.clone(), hq.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        let (filter, q) = hq;
                        let q = ListQuery {
                            offset: Some(offset as i64),
                            ..q
                        };
                        if let Ok(resp) = host.api().history(filter, &q).await {
                            d.dispatch(Action::History { resp, append: true });
                        }
                    });
                })
            };
            let on_filter = {
                let filter = filter.clone();
                Callback::from(move |e: Event| {
                    if let Some(s) = e
                        .target()
                        .and_then(|t| t.dyn_into::<HtmlSelectElement>().ok())
                    {
                        filter.set(HistoryFilter::parse(&s.value()).unwrap_or_default());
                    }
                })
            };
            let on_search = {
                let search = search.clone();
                Callback::from(move |e: InputEvent| {
                    if let Some(i) = e
                        .target()
                        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
                    {
                        search.set(i.value());
                    }
                })
            };
            let requeue_failed = {
                let (host, d) = (host.clone(), d.clone());
                Callback::from(move |_| {
                    let api = host.api();
                    act(&d, async move { api.requeue_failed().await })
                })
            };
            let clear = {
                let (host, d) = (host.clone(), d.clone());
                Callback::from(move |_| {
                    if confirm("Delete every finished task that is not bookmarked?") {
                        let api = host.api();
                        act(&d, async move { api.clear_history().await });
                    }
                })
            };
            let refresh = {
                let d = d.clone();
                Callback::from(move |_| d.dispatch(Action::ReloadHistory))
            };
            html! {
                <div class="history">
                    <div class="toolbar">
                        <select id="sdq-filter" onchange={on_filter}>
                            { for HistoryFilter::ALL.iter().map(|f| html! {
                                <option value={f.as_str()} selected={*f == *filter}>{ filter_label(*f) }</option>
                            }) }
                        </select>
                        <input id="sdq-search" type="search" placeholder="Search prompt, name, checkpoint…"
                            value={(*search).clone()} oninput={on_search} />
                        <button id="sdq-requeue-failed" onclick={requeue_failed}>{"Requeue failed"}</button>
                        <button id="sdq-history-clear" onclick={clear}>{"Clear"}</button>
                        <button onclick={refresh} title="Refresh">{"⟳"}</button>
                    </div>
                    <HistoryList rows={live.hist.clone()} total={live.hist_total} {on_need_more} {on_action} />
                </div>
            }
        }
    };
    let detail_view = match (*detail).clone() {
        Some(id) => {
            let close = {
                let detail = detail.clone();
                Callback::from(move |_| detail.set(None))
            };
            let k = id.clone();
            html! { <DetailView key={k} {id} host={host.clone()} live={live.clone()} on_close={close} /> }
        }
        None => html! {},
    };
    let edit_view = match (*editing).clone() {
        Some(t) => {
            let close = {
                let editing = editing.clone();
                Callback::from(move |_| editing.set(None))
            };
            let k = t.id.clone();
            html! { <EditView key={k} task={t} host={host.clone()} live={live.clone()} on_close={close} /> }
        }
        None => html! {},
    };
    html! {
        <div class="panel" data-conn={match &live.conn { Conn::Online => "online", Conn::Connecting => "connecting", Conn::Offline(_) => "offline" }}
             data-paused={live.q.paused.to_string()}>
            <header>
                <strong>{"Agent Scheduler"}</strong>
                { conn }
                <span class="spacer"></span>
                <button id="sdq-pause" class={classes!(live.q.paused.then_some("paused"))} onclick={pause}>
                    { if live.q.paused { "▶ Resume" } else { "❚❚ Pause" } }
                </button>
            </header>
            { offline_hint }
            { live.q.hold_reason.clone().map(|r| html! {
                <div class="hold" id="sdq-hold" role="status">
                    { format!("On hold: {r}. The host starts no task until this is resolved, then resumes by itself.") }
                </div>
            }).unwrap_or_default() }
            <nav class="tabs">
                { tab_btn(View::Queue, "Queue", format!("{}", live.q.running.len() + live.q.pending.len())) }
                { tab_btn(View::History, "History", format!("{}", live.hist_total)) }
            </nav>
            <main>{ body }</main>
            { detail_view }
            { edit_view }
            <Toasts toasts={live.toasts.clone()} />
        </div>
    }
}

/// "attempt N failed · next try HH:MM" for a task that failed a try and waits to retry.
fn retry_note(t: &Task) -> Html {
    if t.attempts == 0 && t.next_run_at.is_none() {
        return html! {};
    }
    let next = t
        .next_run_at
        .as_ref()
        .map(|n| format!(" · next try {}", util::fmt_time(n)))
        .unwrap_or_default();
    let plural = if t.attempts == 1 { "" } else { "s" };
    html! {
        <span class="retry" data-attempts={t.attempts.to_string()} title={t.error.clone().unwrap_or_default()}>
            { format!("{} failed attempt{plural}{next}", t.attempts) }
        </span>
    }
}

#[derive(Properties, PartialEq)]
struct QueueProps {
    host: Host,
    live: UseReducerHandle<LiveState>,
    editing: UseStateHandle<Option<Task>>,
}

#[function_component(QueueView)]
fn queue_view(p: &QueueProps) -> Html {
    let drag = use_state(|| None::<String>);
    let gap = use_state(|| None::<usize>);
    let d = p.live.dispatcher();
    let q = &p.live.q;
    let host = p.host.clone();

    let running = q.running.iter().map(|t| {
        let prog = q.progress.as_ref().filter(|pr| pr.task_id == t.id);
        let (pct, pct1) = percent(prog.map_or(0.0, |pr| pr.progress));
        let preview = q.preview.as_ref().filter(|pv| pv.task_id == t.id).map(|pv| pv.image.clone());
        let interrupt = {
            let (host, d, id) = (host.clone(), d.clone(), t.id.clone());
            Callback::from(move |_| {
                let (api, id) = (host.api(), id.clone());
                act(&d, async move { api.delete_task(&id).await })
            })
        };
        html! {
            <div class="running" key={t.id.clone()} data-task-id={t.id.clone()}>
                <div class="row1">
                    <span class="label">{ task_label(t) }</span>
                    <button class="interrupt" title="Interrupt" onclick={interrupt}>{"✖"}</button>
                </div>
                <div class="summary">{ task_summary(t) }</div>
                <div class="bar"><div class="fill" style={format!("width:{pct1}%")}></div></div>
                <div class="meta" data-progress={pct.clone()}>
                    { format!("{pct}%") }
                    { prog.map(|pr| format!(" · step {}/{} · ETA {}", pr.step, pr.steps, fmt_eta(pr.eta_s))).unwrap_or_default() }
                </div>
                { preview.map(|src| html! { <img class="preview" src={src} alt="preview" /> }).unwrap_or_default() }
            </div>
        }
    });

    let ids: Vec<String> = q.pending.iter().map(|t| t.id.clone()).collect();
    let pending = q.pending.iter().enumerate().map(|(i, t)| {
        let id = t.id.clone();
        let ondragstart = {
            let (drag, id) = (drag.clone(), id.clone());
            Callback::from(move |e: DragEvent| {
                if let Some(dt) = e.data_transfer() {
                    let _ = dt.set_data("text/plain", &id);
                    dt.set_effect_allowed("move");
                }
                drag.set(Some(id.clone()));
            })
        };
        let ondragover = {
            let gap = gap.clone();
            Callback::from(move |e: DragEvent| {
                e.prevent_default();
                let below = e
                    .current_target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .map(|el| {
                        let r = el.get_bounding_client_rect();
                        (e.client_y() as f64) > r.top() + r.height() / 2.0
                    })
                    .unwrap_or(false);
                let g = i + usize::from(below);
                if *gap != Some(g) {
                    gap.set(Some(g));
                }
            })
        };
        let ondrop = {
            let (drag, gap, ids, host, d) = (drag.clone(), gap.clone(), ids.clone(), host.clone(), d.clone());
            Callback::from(move |e: DragEvent| {
                e.prevent_default();
                let dragged = (*drag).clone().or_else(|| e.data_transfer().and_then(|dt| dt.get_data("text/plain").ok()));
                let g = (*gap).unwrap_or(i);
                drag.set(None);
                gap.set(None);
                let Some(dragged) = dragged else { return };
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                if let Some(target) = drop_target(&refs, &dragged, g) {
                    d.dispatch(Action::Move(dragged.clone(), target.clone()));
                    let api = host.api();
                    act(&d, async move { api.move_task(&dragged, &target).await });
                }
            })
        };
        let ondragend = {
            let (drag, gap) = (drag.clone(), gap.clone());
            Callback::from(move |_: DragEvent| {
                drag.set(None);
                gap.set(None);
            })
        };
        let run = {
            let (host, d, id) = (host.clone(), d.clone(), id.clone());
            Callback::from(move |_| {
                let (api, id) = (host.api(), id.clone());
                act(&d, async move { api.run_task(&id).await })
            })
        };
        let delete = {
            let (host, d, id) = (host.clone(), d.clone(), id.clone());
            Callback::from(move |_| {
                let (api, id) = (host.api(), id.clone());
                act(&d, async move { api.delete_task(&id).await })
            })
        };
        let edit = {
            let (editing, t) = (p.editing.clone(), t.clone());
            Callback::from(move |_| editing.set(Some(t.clone())))
        };
        let marker = match *gap {
            Some(g) if g == i => "drop-above",
            Some(g) if g == i + 1 && i + 1 == ids.len() => "drop-below",
            _ => "",
        };
        html! {
            <div key={id.clone()} class={classes!("prow", marker, (drag.as_deref() == Some(id.as_str())).then_some("dragging"))}
                data-task-id={id.clone()} draggable="true" {ondragstart} {ondragover} {ondrop} {ondragend}>
                <span class="handle" title="Drag to reorder">{"⠿"}</span>
                <div class="main" ondblclick={edit.clone()}>
                    <span class="label">{ task_label(t) }</span>
                    <span class="summary">{ task_summary(t) }</span>
                    { retry_note(t) }
                </div>
                <span class="time" title="Queued at">{ util::fmt_time(&t.created_at) }</span>
                <button class="run" title="Run now" onclick={run}>{"▶"}</button>
                <button class="edit" title="Edit" onclick={edit}>{"✎"}</button>
                <button class="delete" title="Delete" onclick={delete}>{"✕"}</button>
            </div>
        }
    });

    let clear = {
        let (host, d) = (host.clone(), d.clone());
        Callback::from(move |_| {
            if confirm("Delete every pending task that is not bookmarked?") {
                let api = host.api();
                act(&d, async move { api.clear_queue().await });
            }
        })
    };
    let export = {
        let (host, d) = (host.clone(), d.clone());
        Callback::from(move |_| {
            let (host, d) = (host.clone(), d.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let exported = host
                    .api()
                    .export(None, None)
                    .await
                    .map_err(|e| error_text(&e))
                    .and_then(|items| serde_json::to_vec_pretty(&items).map_err(|e| e.to_string()))
                    .and_then(|bytes| blob(&bytes, "application/json"));
                match exported {
                    Ok(b) => {
                        download(
                            &b,
                            &format!("agent-scheduler-{}.json", js_sys::Date::now() as u64),
                        );
                        push_toast(&d, "Exported", false);
                    }
                    Err(e) => push_toast(&d, format!("Export failed: {e}"), true),
                }
            });
        })
    };
    let import = {
        let (host, d) = (host.clone(), d.clone());
        Callback::from(move |e: Event| {
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            input.set_value("");
            let (host, d) = (host.clone(), d.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let text = wasm_bindgen_futures::JsFuture::from(file.text())
                    .await
                    .ok()
                    .and_then(|t| t.as_string());
                let Some(content) = text else { return };
                let api = host.api();
                act(&d, async move {
                    api.import(&ImportRequest { content })
                        .await
                        .map(|r| MessageResponse {
                            success: r.success,
                            message: r.message,
                            code: None,
                        })
                });
            });
        })
    };
    let refresh = {
        let d = d.clone();
        Callback::from(move |_| d.dispatch(Action::ReloadQueue))
    };
    html! {
        <div class="queue">
            <div class="toolbar">
                <button id="sdq-queue-clear" onclick={clear}>{"Clear"}</button>
                <button id="sdq-export" onclick={export}>{"Export"}</button>
                <label class="button">{"Import"}<input id="sdq-import" type="file" accept="application/json" onchange={import} hidden=true /></label>
                <button onclick={refresh} title="Refresh">{"⟳"}</button>
                <span class="spacer"></span>
                <span class="count" id="sdq-counts">{ format!("{} running · {} pending", q.running.len(), q.pending.len()) }</span>
            </div>
            { for running }
            <div class="pending" id="sdq-pending">
                { if q.pending.is_empty() { html! { <div class="empty">{"No pending tasks"}</div> } } else { html! {} } }
                { for pending }
            </div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DetailProps {
    id: String,
    host: Host,
    live: UseReducerHandle<LiveState>,
    on_close: Callback<()>,
}

#[function_component(DetailView)]
fn detail_view(p: &DetailProps) -> Html {
    let task = use_state(|| None::<Task>);
    let images = use_state(Vec::<ResultImage>::new);
    let sel = use_state(|| 0usize);
    {
        let (task, images, host, id) = (task.clone(), images.clone(), p.host.clone(), p.id.clone());
        use_effect_with(id.clone(), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let api = host.api();
                if let Ok(t) = api.task(&id).await {
                    let done = t.status == TaskStatus::Done;
                    task.set(Some(t));
                    if done && let Ok(res) = api.results(&id).await {
                        images.set(res);
                    }
                }
            });
            || ()
        });
    }
    let d = p.live.dispatcher();
    let close = {
        let c = p.on_close.clone();
        Callback::from(move |_| c.emit(()))
    };
    let Some(t) = (*task).clone() else {
        return html! { <div class="modal detail"><button class="close" onclick={close}>{"✕"}</button>{"Loading…"}</div> };
    };
    let zip = {
        let (host, d, id) = (p.host.clone(), d.clone(), t.id.clone());
        Callback::from(move |_| {
            let (host, d, id) = (host.clone(), d.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let zip = host
                    .api()
                    .results_zip(&id)
                    .await
                    .map_err(|e| error_text(&e))
                    .and_then(|bytes| blob(&bytes, "application/zip"));
                match zip {
                    Ok(b) => download(&b, &format!("results-{id}.zip")),
                    Err(e) => push_toast(&d, format!("Zip failed: {e}"), true),
                }
            });
        })
    };
    let send = |tab: &'static str| {
        let (d, params, id) = (d.clone(), t.params.clone(), t.id.clone());
        Callback::from(move |_| {
            let (d, params, id) = (d.clone(), params.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                // With the task id the worker fetches the full request (images included).
                let msg = ToWorker::FillPage {
                    tab: tab.to_owned(),
                    params,
                    task_id: Some(id),
                };
                match chrome::ask_worker::<Filled>(&msg).await {
                    Ok(_) => push_toast(&d, format!("Sent to {tab}"), false),
                    Err(e) => push_toast(&d, e, true),
                }
            });
        })
    };
    let infotext = images
        .get(*sel)
        .map(|i| i.infotext.clone())
        .unwrap_or_default();
    html! {
        <div class="modal detail" id="sdq-detail" data-task-id={t.id.clone()}>
            <button class="close" onclick={close}>{"✕"}</button>
            <h3>{ task_label(&t) }</h3>
            <div class="meta">{ format!("{} · {} · {}", t.task_type.as_str(), t.status.as_str(), task_summary(&t)) }</div>
            { t.error.clone().map(|e| html! { <div class="error">{ format!("Error: {e}") }</div> }).unwrap_or_default() }
            <div class="gallery" id="sdq-gallery">
                { for images.iter().enumerate().map(|(i, im)| {
                    let sel = sel.clone();
                    html! { <img class={classes!((*sel == i).then_some("selected"))} src={im.image.clone()} alt={format!("result {i}")}
                        onclick={Callback::from(move |_| sel.set(i))} /> }
                }) }
            </div>
            <textarea class="infotext" id="sdq-infotext" readonly=true value={infotext} />
            <div class="actions">
                <button id="sdq-zip" onclick={zip} disabled={images.is_empty()}>{"Download zip"}</button>
                <button id="sdq-send-txt2img" onclick={send("txt2img")}>{"Send to txt2img"}</button>
                <button id="sdq-send-img2img" onclick={send("img2img")}>{"Send to img2img"}</button>
            </div>
            <details><summary>{"Request"}</summary><pre>{ serde_json::to_string_pretty(&t.params).unwrap_or_default() }</pre></details>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct EditProps {
    task: Task,
    host: Host,
    live: UseReducerHandle<LiveState>,
    on_close: Callback<()>,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Inline edit of a pending task: every field of its request, its name and checkpoint;
/// saved as a shallow merge (`PUT /task/{id}`), only the changed fields.
#[function_component(EditView)]
fn edit_view(p: &EditProps) -> Html {
    let node = use_node_ref();
    let d = p.live.dispatcher();
    let t = Rc::new(p.task.clone());
    let keys: Vec<(String, Value)> = {
        let mut k: Vec<(String, Value)> = t
            .params
            .iter()
            .filter(|(k, _)| k.as_str() != "checkpoint" && k.as_str() != "vae")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        k.sort_by(|a, b| a.0.cmp(&b.0));
        k
    };
    let save = {
        let (node, host, d, t, close) = (
            node.clone(),
            p.host.clone(),
            d.clone(),
            t.clone(),
            p.on_close.clone(),
        );
        Callback::from(move |_| {
            let Some(form) = node.cast::<web_sys::Element>() else {
                return;
            };
            let mut params = Map::new();
            let mut name = None;
            let mut checkpoint = None;
            if let Ok(list) = form.query_selector_all("[data-field]") {
                for i in 0..list.length() {
                    let Some(el) = list
                        .item(i)
                        .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
                    else {
                        continue;
                    };
                    let key = el.get_attribute("data-field").unwrap_or_default();
                    let text = el
                        .dyn_ref::<HtmlTextAreaElement>()
                        .map(|x| x.value())
                        .or_else(|| el.dyn_ref::<HtmlInputElement>().map(|x| x.value()))
                        .unwrap_or_default();
                    match key.as_str() {
                        "@name" => {
                            if Some(text.as_str()) != t.name.as_deref() {
                                name = Some(text);
                            }
                        }
                        "@checkpoint" => {
                            let old = t
                                .params
                                .get("checkpoint")
                                .and_then(|c| c.as_str())
                                .unwrap_or("");
                            if text != old {
                                checkpoint = Some(text);
                            }
                        }
                        k => {
                            let old = t.params.get(k).cloned().unwrap_or(Value::Null);
                            let new = match &old {
                                Value::String(_) => Value::String(text),
                                _ => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                            };
                            if new != old {
                                params.insert(k.to_owned(), new);
                            }
                        }
                    }
                }
            }
            let edit = UpdateTaskRequest {
                name,
                checkpoint,
                params: Some(params).filter(|p| !p.is_empty()),
            };
            let (api, id) = (host.api(), t.id.clone());
            act(&d, async move { api.update_task(&id, &edit).await });
            close.emit(());
        })
    };
    let cancel = {
        let c = p.on_close.clone();
        Callback::from(move |_| c.emit(()))
    };
    html! {
        <div class="modal edit" id="sdq-edit" data-task-id={t.id.clone()} ref={node}>
            <h3>{ format!("Edit {}", task_label(&t)) }</h3>
            <label>{"name"}<input data-field="@name" value={t.name.clone().unwrap_or_default()} /></label>
            <label>{"checkpoint"}<input data-field="@checkpoint"
                value={t.params.get("checkpoint").and_then(|c| c.as_str()).unwrap_or_default().to_owned()} /></label>
            <div class="fields">
                { for keys.iter().map(|(k, v)| {
                    let text = value_text(v);
                    if k.contains("prompt") || text.len() > 60 {
                        html! { <label>{ k.clone() }<textarea data-field={k.clone()} value={text} /></label> }
                    } else {
                        html! { <label>{ k.clone() }<input data-field={k.clone()} value={text} /></label> }
                    }
                }) }
            </div>
            <div class="actions">
                <button id="sdq-edit-save" onclick={save}>{"Save"}</button>
                <button onclick={cancel}>{"Cancel"}</button>
            </div>
        </div>
    }
}
