//! The toolbar popup: connection state (with the command to start the host when it is not
//! reachable), pause/resume, pending and running counts, the running task's progress, and a
//! link that opens the panel.

use yew::prelude::*;

use super::live::{Conn, toggle_pause, use_host, use_live};
use crate::state::queue::{fmt_eta, percent};
use crate::state::task_label;
use crate::web::chrome;

/// Mounts the popup.
pub fn mount() {
    super::mount_on_app::<PopupApp>();
}

/// The popup root.
#[function_component(PopupApp)]
pub fn popup_app() -> Html {
    let host = use_host();
    let live = use_live(host.clone(), None);
    let Some(host) = host else {
        return html! { <div class="popup">{"Loading…"}</div> };
    };
    let d = live.dispatcher();
    let q = &live.q;
    let pause = toggle_pause(&host, &d, q.paused);
    let open_panel = Callback::from(|e: MouseEvent| {
        e.prevent_default();
        wasm_bindgen_futures::spawn_local(async {
            chrome::open_tab("panel.html").await;
        });
    });
    let open_options = Callback::from(|e: MouseEvent| {
        e.prevent_default();
        wasm_bindgen_futures::spawn_local(async {
            chrome::open_tab("options.html").await;
        });
    });
    let (conn_class, conn_text) = match &live.conn {
        Conn::Online => ("online", format!("Connected to {}", host.base)),
        Conn::Connecting => ("connecting", format!("Connecting to {}…", host.base)),
        Conn::Offline(_) => ("offline", format!("Host not reachable at {}", host.base)),
    };
    let running = q.running.first().map(|t| {
        let pr = q.progress.as_ref().filter(|p| p.task_id == t.id);
        let (pct, pct1) = percent(pr.map_or(0.0, |p| p.progress));
        html! {
            <div class="running" id="sdq-popup-running">
                <div class="label">{ task_label(t) }</div>
                <div class="bar"><div class="fill" style={format!("width:{pct1}%")}></div></div>
                <div class="meta">{ format!("{pct}% · ETA {}", fmt_eta(pr.and_then(|p| p.eta_s))) }</div>
            </div>
        }
    });
    html! {
        <div class="popup" data-conn={conn_class} data-paused={q.paused.to_string()}>
            <div class={classes!("conn", conn_class)} id="sdq-popup-conn">{ conn_text }</div>
            { if matches!(live.conn, Conn::Offline(_)) { html! {
                <div class="hint">{"Start the host with:"}<br/><code>{"cargo run --release -p agent-scheduler -- serve"}</code></div>
            } } else { html! {} } }
            <div class="counts" id="sdq-popup-counts">
                <span data-pending={q.pending.len().to_string()}>{ format!("{} pending", q.pending.len()) }</span>
                {" · "}
                <span data-running={q.running.len().to_string()}>{ format!("{} running", q.running.len()) }</span>
                { if q.paused { html! { <span class="paused">{" · paused"}</span> } } else { html! {} } }
            </div>
            { q.hold_reason.clone().map(|r| html! {
                <div class="hold" id="sdq-popup-hold" role="status">{ format!("On hold: {r}") }</div>
            }).unwrap_or_default() }
            { running.unwrap_or_default() }
            <div class="actions">
                <button id="sdq-popup-pause" onclick={pause}>{ if q.paused { "▶ Resume" } else { "❚❚ Pause" } }</button>
                <a href="panel.html" id="sdq-open-panel" onclick={open_panel}>{"Open panel"}</a>
                <a href="options.html" onclick={open_options}>{"Options"}</a>
            </div>
        </div>
    }
}
