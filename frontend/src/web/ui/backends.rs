//! The panel's collapsible "Backends" section: the pool's SD.Next backends with their state
//! and figures (tasks done and failed, checkpoint loads, busy time, last error), a form that
//! adds one (`POST /backends`; the host's refusal is shown under it) and, per backend,
//! disable / drain / enable / remove (confirmed). Its controls send [`BackendMsg`]s, which
//! the panel hands to [`apply`]; each button also carries its word in `data-cmd`
//! (`backend-drain`, …) for the browser tests to find it.

use scheduler_api::{BackendInfo, BackendSource, BackendState, MessageResponse, routes};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::confirm;
use super::live::{Action, LiveState, act, push_toast, spawn};
use crate::state::queue::fmt_eta;
use crate::web::host::{Host, error_text};
use crate::web::util;

/// The health word of a backend (its CSS class).
fn health(b: &BackendInfo) -> &'static str {
    match b.state {
        BackendState::Up => "up",
        BackendState::Loading => "loading",
        BackendState::Down => "down",
        BackendState::Stalled => "stalled",
        BackendState::Unknown => "unknown",
    }
}

/// Whether it takes tasks: `enabled`, `draining` or `disabled`.
fn admin(b: &BackendInfo) -> &'static str {
    if b.draining {
        "draining"
    } else if b.enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// What the backends section's controls ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendMsg {
    /// Add the backend typed in the form (`POST /backends`).
    Add,
    /// Enable, disable or drain one: the route and the backend's id and URL.
    Admin(&'static str, String),
    /// Remove one (asks first): its id, URL and whether it came from `--backend`.
    Remove {
        /// Its id.
        id: String,
        /// Its URL (for the question).
        url: String,
        /// Given with `--backend` (it comes back at the host's restart).
        flag: bool,
    },
}

/// Does what a [`BackendMsg`] asks; `err` shows the host's refusal of an added backend.
pub fn apply(
    host: &Host,
    d: &UseReducerDispatcher<LiveState>,
    err: &UseStateHandle<Option<String>>,
    msg: BackendMsg,
) {
    let api = host.api();
    match msg {
        BackendMsg::Add => {
            let Some(input) = util::document()
                .get_element_by_id("sdq-backend-url")
                .and_then(|i| wasm_bindgen::JsCast::dyn_into::<HtmlInputElement>(i).ok())
            else {
                return;
            };
            let (d, err) = (d.clone(), err.clone());
            let url = input.value().trim().to_owned();
            spawn(async move {
                match api.add_backend(&url).await {
                    Ok(b) => {
                        err.set(None);
                        input.set_value("");
                        push_toast(&d, format!("Backend {} added", b.url), false);
                        d.dispatch(Action::ReloadAll);
                    }
                    Err(e) => err.set(Some(error_text(&e))),
                }
            });
        }
        BackendMsg::Admin(route, id) => act(d, async move {
            let b = api.backend_action(route, &id).await?;
            Ok(MessageResponse::ok(format!(
                "Backend {} {}",
                b.url,
                admin(&b)
            )))
        }),
        BackendMsg::Remove { id, url, flag } => {
            let why = if flag {
                "It was given with --backend: it comes back when the host restarts."
            } else {
                "The host forgets it."
            };
            if confirm(&format!(
                "Remove backend {url}? Its running task goes back to the queue. {why}"
            )) {
                act(d, async move { api.remove_backend(&id).await });
            }
        }
    }
}

/// The section: a summary line with each backend's state, then (opened) the add form and a
/// row per backend.
pub fn section(backends: &[BackendInfo], err: Option<&str>, on: &Callback<BackendMsg>) -> Html {
    let strip = backends.iter().map(|b| {
        let state = health(b);
        let short = b.url.split("://").last().unwrap_or(&b.url);
        html! { <span class={format!("backend {state}")}>{ format!("● {short} {state}") }</span> }
    });
    let rows = backends.iter().map(|b| {
        let (state, adm) = (health(b), admin(b));
        let btn = |cmd: &'static str, label: &'static str, msg: BackendMsg| {
            let on = on.clone();
            html! { <button data-cmd={format!("backend-{cmd}")}
                onclick={Callback::from(move |_| on.emit(msg.clone()))}
                aria-label={format!("{label} {}", b.url)}>{ label }</button> }
        };
        let admin_msg = |route: &'static str| BackendMsg::Admin(route, b.id.clone());
        let remove = BackendMsg::Remove {
            id: b.id.clone(),
            url: b.url.clone(),
            flag: b.source == BackendSource::Flag,
        };
        html! {
            <div class="brow" key={b.id.clone()} data-backend-id={b.id.clone()} data-state={state} data-admin={adm}>
                <div class="bhead">
                    <span class={format!("backend {state}")} title={b.id.clone()}>{ format!("● {}", b.url) }</span>
                    <span class="chip">{ format!("{state} · {adm}") }</span>
                    <span class="meta">{ if b.source == BackendSource::Flag { "--backend" } else { "added" } }</span>
                </div>
                <div class="meta bfig">{ format!(
                    "{} done · {} failed · {} loads · busy {} · loaded: {}",
                    b.tasks_done, b.tasks_failed, b.loads,
                    fmt_eta(Some(b.busy_ms as f64 / 1000.0)),
                    b.loaded_checkpoint.as_deref().unwrap_or("none"),
                ) }</div>
                { b.last_error.as_ref().map(|e| html! { <div class="meta berr">{ format!("Last error: {e}") }</div> }).unwrap_or_default() }
                <div class="acts">
                    { if b.enabled && !b.draining { html! { <>
                        { btn("drain", "Drain", admin_msg(routes::BACKEND_DRAIN)) }
                        { btn("disable", "Disable", admin_msg(routes::BACKEND_DISABLE)) }
                      </> } }
                      else { btn("enable", "Enable", admin_msg(routes::BACKEND_ENABLE)) } }
                    { btn("remove", "Remove", remove) }
                </div>
            </div>
        }
    });
    let submit = {
        let on = on.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on.emit(BackendMsg::Add);
        })
    };
    html! {
        <details class="pool" id="sdq-backends-section">
            <summary><span class="btitle">{ format!("Backends ({})", backends.len()) }</span>
                <span class="backends" id="sdq-backends">{ for strip }</span></summary>
            // A form: Add and Enter in the field both submit it; the submission goes nowhere
            // but to the host's `POST /backends`.
            <form class="badd" onsubmit={submit}>
                <label for="sdq-backend-url">{"Add backend"}</label>
                <input id="sdq-backend-url" type="text" inputmode="url" autocomplete="off" spellcheck="false"
                    placeholder="http://[user:password@]host:7860" />
                <button id="sdq-backend-add" type="submit">{"Add"}</button>
            </form>
            { err.map(|e| html! { <div class="error" id="sdq-backend-error" role="alert">{ e }</div> }).unwrap_or_default() }
            { for rows }
        </details>
    }
}
