//! Inline edit of a pending task: every field of its request, its name and checkpoint;
//! saved as a shallow merge (`PUT /task/{id}`), only the changed fields. A refusal (the
//! host checks the merged request against SD.Next's contract) keeps the form open with the
//! host's reason under it and the refused field marked.

use std::rc::Rc;

use scheduler_api::{Task, UpdateTaskRequest};
use serde_json::{Map, Value};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::notify::{reload, spawn, toast};
use crate::state::task_label;
use crate::web::host::{Host, error_text};

#[derive(Properties, PartialEq)]
/// Props of [`EditView`].
pub struct EditProps {
    /// The task.
    pub task: Task,
    /// The host.
    pub host: Host,
    /// Close.
    pub on_close: Callback<()>,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The edit form.
#[function_component(EditView)]
pub fn edit_view(p: &EditProps) -> Html {
    let node = use_node_ref();
    // The host's refusal: its reason, and the request field its path starts with.
    let refused = use_state(|| None::<(String, Option<String>)>);
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
        let (node, host, t, close) = (node.clone(), p.host.clone(), t.clone(), p.on_close.clone());
        let refused = refused.clone();
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
            let (close, refused) = (close.clone(), refused.clone());
            spawn(async move {
                match api.update_task(&id, &edit).await {
                    Ok(m) => {
                        toast(m.message, false);
                        reload();
                        close.emit(());
                    }
                    Err(e) => {
                        let field = e
                            .body()
                            .and_then(|b| b.path.clone())
                            .map(|p| p.split(['.', '[']).next().unwrap_or_default().to_owned());
                        refused.set(Some((error_text(&e), field)));
                    }
                }
            });
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
                    let bad = refused.as_ref().and_then(|(_, f)| f.as_deref()) == Some(k.as_str());
                    let class = bad.then_some("invalid");
                    if k.contains("prompt") || text.len() > 60 {
                        html! { <label class={class}>{ k.clone() }<textarea data-field={k.clone()} value={text} /></label> }
                    } else {
                        html! { <label class={class}>{ k.clone() }<input data-field={k.clone()} value={text} /></label> }
                    }
                }) }
            </div>
            if let Some((reason, _)) = &*refused {
                <p class="error" id="sdq-edit-error" role="alert">{ reason.clone() }</p>
            }
            <div class="actions">
                <button id="sdq-edit-save" onclick={save}>{"Save"}</button>
                <button onclick={cancel}>{"Cancel"}</button>
            </div>
        </div>
    }
}
