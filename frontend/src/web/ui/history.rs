//! The virtualised history list: only the rows in view (plus overscan) are in the DOM, so
//! 10,000 tasks render as fast as 20. Unloaded rows (server-side paging) show as
//! placeholders and are requested as they scroll into view.

use std::rc::Rc;

use scheduler_api::Task;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement};
use yew::prelude::*;

use crate::state::queue::task_summary;
use crate::state::{task_label, window};

/// Row height in px (fixed, for the window math).
pub const ROW_H: u32 = 44;

/// A user action on a history row.
#[derive(Debug, Clone, PartialEq)]
pub enum HistAction {
    /// Bookmark (true) or unbookmark.
    Bookmark(String, bool),
    /// Rename.
    Rename(String, String),
    /// Requeue a copy.
    Requeue(String),
    /// Delete.
    Delete(String),
    /// Open the detail view.
    Open(String),
}

/// Props of [`HistoryList`].
#[derive(Properties, PartialEq)]
pub struct HistoryListProps {
    /// Loaded rows (newest first).
    pub rows: Rc<Vec<Task>>,
    /// How many rows the host has for this filter.
    pub total: i64,
    /// Asks for more rows from this offset.
    #[prop_or_default]
    pub on_need_more: Callback<usize>,
    /// Row actions.
    #[prop_or_default]
    pub on_action: Callback<HistAction>,
}

/// The virtualised list.
#[function_component(HistoryList)]
pub fn history_list(p: &HistoryListProps) -> Html {
    let scroll = use_state(|| 0u32);
    let viewport = use_state(|| 600u32);
    let renaming = use_state(|| None::<String>);
    let asked = use_mut_ref(|| 0usize);
    let node = use_node_ref();
    {
        let node = node.clone();
        let viewport = viewport.clone();
        use_effect_with((), move |_| {
            if let Some(el) = node.cast::<HtmlElement>() {
                let h = el.client_height();
                if h > 0 {
                    viewport.set(h as u32);
                }
            }
            || ()
        });
    }
    let total = (p.total.max(0) as usize).max(p.rows.len());
    let w = window(*scroll, *viewport, ROW_H, total, 8);
    {
        let need = w.end > p.rows.len() && p.rows.len() < total;
        let offset = p.rows.len();
        let cb = p.on_need_more.clone();
        let asked = asked.clone();
        use_effect_with((need, offset), move |(need, offset)| {
            if *need && *asked.borrow() != *offset + 1 {
                *asked.borrow_mut() = *offset + 1;
                cb.emit(*offset);
            }
            || ()
        });
    }
    let onscroll = {
        let scroll = scroll.clone();
        Callback::from(move |e: Event| {
            if let Some(el) = e.target().and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
                scroll.set(el.scroll_top().max(0) as u32);
            }
        })
    };
    let rows = (w.start..w.end).map(|i| {
        let Some(t) = p.rows.get(i) else {
            return html! { <div key={format!("ph{i}")} class="hrow placeholder" style={format!("height:{ROW_H}px")}>{"…"}</div> };
        };
        let id = t.id.clone();
        let act = p.on_action.clone();
        let bookmark = {
            let (id, act, b) = (id.clone(), act.clone(), t.bookmarked);
            Callback::from(move |e: MouseEvent| {
                e.stop_propagation();
                act.emit(HistAction::Bookmark(id.clone(), !b));
            })
        };
        let requeue = {
            let (id, act) = (id.clone(), act.clone());
            Callback::from(move |e: MouseEvent| {
                e.stop_propagation();
                act.emit(HistAction::Requeue(id.clone()));
            })
        };
        let delete = {
            let (id, act) = (id.clone(), act.clone());
            Callback::from(move |e: MouseEvent| {
                e.stop_propagation();
                act.emit(HistAction::Delete(id.clone()));
            })
        };
        let open = {
            let (id, act) = (id.clone(), act.clone());
            Callback::from(move |_: MouseEvent| act.emit(HistAction::Open(id.clone())))
        };
        let start_rename = {
            let (id, renaming) = (id.clone(), renaming.clone());
            Callback::from(move |e: MouseEvent| {
                e.stop_propagation();
                renaming.set(Some(id.clone()));
            })
        };
        let label = if renaming.as_deref() == Some(id.as_str()) {
            let (id2, act2, renaming2, renaming3) = (id.clone(), act.clone(), renaming.clone(), renaming.clone());
            let onkeydown = Callback::from(move |e: KeyboardEvent| {
                if e.key() == "Enter" {
                    if let Some(i) = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) {
                        act2.emit(HistAction::Rename(id2.clone(), i.value()));
                    }
                    renaming2.set(None);
                } else if e.key() == "Escape" {
                    renaming2.set(None);
                }
            });
            html! {
                <input class="rename" value={task_label(t).to_owned()} {onkeydown}
                    onclick={Callback::from(|e: MouseEvent| e.stop_propagation())}
                    onblur={Callback::from(move |_| renaming3.set(None))} />
            }
        } else {
            html! { <span class="label" title="Double-click to rename" ondblclick={start_rename}
                onclick={Callback::from(|e: MouseEvent| e.stop_propagation())}>{ task_label(t) }</span> }
        };
        html! {
            <div key={id.clone()} class={classes!("hrow", format!("task-{}", t.status.as_str()))}
                 data-task-id={id.clone()} style={format!("height:{ROW_H}px")} onclick={open}>
                <button class="bm" title={if t.bookmarked {"Unbookmark"} else {"Bookmark"}}
                    data-bookmarked={t.bookmarked.to_string()} onclick={bookmark}>
                    { if t.bookmarked { "★" } else { "☆" } }
                </button>
                <div class="main">
                    { label }
                    <span class="summary">{ task_summary(t) }</span>
                </div>
                <span class="time" title="Finished at">{ crate::web::util::fmt_time(&t.updated_at) }</span>
                <span class={classes!("chip", t.status.as_str())}>{ t.status.as_str() }</span>
                <button class="requeue" title="Requeue" onclick={requeue}>{"↩"}</button>
                <button class="delete" title="Delete" onclick={delete}>{"✕"}</button>
            </div>
        }
    });
    html! {
        <div class="vlist" ref={node} {onscroll} data-total={total.to_string()}
             data-rendered={(w.end - w.start).to_string()}>
            <div style={format!("height:{}px", w.pad_top)}></div>
            { for rows }
            <div style={format!("height:{}px", w.pad_bottom)}></div>
        </div>
    }
}
