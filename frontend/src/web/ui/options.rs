//! The options page: the SD.Next addresses the extension works on (loopback always; others
//! enabled here or from the popup), host URL, token, button placement, checkpoint dropdown,
//! notifications, shortcut and page size (stored in `storage.local`). In Firefox it names the
//! extension's per-install origin and the host flag that allows it.

use scheduler_api::ListQuery;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::state::sites::{self, LOOPBACK_PATTERNS, Site};
use crate::state::{ExtOptions, Placement, Shortcut};
use crate::web::host::{Host, error_text};
use crate::web::{chrome, sites as site_store};

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
            // A host on another machine needs its origin's permission (asked in this
            // gesture), or the browser's CORS rules stop every request to it.
            let host_site = sites::site_for(&o.base()).ok();
            let asked = host_site
                .as_ref()
                .map(|s| chrome::permissions_request(std::slice::from_ref(&s.pattern)));
            if !o.shortcut.trim().is_empty()
                && !o.shortcut.starts_with("Disabled")
                && Shortcut::parse(&o.shortcut).is_none()
            {
                status.set("Shortcut not understood (example: Ctrl+KeyE)".into());
                return;
            }
            let (status, opts) = (status.clone(), opts.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let granted = match asked {
                    Some(Ok(p)) => chrome::permission_granted(p).await.unwrap_or(false),
                    Some(Err(_)) => false,
                    None => true,
                };
                // Every context follows storage.onChanged (the worker reconnects).
                chrome::save_options(&o).await;
                opts.set(Some(o.clone()));
                status.set(if granted {
                    "Saved.".into()
                } else {
                    format!("Saved, but without the permission for {} the extension cannot reach the host.", o.base())
                });
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
            <SitesSection />
            { firefox_origin_note() }
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

/// Firefox only: the extension's origin, which is new with every install, and what the host
/// needs to accept it.
fn firefox_origin_note() -> Html {
    if !chrome::is_firefox() {
        return html! {};
    }
    let origin = chrome::extension_origin();
    html! {
        <p class="note" id="firefox-origin">
            {"Firefox gives this extension its own origin on each install: "}<code>{ origin.clone() }</code>
            {". A host without a token accepts it when started with "}
            <code>{ format!("--allow-origin {origin}") }</code>
            {"; a host started with "}<code>{"--token"}</code>{" accepts it with that token entered below."}
        </p>
    }
}

/// The SD.Next addresses: loopback (always on) and the enabled sites, each with the pattern
/// it grants and Remove; Add asks for the address's permission in the click and stores it
/// (the worker registers the content scripts for it).
#[function_component(SitesSection)]
fn sites_section() -> Html {
    let list = use_state(|| None::<Vec<Site>>);
    let error = use_state(String::new);
    let input = use_node_ref();
    let reload = {
        let list = list.clone();
        move || {
            let list = list.clone();
            wasm_bindgen_futures::spawn_local(async move {
                list.set(Some(site_store::stored().await));
            });
        }
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |_| {
            reload();
            || ()
        });
    }
    let add = {
        let (input, error, reload) = (input.clone(), error.clone(), reload.clone());
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            let value = input
                .cast::<HtmlInputElement>()
                .map(|i| i.value())
                .unwrap_or_default();
            let site = match sites::site_for(&value) {
                Ok(s) => s,
                Err(e) => {
                    error.set(e.to_string());
                    return;
                }
            };
            // Asked here, in the click's own call: both browsers want the user's gesture.
            let asked = chrome::permissions_request(std::slice::from_ref(&site.pattern));
            let (input, error, reload) = (input.clone(), error.clone(), reload.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let granted = match asked {
                    Ok(p) => chrome::permission_granted(p).await,
                    Err(e) => Err(e),
                };
                match granted {
                    Ok(true) => {
                        site_store::add(site).await;
                        if let Some(i) = input.cast::<HtmlInputElement>() {
                            i.set_value("");
                        }
                        error.set(String::new());
                        reload();
                    }
                    Ok(false) => error.set(format!("{}: permission not granted", site.url)),
                    Err(e) => error.set(e),
                }
            });
        })
    };
    let remove = |pattern: String| {
        let (error, reload) = (error.clone(), reload.clone());
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            let (pattern, error, reload) = (pattern.clone(), error.clone(), reload.clone());
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = site_store::remove(&pattern).await {
                    error.set(e);
                }
                reload();
            });
        })
    };
    let rows = (*list).clone().unwrap_or_default().into_iter().map(|s| {
        html! {
            <li data-pattern={s.pattern.clone()}>
                <span class="addr">{ s.url.clone() }<br/><span class="muted">{ format!("grants {} (any port)", s.pattern) }</span></span>
                <button type="button" class="remove" onclick={remove(s.pattern.clone())}>{"Remove"}</button>
            </li>
        }
    });
    let loopback = LOOPBACK_PATTERNS
        .iter()
        .map(|p| p.trim_end_matches("/*"))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        <fieldset class="sites" id="sdq-sites"><legend>{"SD.Next addresses"}</legend>
            <div class="muted">{ format!("Always on: {loopback} (any port).") }</div>
            <ul id="sdq-site-list">{ for rows }</ul>
            <div class="add">
                <input id="site_url" ref={input} placeholder="http://192.168.1.20:7860 or https://sd.example.lan"
                    aria-label="SD.Next address to enable" />
                <button type="button" id="site_add" onclick={add}>{"Enable"}</button>
            </div>
            <div class="error" id="site_error">{ (*error).clone() }</div>
            <div class="muted">{"Enabling asks the browser for that address; the Enqueue button, menus and panel then work there. Pages there that are not SD.Next are left alone."}</div>
        </fieldset>
    }
}
