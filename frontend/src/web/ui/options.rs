//! The options page: host URL, token, button placement, checkpoint dropdown, notifications,
//! shortcut and page size (stored in `chrome.storage.local`).

use scheduler_api::ListQuery;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::{ExtOptions, Placement, Shortcut};
use crate::web::chrome;
use crate::web::host::{Host, error_text};

/// Mounts the options page.
pub fn mount() {
    super::mount_on_app::<OptionsApp>(());
}

fn input_value(node: &NodeRef, id: &str) -> String {
    node.cast::<web_sys::Element>()
        .and_then(|f| f.query_selector(&format!("#{id}")).ok().flatten())
        .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
        .map(|i| {
            if i.type_() == "checkbox" {
                i.checked().to_string()
            } else {
                i.value()
            }
        })
        .unwrap_or_default()
}

/// The options root.
#[function_component(OptionsApp)]
pub fn options_app() -> Html {
    let opts = use_state(|| None::<ExtOptions>);
    let status = use_state(String::new);
    let node = use_node_ref();
    {
        let opts = opts.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                opts.set(Some(chrome::load_options().await));
            });
            || ()
        });
    }
    let Some(o) = (*opts).clone() else {
        return html! { <div>{"Loading…"}</div> };
    };
    let read = {
        let node = node.clone();
        move || -> ExtOptions {
            let placement = node
                .cast::<web_sys::Element>()
                .and_then(|f| f.query_selector("#placement").ok().flatten())
                .and_then(|e| e.dyn_into::<HtmlSelectElement>().ok())
                .map(|s| s.value())
                .unwrap_or_default();
            ExtOptions {
                host_url: input_value(&node, "host_url"),
                token: input_value(&node, "token"),
                placement: if placement == "above" {
                    Placement::AboveGenerate
                } else {
                    Placement::BesideGenerate
                },
                hide_checkpoint: input_value(&node, "hide_checkpoint") == "true",
                notify_failed: input_value(&node, "notify_failed") == "true",
                notify_done: input_value(&node, "notify_done") == "true",
                notify_queue_finished: input_value(&node, "notify_queue_finished") == "true",
                shortcut: input_value(&node, "shortcut"),
                page_size: input_value(&node, "page_size").parse().unwrap_or(50),
            }
        }
    };
    let save = {
        let (read, status, opts) = (read.clone(), status.clone(), opts.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let o = read();
            if !o.shortcut.trim().is_empty()
                && !o.shortcut.starts_with("Disabled")
                && Shortcut::parse(&o.shortcut).is_none()
            {
                status.set("Shortcut not understood (example: Ctrl+KeyE)".into());
                return;
            }
            let (status, opts) = (status.clone(), opts.clone());
            wasm_bindgen_futures::spawn_local(async move {
                // Every context follows chrome.storage.onChanged (the worker reconnects).
                chrome::save_options(&o).await;
                opts.set(Some(o));
                status.set("Saved.".into());
            });
        })
    };
    let test = {
        let (read, status) = (read.clone(), status.clone());
        Callback::from(move |_| {
            let host = Host::from_options(&read());
            let status = status.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let probe = ListQuery {
                    limit: Some(1),
                    ..ListQuery::default()
                };
                status.set(match host.api().queue(&probe).await {
                    Ok(_) => format!("Connected to {}", host.base),
                    Err(e) => format!("Failed: {}", error_text(&e)),
                });
            });
        })
    };
    let cb = |id: &str, label: &str, on: bool| {
        html! {
            <label class="check"><input type="checkbox" id={id.to_owned()} checked={on} />{ label }</label>
        }
    };
    html! {
        <form class="options" ref={node} onsubmit={save}>
            <h2>{"Agent Scheduler options"}</h2>
            <label>{"Host URL"}<input id="host_url" value={o.host_url.clone()} placeholder={scheduler_api::DEFAULT_HOST_URL} /></label>
            <label>{"Token (sent as Authorization: Bearer)"}<input id="token" type="password" value={o.token.clone()} /></label>
            <label>{"Enqueue button placement"}
                <select id="placement">
                    <option value="beside" selected={o.placement == Placement::BesideGenerate}>{"Beside Generate"}</option>
                    <option value="above" selected={o.placement == Placement::AboveGenerate}>{"Between prompt and Generate"}</option>
                </select>
            </label>
            { cb("hide_checkpoint", "Hide the checkpoint dropdown", o.hide_checkpoint) }
            <fieldset><legend>{"Notifications"}</legend>
                { cb("notify_failed", "When a task fails", o.notify_failed) }
                { cb("notify_done", "When a task is done", o.notify_done) }
                { cb("notify_queue_finished", "When the queue is finished", o.notify_queue_finished) }
            </fieldset>
            <label>{"Enqueue shortcut (e.g. Ctrl+KeyE; Ctrl also means Cmd; prefix \"Disabled\" to turn off)"}
                <input id="shortcut" value={o.shortcut.clone()} /></label>
            <label>{"Panel page size"}<input id="page_size" type="number" min="10" max="1000" value={o.page_size.to_string()} /></label>
            <div class="actions">
                <button type="submit" id="save">{"Save"}</button>
                <button type="button" onclick={test}>{"Test connection"}</button>
                <span id="status">{ (*status).clone() }</span>
            </div>
        </form>
    }
}
