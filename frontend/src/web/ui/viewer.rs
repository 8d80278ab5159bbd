//! The full-size viewer: one result image at a time (fetched with the host's token, its
//! object URL revoked when the next one shows), ←/→ through a task's images and on to the
//! next or previous task, Esc to close; the infotext, copy, download, the results zip, send
//! to txt2img/img2img (in the extension), requeue, and the task's group sheet.

use std::rc::Rc;

use scheduler_api::{Task, TaskResult, TaskStatus};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use yew::prelude::*;

use super::images::{Slot, Thumb, full_image};
use super::notify::{act as act_on, spawn, toast};
use crate::messages::{Filled, ToWorker};
use crate::state::queue::{task_summary, viewer_step as step};
use crate::state::task_label;
use crate::web::host::{Host, blob, error_text};
use crate::web::util::{self, ms_of};

/// Props of [`Viewer`].
#[derive(Properties, PartialEq)]
pub struct ViewerProps {
    /// The tasks ←/→ walks through (the list it was opened from).
    pub rows: Rc<Vec<Task>>,
    /// The task it opens on.
    pub start: usize,
    /// The host.
    pub host: Host,
    /// Close.
    pub on_close: Callback<()>,
    /// Open a group's comparison sheet.
    #[prop_or_default]
    pub on_sheet: Callback<String>,
}

/// Starts a browser download of a blob or object URL.
pub fn download_url(url: &str, name: &str) {
    let d = util::document();
    if let Ok(a) = d.create_element("a") {
        let _ = a.set_attribute("href", url);
        let _ = a.set_attribute("download", name);
        if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
            a.click();
        }
    }
}

/// Starts a browser download of bytes.
pub fn download_bytes(bytes: &[u8], content_type: &str, name: &str) -> Result<(), String> {
    let b = blob(bytes, content_type)?;
    let url = web_sys::Url::create_object_url_with_blob(&b).map_err(|e| format!("{e:?}"))?;
    download_url(&url, name);
    Ok(())
}

fn infotexts(t: &Task) -> Vec<String> {
    t.result
        .as_deref()
        .and_then(|r| serde_json::from_str::<TaskResult>(r).ok())
        .map(|r| r.infotexts)
        .unwrap_or_default()
}

