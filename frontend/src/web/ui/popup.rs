//! The toolbar popup: connection state (with the command to start the host when it is not
//! reachable), pause/resume, counts and the queue's expected end, the running task with its
//! progress bar and live preview, the last finished results' thumbnails, and links that
//! open the panel and the options; on an SD.Next page at an address not enabled yet,
//! "Enable Agent Scheduler on this site".

use scheduler_api::{HistoryFilter, HistoryQuery, ListQuery, TaskStatus};
use yew::prelude::*;

use super::images::Thumb;
use super::live::{Conn, Wants, toggle_pause, use_host, use_live};
use crate::state::queue::{fmt_eta, percent};
use crate::state::sites::{self, Site};
use crate::state::task_label;
use crate::web::host::Platform;
use crate::web::util::{fmt_clock, ms_of};
use crate::web::{chrome, sites as site_store};

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
    let refusal = match &live.conn {
        Conn::Offline(e) if e.starts_with("403") => Some(e.clone()),
        _ => None,
    };
    let (conn_class, conn_text) = match &live.conn {
        Conn::Offline(_) if refusal.is_some() => (
            "offline",
            format!("The host at {} refused this browser", host.base),
        ),
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
            { match (&live.conn, refusal) {
                (_, Some(e)) => html! { <div class="hint" id="sdq-popup-refused">{ e }</div> },
                (Conn::Offline(_), None) => html! {
                    <div class="hint">{"Start the host with:"}<br/><code>{"cargo run --release -p agent-scheduler -- serve"}</code></div>
                },
                _ => html! {},
            } }
            <SiteSection />
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

/// What the popup knows of the tab it was opened over.
#[derive(Debug, Clone, PartialEq)]
enum SiteState {
    /// Still asking the browser.
    Loading,
    /// Nothing to offer: no SD.Next page, loopback (always on), or a tab whose address the
    /// extension may not read.
    Nothing,
    /// An SD.Next page at an address that is not enabled: the offer.
    Offer(i32, Site),
    /// Enabled (the pattern).
    Enabled(String),
    /// Enabling failed or was declined.
    Failed(Site, String),
}

/// The tab the popup acts on: `?tab=ID` (the popup opened as a page, as the browser tests
/// do), else the active tab of the popup's window.
async fn target_tab() -> Option<serde_json::Value> {
    let search = web_sys::window()?.location().search().ok()?;
    let param = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("tab="))
        .and_then(|v| v.parse::<i32>().ok());
    match param {
        Some(id) => chrome::tabs_get(id).await,
        None => chrome::tabs_query(&serde_json::json!({"active": true, "currentWindow": true}))
            .await
            .into_iter()
            .next(),
    }
}

async fn site_state() -> SiteState {
    let Some(tab) = target_tab().await else {
        return SiteState::Nothing;
    };
    let (Some(id), Some(url)) = (
        tab.get("id").and_then(serde_json::Value::as_i64),
        tab.get("url").and_then(serde_json::Value::as_str),
    ) else {
        return SiteState::Nothing;
    };
    let title = tab
        .get("title")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    let Ok(site) = sites::site_for(url) else {
        return SiteState::Nothing;
    };
    if sites::find(&site_store::stored().await, &site.pattern).is_some() {
        return SiteState::Enabled(site.pattern);
    }
    if sites::is_sdnext_title(title) {
        SiteState::Offer(id as i32, site)
    } else {
        SiteState::Nothing
    }
}

/// "Enable Agent Scheduler on this site" for an SD.Next page at an address not enabled yet
/// (a LAN box, a reverse proxy, a cloud GPU): the click asks for the origin's permission,
/// stores the site (the worker registers the content scripts for it) and starts the
/// content script in the open tab.
#[function_component(SiteSection)]
fn site_section() -> Html {
    let state = use_state(|| SiteState::Loading);
    {
        let state = state.clone();
        use_effect_with((), move |_| {
            super::notify::spawn(async move { state.set(site_state().await) });
            || ()
        });
    }
    let enable = |tab: i32, site: Site| {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            // Asked here, in the click's own call: both browsers want the user's gesture.
            let asked = chrome::permissions_request(std::slice::from_ref(&site.pattern));
            let (state, site) = (state.clone(), site.clone());
            super::notify::spawn(async move {
                let granted = match asked {
                    Ok(p) => chrome::permission_granted(p).await,
                    Err(e) => Err(e),
                };
                match granted {
                    Ok(true) => {
                        site_store::add(site.clone()).await;
                        let started = site_store::inject(tab).await;
                        state.set(match started {
                            Ok(()) => SiteState::Enabled(site.pattern),
                            Err(e) => {
                                SiteState::Failed(site, format!("enabled; reload the page ({e})"))
                            }
                        });
                    }
                    Ok(false) => {
                        state.set(SiteState::Failed(site, "permission not granted".into()))
                    }
                    Err(e) => state.set(SiteState::Failed(site, e)),
                }
            });
        })
    };
    match (*state).clone() {
        SiteState::Loading | SiteState::Nothing => html! {},
        SiteState::Enabled(pattern) => html! {
            <div class="site on" id="sdq-popup-site" data-site="enabled">
                { format!("Enabled on {pattern}") }
            </div>
        },
        SiteState::Offer(tab, site) => html! {
            <div class="site" id="sdq-popup-site" data-site="offer">
                <button id="sdq-enable-site" class="primary" onclick={enable(tab, site.clone())}>
                    {"Enable Agent Scheduler on this site"}
                </button>
                <div class="muted">{ format!("{} · grants {} (any port)", site.url, site.pattern) }</div>
            </div>
        },
        SiteState::Failed(site, e) => html! {
            <div class="site" id="sdq-popup-site" data-site="failed">
                <div class="error">{ format!("{}: {e}", site.url) }</div>
            </div>
        },
    }
}
