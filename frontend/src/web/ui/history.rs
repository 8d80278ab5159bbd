//! The task lists (the pending queue and the history): one virtualised list — only the rows
//! in view (plus overscan) are in the DOM, so 10,000 tasks render as fast as 20; rows not
//! loaded yet (keyset pages) show as placeholders and are asked for as they scroll into
//! view. A row leads with the name or the prompt (the id on hover), then the shown columns
//! (thumbnail, checkpoint, sampler, steps, CFG, size, batch, times, status) and its actions.
//! Rows are selected with their box, ctrl/cmd-click and shift-click; the header's box
//! selects everything the filter matches.

use std::rc::Rc;

use scheduler_api::{EtaResponse, MoveTarget, Task, TaskStatus};
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, HtmlInputElement};
use yew::prelude::*;

use super::images::Thumb;
use std::fmt::Write;

use crate::state::markup::push_el;
use crate::state::queue::task_prompt;
use crate::state::{Click, Col, Columns, Picked, drop_target, task_label, window};
use crate::web::host::Host;
use crate::web::util::{fmt_clock, fmt_time, ms_of};

/// Row height in px (fixed, for the window math).
pub const ROW_H: u32 = 52;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Pending tasks (drag to reorder, run, edit).
    Queue,
    /// Finished tasks (open, bookmark, rename, requeue).
    History,
}

/// A user action on a row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowAction {
    /// Open the viewer at this row.
    Open(usize),
    /// Bookmark (true) or unbookmark.
    Bookmark(String, bool),
    /// Rename.
    Rename(String, String),
    /// Requeue a copy.
    Requeue(String),
    /// Delete (or interrupt).
    Delete(String),
    /// Run now.
    Run(String),
    /// Edit (pending).
    Edit(usize),
    /// Move (drag and drop).
    Move(String, MoveTarget),
    /// Open the comparison sheet of a group.
    Sheet(String),
}

/// Props of [`TaskList`].
#[derive(Properties, PartialEq)]
pub struct TaskListProps {
    /// Which list.
    pub kind: ListKind,
    /// Loaded rows (in the list's order).
    pub rows: Rc<Vec<Task>>,
    /// How many rows the host has for this filter.
    pub total: i64,
    /// Shown columns.
    pub cols: Columns,
    /// The host (thumbnails).
    pub host: Host,
    /// Selected rows.
    #[prop_or_default]
    pub picked: Picked,
    /// A row's box or a modified click: `(index, id, how)`.
    #[prop_or_default]
    pub on_pick: Callback<(usize, String, Click)>,
    /// The header's box: select all (true) or nothing.
    #[prop_or_default]
    pub on_pick_all: Callback<bool>,
    /// Asks for more rows from this offset.
    #[prop_or_default]
    pub on_need_more: Callback<usize>,
    /// Row actions.
    #[prop_or_default]
    pub on_action: Callback<RowAction>,
    /// Expected starts (queue).
    #[prop_or_default]
    pub eta: Option<Rc<EtaResponse>>,
}

fn stop(e: &MouseEvent) {
    e.stop_propagation();
}

fn click_of(e: &MouseEvent) -> Click {
    Click {
        shift: e.shift_key(),
        toggle: e.ctrl_key() || e.meta_key(),
    }
}

/// The queue's "starts ≈" text of a task.
fn starts(eta: Option<&EtaResponse>, id: &str) -> (String, String) {
    match eta.and_then(|e| e.tasks.iter().find(|t| t.id == id)) {
        Some(t) => match t.starts_at {
            Some(ms) => {
                let load = if t.loads_checkpoint {
                    " (after a checkpoint load)"
                } else {
                    ""
                };
                (
                    fmt_clock(ms),
                    format!(
                        "Expected to start ≈ {}{load} on {}",
                        fmt_clock(ms),
                        t.backend.as_deref().unwrap_or("a backend")
                    ),
                )
            }
            None => (
                "—".into(),
                "No finished task yet to measure speed on".into(),
            ),
        },
        None => ("—".into(), String::new()),
    }
}

/// The status cell's chip: its text and title (retries and holds spelled out).
fn status_chip(t: &Task) -> (String, String) {
    match (&t.status, &t.next_run_at) {
        (TaskStatus::Pending, Some(at)) => (
            format!("retry {}", fmt_clock(ms_of(at))),
            format!(
                "Attempt {} failed; waits until {} before its next try",
                t.attempts,
                fmt_time(at)
            ),
        ),
        (s, _) if t.attempts > 1 => (
            format!("{} ×{}", s.as_str(), t.attempts),
            format!("{} after {} attempts", s.as_str(), t.attempts),
        ),
        (s, _) => (s.as_str().to_owned(), t.error.clone().unwrap_or_default()),
    }
}