/// The viewer.
#[function_component(Viewer)]
pub fn viewer(p: &ViewerProps) -> Html {
    let at = use_state(|| (p.start.min(p.rows.len().saturating_sub(1)), 0usize));
    let image = use_state(|| None::<Slot>);
    let counts: Rc<Vec<u32>> = Rc::new(
        p.rows
            .iter()
            .map(|t| {
                if t.status == TaskStatus::Done {
                    t.image_count
                } else {
                    0
                }
            })
            .collect(),
    );
    // Keys: ←/→ and Esc.
    {
        let (at, counts, close) = (at.clone(), counts.clone(), p.on_close.clone());
        use_effect_with(counts.clone(), move |_| {
            let cb = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                move |e: web_sys::KeyboardEvent| {
                    let typing = e
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA"));
                    match e.key().as_str() {
                        "Escape" => close.emit(()),
                        "ArrowRight" if !typing => at.set(step(&counts, *at, true)),
                        "ArrowLeft" if !typing => at.set(step(&counts, *at, false)),
                        _ => return,
                    }
                    e.prevent_default();
                },
            );
            let doc = util::document();
            let _ = doc.add_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            move || {
                let _ =
                    doc.remove_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            }
        });
    }
    let (ti, ii) = *at;
    let t = p.rows.get(ti).cloned();
    // The full image: one at a time.
    {
        let (image, host) = (image.clone(), p.host.clone());
        let key = t.as_ref().map(|t| (t.id.clone(), ii, counts[ti] > 0));
        use_effect_with(key, move |key| {
            let alive = Rc::new(std::cell::Cell::new(true));
            let shown = Rc::new(std::cell::RefCell::new(None::<String>));
            image.set(None);
            if let Some((id, ii, has)) = key.clone() {
                if has {
                    let (alive, shown) = (alive.clone(), shown.clone());
                    spawn(async move {
                        let slot = full_image(&host, &id, ii).await;
                        if let Slot::Ready(url) = &slot {
                            if !alive.get() {
                                let _ = web_sys::Url::revoke_object_url(url);
                                return;
                            }
                            *shown.borrow_mut() = Some(url.clone());
                        }
                        image.set(Some(slot));
                    });
                } else {
                    image.set(Some(Slot::Missing));
                }
            }
            move || {
                alive.set(false);
                if let Some(url) = shown.borrow_mut().take() {
                    let _ = web_sys::Url::revoke_object_url(&url);
                }
            }
        });
    }
    let Some(t) = t else {
        let c = p.on_close.clone();
        return html! { <div class="modal viewer" id="sdq-detail"><button class="close" onclick={Callback::from(move |_| c.emit(()))}>{"✕"}</button>{"Nothing to show"}</div> };
    };
    let infos = infotexts(&t);
    let info = infos.get(ii).cloned().unwrap_or_default();
    let n = counts[ti];
    // One handler for every control (`data-act`).
    let onclick = {
        let (at, counts, image, t, info) = (
            at.clone(),
            counts.clone(),
            image.clone(),
            t.clone(),
            info.clone(),
        );
        let (host, close, on_sheet) = (p.host.clone(), p.on_close.clone(), p.on_sheet.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(el) = crate::web::util::closest_target(&e, "[data-act]") else {
                return;
            };
            let act = el.get_attribute("data-act").unwrap_or_default();
            let (api, id) = (host.api(), t.id.clone());
            match act.as_str() {
                "close" => close.emit(()),
                "prev" | "next" => at.set(step(&counts, *at, act == "next")),
                "pick" => {
                    let i = el
                        .get_attribute("data-i")
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    at.set((at.0, i));
                }
                "copy" => {
                    let info = info.clone();
                    spawn(async move {
                        let done = match web_sys::window().map(|w| w.navigator().clipboard()) {
                            Some(c) => wasm_bindgen_futures::JsFuture::from(c.write_text(&info))
                                .await
                                .is_ok(),
                            None => false,
                        };
                        toast(
                            if done {
                                "Infotext copied"
                            } else {
                                "Copy failed"
                            },
                            !done,
                        );
                    });
                }
                "download" => {
                    if let Some(Slot::Ready(url)) = &*image {
                        download_url(url, &format!("{id}-{}", at.1));
                    }
                }
                "zip" => spawn(async move {
                    let r = api
                        .results_zip(&id)
                        .await
                        .map_err(|e| error_text(&e))
                        .and_then(|b| {
                            download_bytes(&b, "application/zip", &format!("results-{id}.zip"))
                        });
                    if let Err(e) = r {
                        toast(format!("Zip failed: {e}"), true);
                    }
                }),
                "requeue" => act_on(async move {
                    api.requeue(&id)
                        .await
                        .map(|r| scheduler_api::MessageResponse::ok(r.message))
                }),
                "group" => {
                    if let Some(g) = &t.group_id {
                        on_sheet.emit(g.clone());
                    }
                }
                tab @ ("txt2img" | "img2img") => {
                    let Some(tab) = crate::capture::Tab::parse(tab) else {
                        return;
                    };
                    let msg = ToWorker::FillPage {
                        tab,
                        params: t.params.clone(),
                        // With the task id the worker fetches the full request (images
                        // included).
                        task_id: Some(t.id.clone()),
                    };
                    spawn(async move {
                        match crate::web::chrome::ask_worker::<Filled>(&msg).await {
                            Ok(_) => toast(format!("Sent to {}", msg_tab(&msg)), false),
                            Err(e) => toast(e, true),
                        }
                    });
                }
                _ => {}
            }
        })
    };
    let version = t.finished_at.as_ref().map_or(0, ms_of);
    let main_image = match &*image {
        Some(Slot::Ready(url)) => {
            html! { <img id="sdq-viewer-img" class="full" src={url.clone()} alt={format!("result {ii}")} /> }
        }
        Some(Slot::Missing) => {
            html! { <div class="full noimg" id="sdq-viewer-img">{ if n == 0 { "No image" } else { "Image not available" } }</div> }
        }
        None => html! { <div class="full loading">{"Loading…"}</div> },
    };
    let request: String = t
        .params
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}\n"),
            other => format!("{k}: {other}\n"),
        })
        .collect();
    html! {
        <div class="modal viewer" id="sdq-detail" data-task-id={t.id.clone()} data-image={ii.to_string()} {onclick}>
            <button class="close" data-act="close" title="Close (Esc)">{"✕"}</button>
            <h3 title={t.id.clone()}>{ task_label(&t) }</h3>
            <div class="meta">{ format!("{} · {} · {} · image {} of {} · task {} of {}",
                t.task_type.as_str(), t.status.as_str(), task_summary(&t), (ii + 1).min(n as usize), n, ti + 1, p.rows.len()) }</div>
            { t.error.clone().map(|e| html! { <div class="error">{ format!("Error: {e}") }</div> }).unwrap_or_default() }
            <div class="stage">
                <button class="nav prev" title="Previous (←)" data-act="prev">{"‹"}</button>
                { main_image }
                <button class="nav next" title="Next (→)" data-act="next">{"›"}</button>
            </div>
            <div class="gallery" id="sdq-gallery">
                { for (0..n as usize).map(|i| html! {
                    <span class={if i == ii { "pick selected" } else { "pick" }} data-act="pick" data-i={i.to_string()}>
                        <Thumb host={p.host.clone()} id={t.id.clone()} index={i} {version} />
                    </span>
                }) }
            </div>
            <textarea class="infotext" id="sdq-infotext" readonly=true value={info} />
            <div class="actions">
                <button id="sdq-copy" data-act="copy">{"Copy infotext"}</button>
                <button id="sdq-download" data-act="download" disabled={!matches!(*image, Some(Slot::Ready(_)))}>{"Download"}</button>
                <button id="sdq-zip" data-act="zip" disabled={n == 0}>{"Download zip"}</button>
                { if p.host.is_web() { html! {} } else { html! { <>
                    <button id="sdq-send-txt2img" data-act="txt2img">{"Send to txt2img"}</button>
                    <button id="sdq-send-img2img" data-act="img2img">{"Send to img2img"}</button>
                </> } } }
                <button id="sdq-viewer-requeue" data-act="requeue">{"Requeue"}</button>
                { if t.group_id.is_some() { html! { <button id="sdq-open-group" data-act="group">{"Group sheet"}</button> } } else { html! {} } }
            </div>
            <details><summary>{"Request"}</summary><pre>{ request }</pre></details>
        </div>
    }
}

fn msg_tab(m: &ToWorker) -> &str {
    match m {
        ToWorker::FillPage { tab, .. } => tab.prefix(),
        _ => "",
    }
}
