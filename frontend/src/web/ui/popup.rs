//! The toolbar popup: connection state (with the command to start the host when it is not
//! reachable), pause/resume, counts and the queue's expected end, the running task with its
//! progress bar and live preview, the last finished results' thumbnails, and links that
//! open the panel and the options.

use scheduler_api::{HistoryFilter, HistoryQuery, ListQuery, TaskStatus};
use yew::prelude::*;

use super::images::Thumb;
use super::live::{Conn, Wants, toggle_pause, use_host, use_live};
use crate::state::queue::{fmt_eta, percent};
use crate::state::task_label;
use crate::web::chrome;
use crate::web::host::Platform;
use crate::web::util::{fmt_clock, ms_of};

/// Mounts the popup.
pub fn mount() {
    super::mount_on_app::<PopupApp>(());
}

/// The popup root.
#[function_component(PopupApp)]
pub fn popup_app() -> Html {
    let host = (*use_host(Platform::Extension)).clone();
    let live = use_live(
        host.clone(),
        Wants {
            queue_limit: 10,
            history: Some((
                HistoryQuery {
                    status: Some(HistoryFilter::Status(TaskStatus::Done)),
                    sort: None,
                },
                ListQuery {
                    limit: Some(6),
                    ..ListQuery::default()
                },
            )),
            eta: true,
        },
    );
    let Some(host) = host else {
        return html! { <div class="popup">{"Loading…"}</div> };
    };
    let d = live.dispatcher();
    let q = &live.q;
    let pending = (q.total - q.running.len() as i64).max(q.pending.len() as i64);
    let pause = toggle_pause(&host, &d, q.paused);
    let open = |page: &'static str| {
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            super::notify::spawn(async move {
                chrome::open_tab(page).await;
            });
        })
    };
    let (conn_class, conn_text) = match &live.conn {
        Conn::Online => ("online", format!("Connected to {}", host.base)),
        Conn::Connecting => ("connecting", format!("Connecting to {}…", host.base)),
        Conn::Offline(_) => ("offline", format!("Host not reachable at {}", host.base)),
        Conn::Unauthorized => ("offline", "The host refused the token (see Options)".into()),
    };
    let running = q.running.first().map(|t| {
        let pr = q.progress.as_ref().filter(|p| p.task_id == t.id);
        let (pct, pct1) = percent(pr.map_or(0.0, |p| p.progress));
        let preview = q
            .preview
            .as_ref()
            .filter(|p| p.task_id == t.id)
            .map(|p| p.image.clone());
        html! {
            <div class="running" id="sdq-popup-running" data-task-id={t.id.clone()}>
                { preview.map(|src| html! { <img class="preview" id="sdq-popup-preview" src={src} alt="preview" /> }).unwrap_or_default() }
                <div class="rmain">
                    <div class="label" title={t.id.clone()}>{ task_label(t) }</div>
                    <div class="bar"><div class="fill" style={format!("width:{pct1}%")}></div></div>
                    <div class="meta" data-progress={pct.clone()}>{ format!("{pct}% · ETA {}", fmt_eta(pr.and_then(|p| p.eta_s))) }</div>
                </div>
            </div>
        }
    });
    let queue_end = match live.eta.as_deref().and_then(|e| e.queue_ends_at) {
        _ if pending == 0 && q.running.is_empty() => String::new(),
        Some(ms) => format!(" · ends ≈ {}", fmt_clock(ms)),
        None => " · ends —".into(),
    };
    let recent = live.hist.iter().take(6).map(|t| {
        let version = t.finished_at.as_ref().map_or(0, ms_of);
        html! {
            <a class="recent" href="panel.html" onclick={open("panel.html")} title={task_label(t).to_owned()} data-task-id={t.id.clone()}>
                <Thumb host={host.clone()} id={t.id.clone()} has_image={t.image_count > 0} {version} />
            </a>
        }
    });
    html! {
        <div class="popup" data-conn={conn_class} data-paused={q.paused.to_string()}>
            <div class={classes!("conn", conn_class)} id="sdq-popup-conn">{ conn_text }</div>
            { if matches!(live.conn, Conn::Offline(_)) { html! {
                <div class="hint">{"Start the host with:"}<br/><code>{"cargo run --release -p agent-scheduler -- serve"}</code></div>
            } } else { html! {} } }
            <div class="counts" id="sdq-popup-counts">
                <span data-pending={pending.to_string()}>{ format!("{pending} pending") }</span>
                {" · "}
                <span data-running={q.running.len().to_string()}>{ format!("{} running", q.running.len()) }</span>
                { if q.paused { html! { <span class="paused">{" · paused"}</span> } } else { html! {} } }
                <span class="eta" id="sdq-popup-eta">{ queue_end }</span>
            </div>
            { q.hold_reason.clone().map(|r| html! {
                <div class="hold" id="sdq-popup-hold" role="status">{ format!("On hold: {r}") }</div>
            }).unwrap_or_default() }
            { running.unwrap_or_default() }
            { if live.hist.is_empty() { html! {} } else { html! {
                <div class="recents" id="sdq-popup-recent">{ for recent }</div>
            } } }
            <div class="actions">
                <button id="sdq-popup-pause" onclick={pause}>{ if q.paused { "▶ Resume" } else { "❚❚ Pause" } }</button>
                <a href="panel.html" id="sdq-open-panel" onclick={open("panel.html")}>{"Open panel"}</a>
                <a href="options.html" onclick={open("options.html")}>{"Options"}</a>
            </div>
        </div>
    }
}