/// Raw markup (the caller escapes every task text with [`esc`](crate::state::markup::esc)).
pub fn raw(s: String) -> Html {
    Html::from_html_unchecked(s.into())
}

/// The row (and its index) an event happened in, and the `data-act` of the control in it.
fn row_of(e: &Event) -> Option<(usize, web_sys::Element, Option<String>)> {
    let target = e.target()?.dyn_into::<web_sys::Element>().ok()?;
    let row = target.closest(".trow[data-index]").ok()??;
    let i = row.get_attribute("data-index")?.parse().ok()?;
    let act =
        crate::web::util::closest_target(e, "[data-act]").and_then(|a| a.get_attribute("data-act"));
    Some((i, target, act))
}

/// The virtualised task list. Its rows carry no handlers: the list has one per event kind
/// and finds the row (`data-index`) and the control (`data-act`) the event came from.
#[function_component(TaskList)]
pub fn task_list(p: &TaskListProps) -> Html {
    let scroll = use_state(|| 0u32);
    let viewport = use_state(|| 600u32);
    let renaming = use_state(|| None::<String>);
    let drag = use_state(|| None::<String>);
    let gap = use_state(|| None::<usize>);
    let asked = use_mut_ref(|| 0usize);
    let node = use_node_ref();
    {
        let (node, viewport) = (node.clone(), viewport.clone());
        use_effect_with((), move |_| {
            if let Some(el) = node.cast::<HtmlElement>() {
                let h = el.client_height();
                if h > 0 {
                    viewport.set(h as u32);
                }
            }
        });
    }
    let queue = p.kind == ListKind::Queue;
    // Pending tasks have no image yet: the queue list has no image column (an empty one
    // would only push the other columns aside).
    let cols = if queue {
        p.cols.with(Col::Thumb, false)
    } else {
        p.cols
    };
    let total = (p.total.max(0) as usize).max(p.rows.len());
    let w = window(*scroll, *viewport, ROW_H, total, 8);
    {
        let need = w.end > p.rows.len() && p.rows.len() < total;
        let (offset, cb, asked) = (p.rows.len(), p.on_need_more.clone(), asked.clone());
        use_effect_with((need, offset), move |(need, offset)| {
            if *need && *asked.borrow() != *offset + 1 {
                *asked.borrow_mut() = *offset + 1;
                cb.emit(*offset);
            }
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
    let rows = p.rows.clone();
    let onclick = {
        let (rows, pick, act) = (rows.clone(), p.on_pick.clone(), p.on_action.clone());
        Callback::from(move |e: MouseEvent| {
            let Some((i, target, a)) = row_of(&e) else {
                return;
            };
            let Some(t) = rows.get(i) else { return };
            let id = t.id.clone();
            let how = click_of(&e);
            let action = match a.as_deref() {
                Some("pick") => {
                    return pick.emit((
                        i,
                        id,
                        Click {
                            shift: how.shift,
                            toggle: true,
                        },
                    ));
                }
                Some("rename") => return,
                Some("run") => RowAction::Run(id),
                Some("edit") => RowAction::Edit(i),
                Some("delete") => RowAction::Delete(id),
                Some("requeue") => RowAction::Requeue(id),
                Some("bm") => RowAction::Bookmark(id, !t.bookmarked),
                Some("group") => match &t.group_id {
                    Some(g) => RowAction::Sheet(g.clone()),
                    None => return,
                },
                _ if how.shift || how.toggle || queue => {
                    e.prevent_default();
                    return pick.emit((i, id, how));
                }
                // The label is double-clicked to rename: a click on it opens nothing (the
                // viewer would cover the row before the second click).
                _ if target.closest(".label").ok().flatten().is_some() => return,
                _ => RowAction::Open(i),
            };
            stop(&e);
            act.emit(action);
        })
    };
    let ondblclick = {
        let (rows, act, renaming) = (rows.clone(), p.on_action.clone(), renaming.clone());
        Callback::from(move |e: MouseEvent| {
            let Some((i, target, _)) = row_of(&e) else {
                return;
            };
            if target.closest(".label").ok().flatten().is_none() {
                return;
            }
            if queue {
                act.emit(RowAction::Edit(i));
            } else if let Some(t) = rows.get(i) {
                renaming.set(Some(t.id.clone()));
            }
        })
    };
    let onkeydown = {
        let (rows, act, renaming) = (rows.clone(), p.on_action.clone(), renaming.clone());
        Callback::from(move |e: KeyboardEvent| {
            let Some((i, target, _)) = row_of(&e) else {
                return;
            };
            let Some(input) = target.dyn_ref::<HtmlInputElement>() else {
                return;
            };
            match e.key().as_str() {
                "Enter" => {
                    if let Some(t) = rows.get(i) {
                        act.emit(RowAction::Rename(t.id.clone(), input.value()));
                    }
                    renaming.set(None);
                }
                "Escape" => renaming.set(None),
                _ => {}
            }
        })
    };
    let onfocusout = {
        let renaming = renaming.clone();
        Callback::from(move |e: FocusEvent| {
            if row_of(&e)
                .is_some_and(|(_, t, a)| a.as_deref() == Some("rename") && t.tag_name() == "INPUT")
            {
                renaming.set(None);
            }
        })
    };
    // Drag and drop (queue).
    let ondragstart = {
        let (rows, drag) = (rows.clone(), drag.clone());
        Callback::from(move |e: DragEvent| {
            let Some((i, _, _)) = row_of(&e) else { return };
            let Some(t) = rows.get(i) else { return };
            if let Some(dt) = e.data_transfer() {
                let _ = dt.set_data("text/plain", &t.id);
                dt.set_effect_allowed("move");
            }
            drag.set(Some(t.id.clone()));
        })
    };
    let ondragover = {
        let gap = gap.clone();
        Callback::from(move |e: DragEvent| {
            let Some((i, target, _)) = row_of(&e) else {
                return;
            };
            e.prevent_default();
            let below = target.closest(".trow").ok().flatten().is_some_and(|el| {
                let r = el.get_bounding_client_rect();
                f64::from(e.client_y()) > r.top() + r.height() / 2.0
            });
            let g = i + usize::from(below);
            if *gap != Some(g) {
                gap.set(Some(g));
            }
        })
    };
    let ondrop = {
        let (rows, drag, gap, act) = (rows.clone(), drag.clone(), gap.clone(), p.on_action.clone());
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            let dragged = (*drag).clone().or_else(|| {
                e.data_transfer()
                    .and_then(|dt| dt.get_data("text/plain").ok())
            });
            let g = (*gap).or_else(|| row_of(&e).map(|r| r.0));
            drag.set(None);
            gap.set(None);
            let (Some(dragged), Some(g)) = (dragged, g) else {
                return;
            };
            let ids: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
            if let Some(target) = drop_target(&ids, &dragged, g) {
                act.emit(RowAction::Move(dragged, target));
            }
        })
    };
    let ondragend = {
        let (drag, gap) = (drag.clone(), gap.clone());
        Callback::from(move |_: DragEvent| {
            drag.set(None);
            gap.set(None);
        })
    };
    let eta = p.eta.as_deref();
    let html_rows = (w.start..w.end).map(|i| {
        let Some(t) = p.rows.get(i) else {
            return html! { <div key={format!("ph{i}")} class="trow placeholder">{"…"}</div> };
        };
        let id = t.id.clone();
        let picked = p.picked.has(&id);
        // The row is raw markup around its two live parts (the rename box and the
        // thumbnail); the list's handlers find the controls by `data-act`.
        let mut head = format!(
            "<span class=\"sel\" data-act=\"pick\"><input type=\"checkbox\" aria-label=\"Select\"{}></span>",
            if picked { " checked" } else { "" }
        );
        if queue {
            head.push_str("<span class=\"handle\" title=\"Drag to reorder\">⠿</span>");
        }
        let label = if renaming.as_deref() == Some(id.as_str()) {
            html! { <input class="rename" data-act="rename" value={t.name.clone().unwrap_or_else(|| task_label(t).to_owned())} /> }
        } else {
            let mut l = String::new();
            push_el(&mut l, "span", "label", if queue { "Double-click to edit" } else { "Double-click to rename" }, task_label(t));
            raw(l)
        };
        let sub = task_prompt(t).map(str::to_owned).unwrap_or_else(|| {
            format!("{} · {}", t.task_type.as_str(), crate::state::columns::checkpoint_text(t))
        });
        let mut summary = String::new();
        push_el(&mut summary, "span", "summary", "", &sub);
        let thumb = cols.shows(Col::Thumb).then(|| {
            let has = t.status == TaskStatus::Done && t.image_count > 0;
            let version = t.finished_at.as_ref().map_or(0, ms_of);
            html! { <div class="cell c-thumb"><Thumb host={p.host.clone()} id={id.clone()} has_image={has} {version} /></div> }
        });
        let mut rest = String::with_capacity(512);
        for c in cols.shown() {
            let class = format!("cell c-{}", c.key());
            let (text, title) = match c {
                Col::Thumb => continue,
                Col::Created => (fmt_time(&t.created_at), "Queued at".into()),
                Col::Time if queue => starts(eta, &id),
                Col::Time => (
                    fmt_time(t.finished_at.as_ref().unwrap_or(&t.updated_at)),
                    "Finished at".into(),
                ),
                Col::Status => {
                    let (text, title) = status_chip(t);
                    let _ = write!(rest, "<div class=\"{class}\">");
                    push_el(&mut rest, "span", &format!("chip {}", t.status.as_str()), &title, &text);
                    rest.push_str("</div>");
                    continue;
                }
                other => {
                    let text = other.text(t).unwrap_or_default();
                    (text.clone(), text)
                }
            };
            push_el(&mut rest, "div", &class, &title, &text);
        }
        rest.push_str("<div class=\"acts\">");
        if queue {
            rest.push_str(concat!(
                "<button class=\"run\" title=\"Run now\" data-act=\"run\">▶</button>",
                "<button class=\"edit\" title=\"Edit\" data-act=\"edit\">✎</button>",
                "<button class=\"delete\" title=\"Delete\" data-act=\"delete\">✕</button>"
            ));
        } else {
            if t.group_id.is_some() {
                rest.push_str("<button class=\"group\" title=\"Comparison sheet of its group\" data-act=\"group\">⊞</button>");
            }
            let _ = write!(
                rest,
                "<button class=\"bm\" title=\"{}\" data-bookmarked=\"{}\" data-act=\"bm\">{}</button>",
                if t.bookmarked { "Unbookmark" } else { "Bookmark" },
                t.bookmarked,
                if t.bookmarked { "★" } else { "☆" }
            );
            rest.push_str(concat!(
                "<button class=\"requeue\" title=\"Requeue\" data-act=\"requeue\">↩</button>",
                "<button class=\"delete\" title=\"Delete\" data-act=\"delete\">✕</button>"
            ));
        }
        rest.push_str("</div>");
        let mut class = format!(
            "trow {} task-{}",
            if queue { "prow" } else { "hrow" },
            t.status.as_str()
        );
        match *gap {
            Some(g) if queue && g == i => class.push_str(" drop-above"),
            Some(g) if queue && g == i + 1 && i + 1 == p.rows.len() => class.push_str(" drop-below"),
            _ => {}
        }
        if picked {
            class.push_str(" picked");
        }
        if drag.as_deref() == Some(id.as_str()) {
            class.push_str(" dragging");
        }
        html! {
            <div key={id.clone()} {class} data-task-id={id.clone()} data-index={i.to_string()}
                draggable={if queue { "true" } else { "false" }}>
                { raw(head) }
                <div class="main" title={format!("{} ({})", task_label(t), id)}>
                    { label }
                    { raw(summary) }
                </div>
                { thumb.unwrap_or_default() }
                { raw(rest) }
            </div>
        }
    });
    let count = p.picked.count(total);
    let all = p.picked.all && p.picked.ids.is_empty() && total > 0;
    let on_all = {
        let cb = p.on_pick_all.clone();
        Callback::from(move |e: MouseEvent| {
            let on = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
                .is_some_and(|i| i.checked());
            cb.emit(on);
        })
    };
    let head_cells = cols.shown().map(|c| {
        html! { <div class={format!("cell c-{}", c.key())}>{ c.label(queue) }</div> }
    });
    let mut list_class = String::from(if queue {
        "tlist queue-list"
    } else {
        "tlist history-list"
    });
    if !cols.shows(Col::Thumb) {
        list_class.push_str(" nothumb");
    }
    html! {
        <div class={list_class} style={format!("--cols:{}", cols.template(queue))}>
            <div class="trow thead">
                <span class="sel" title="Select every task of this list (with its filter and search)">
                    <input type="checkbox" class="select-all" checked={all} onclick={on_all} aria-label="Select all" />
                </span>
                // The drag handles' column: empty here, hidden with the handles on narrow screens.
                { if queue { html! { <span class="handle-slot"></span> } } else { html! {} } }
                <div class="main">{ if count > 0 { format!("{count} selected") } else { format!("{total} tasks") } }</div>
                { for head_cells }
                <div class="acts"></div>
            </div>
            <div class="vlist" ref={node} {onscroll} {onclick} {ondblclick} {onkeydown} {onfocusout}
                 {ondragstart} {ondragover} {ondrop} {ondragend}
                 data-total={total.to_string()} data-start={w.start.to_string()} data-rendered={(w.end - w.start).to_string()}>
                <div style={format!("height:{}px", w.pad_top)}></div>
                { for html_rows }
                <div style={format!("height:{}px", w.pad_bottom)}></div>
            </div>
        </div>
    }
}
