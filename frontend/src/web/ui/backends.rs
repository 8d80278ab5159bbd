//! The panel's collapsible "Backends" section: the pool's SD.Next backends with their state
//! and figures (tasks done and failed, checkpoint loads, busy time, last error), a form that
//! adds one (`POST /backends`; the host's refusal is shown under it) and, per backend,
//! disable / drain / enable / remove (confirmed). Its buttons are `data-cmd` words run by
//! [`run`] from the panel's one click handler.

use scheduler_api::{BackendInfo, BackendSource, BackendState, MessageResponse, routes};
use web_sys::{Element, HtmlInputElement};
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

/// Runs a backend command (`backend-add`, `backend-enable|disable|drain|remove`); false when
/// `cmd` is not one.
pub fn run(
    host: &Host,
    d: &UseReducerDispatcher<LiveState>,
    err: &UseStateHandle<Option<String>>,
    cmd: &str,
    el: &Element,
) -> bool {
    let api = host.api();
    let id = el.get_attribute("data-id").unwrap_or_default();
    let url = el.get_attribute("data-url").unwrap_or_default();
    let route = match cmd {
        "backend-add" => {
            let Some(input) = util::document()
                .get_element_by_id("sdq-backend-url")
                .and_then(|i| wasm_bindgen::JsCast::dyn_into::<HtmlInputElement>(i).ok())
            else {
                return true;
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
            return true;
        }
        "backend-enable" => routes::BACKEND_ENABLE,
        "backend-disable" => routes::BACKEND_DISABLE,
        "backend-drain" => routes::BACKEND_DRAIN,
        "backend-remove" => {
            let why = if el.has_attribute("data-flag") {
                "It was given with --backend: it comes back when the host restarts."
            } else {
                "The host forgets it."
            };
            if confirm(&format!(
                "Remove backend {url}? Its running task goes back to the queue. {why}"
            )) {
                act(d, async move { api.remove_backend(&id).await });
            }
            return true;
        }
        _ => return false,
    };
    act(d, async move {
        let b = api.backend_action(route, &id).await?;
        Ok(MessageResponse::ok(format!(
            "Backend {} {}",
            b.url,
            admin(&b)
        )))
    });
    true
}

/// The section: a summary line with each backend's state, then (opened) the add form and a
/// row per backend.
pub fn section(backends: &[BackendInfo], err: Option<&str>) -> Html {
    let strip = backends.iter().map(|b| {
        let state = health(b);
        let short = b.url.split("://").last().unwrap_or(&b.url);
        html! { <span class={format!("backend {state}")}>{ format!("● {short} {state}") }</span> }
    });
    let rows = backends.iter().map(|b| {
        let (state, adm) = (health(b), admin(b));
        let btn = |cmd: &'static str, label: &'static str| {
            html! { <button data-cmd={format!("backend-{cmd}")} data-id={b.id.clone()} data-url={b.url.clone()}
                data-flag={(b.source == BackendSource::Flag).then_some("")}
                aria-label={format!("{label} {}", b.url)}>{ label }</button> }
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
                    { if b.enabled && !b.draining { html! { <>{ btn("drain", "Drain") }{ btn("disable", "Disable") }</> } }
                      else { btn("enable", "Enable") } }
                    { btn("remove", "Remove") }
                </div>
            </div>
        }
    });
    html! {
        <details class="pool" id="sdq-backends-section">
            <summary><span class="btitle">{ format!("Backends ({})", backends.len()) }</span>
                <span class="backends" id="sdq-backends">{ for strip }</span></summary>
            // A form: Enter in the field clicks its submit button, Add (the panel's click
            // handler runs it); the submission itself goes nowhere.
            <form class="badd" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <label for="sdq-backend-url">{"Add backend"}</label>
                <input id="sdq-backend-url" type="text" inputmode="url" autocomplete="off" spellcheck="false"
                    placeholder="http://[user:password@]host:7860" />
                <button id="sdq-backend-add" type="submit" data-cmd="backend-add">{"Add"}</button>
            </form>
            { err.map(|e| html! { <div class="error" id="sdq-backend-error" role="alert">{ e }</div> }).unwrap_or_default() }
            { for rows }
        </details>
    }
}
