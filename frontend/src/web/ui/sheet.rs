//! The comparison sheet of one group (the tasks of one "Queue with all checkpoints" or
//! folder enqueue): their images side by side, each labelled with its checkpoint; open one
//! in the viewer, requeue or delete the whole group (one request each).

use std::rc::Rc;

use scheduler_api::{BulkAction, BulkRequest, MessageResponse, Selection, Task, TaskStatus};
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::images::Thumb;
use super::notify::{act, spawn};
use crate::state::columns::checkpoint_text;
use crate::web::host::{Host, error_text};
use crate::web::util::ms_of;

/// Props of [`Sheet`].
#[derive(Properties, PartialEq)]
pub struct SheetProps {
    /// The group.
    pub group_id: String,
    /// The host.
    pub host: Host,
    /// Close.
    pub on_close: Callback<()>,
    /// Open the viewer over these tasks at this one.
    pub on_open: Callback<(Rc<Vec<Task>>, usize)>,
}

/// The sheet.
#[function_component(Sheet)]
pub fn sheet(p: &SheetProps) -> Html {
    let tasks = use_state(|| None::<Result<Rc<Vec<Task>>, String>>);
    {
        let (tasks, host) = (tasks.clone(), p.host.clone());
        use_effect_with(p.group_id.clone(), move |gid| {
            let gid = gid.clone();
            spawn(async move {
                tasks.set(Some(
                    host.api()
                        .group(&gid)
                        .await
                        .map(|g| Rc::new(g.tasks))
                        .map_err(|e| error_text(&e)),
                ));
            });
        });
    }
    // Esc closes it, like the viewer.
    {
        let close = p.on_close.clone();
        use_effect_with((), move |_| {
            let cb = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                move |e: web_sys::KeyboardEvent| {
                    if e.key() == "Escape" {
                        e.prevent_default();
                        close.emit(());
                    }
                },
            );
            let doc = crate::web::util::document();
            let _ = doc.add_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            move || {
                let _ =
                    doc.remove_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
            }
        });
    }
    // One handler for every control (`data-act`).
    let onclick = {
        let (tasks, host) = (tasks.clone(), p.host.clone());
        let (close, open) = (p.on_close.clone(), p.on_open.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(el) = crate::web::util::closest_target(&e, "[data-act]") else {
                return;
            };
            let list = match &*tasks {
                Some(Ok(l)) => l.clone(),
                _ => Rc::new(vec![]),
            };
            let ids: Vec<String> = list.iter().map(|t| t.id.clone()).collect();
            let action = match el.get_attribute("data-act").as_deref() {
                Some("close") => return close.emit(()),
                Some("open") => {
                    let i = el
                        .get_attribute("data-i")
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    return open.emit((list, i));
                }
                Some("requeue") => BulkAction::Requeue,
                Some("delete")
                    if super::confirm(&format!(
                        "Delete the {} tasks of this group?",
                        ids.len()
                    )) =>
                {
                    BulkAction::Delete
                }
                _ => return,
            };
            let req = BulkRequest {
                action,
                selection: Selection::ids(ids),
            };
            let api = host.api();
            act(async move { api.bulk(&req).await.map(|r| MessageResponse::ok(r.message)) });
            if action == BulkAction::Delete {
                close.emit(());
            }
        })
    };
    let body = match &*tasks {
        None => html! { <div class="meta">{"Loading…"}</div> },
        Some(Err(e)) => html! { <div class="error">{ e.clone() }</div> },
        Some(Ok(list)) => {
            let cells = list.iter().enumerate().map(|(i, t)| {
                let has = t.status == TaskStatus::Done && t.image_count > 0;
                let version = t.finished_at.as_ref().map_or(0, ms_of);
                html! {
                    <figure class={format!("scell task-{}", t.status.as_str())} data-task-id={t.id.clone()} data-act="open" data-i={i.to_string()}>
                        <Thumb host={p.host.clone()} id={t.id.clone()} has_image={has} {version} />
                        <figcaption class="ckpt" title={t.id.clone()}>{ checkpoint_text(t) }</figcaption>
                        { if t.status == TaskStatus::Done { html! {} } else {
                            html! { <span class={classes!("chip", t.status.as_str())}>{ t.status.as_str() }</span> }
                        } }
                    </figure>
                }
            });
            let prompt = list
                .first()
                .and_then(|t| t.params.get("prompt"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            html! { <>
                <div class="meta">{ format!("{} checkpoints · {prompt}", list.len()) }</div>
                <div class="sheet-grid">{ for cells }</div>
                <div class="actions">
                    <button id="sdq-sheet-requeue" data-act="requeue">{"Requeue group"}</button>
                    <button id="sdq-sheet-delete" data-act="delete">{"Delete group"}</button>
                </div>
            </> }
        }
    };
    html! {
        <div class="modal sheet" id="sdq-sheet" data-group-id={p.group_id.clone()} {onclick}>
            <button class="close" data-act="close">{"✕"}</button>
            <h3>{"Comparison sheet"}</h3>
            { body }
        </div>
    }
}
