//! The history as a gallery: a virtualised grid of thumbnails (the same rows, filter and
//! search as the list); a click opens the viewer, ctrl/cmd- and shift-click select.

use std::rc::Rc;

use scheduler_api::{Task, TaskStatus};
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;
use yew::prelude::*;

use super::history::RowAction;
use super::images::Thumb;
use crate::state::{Click, Picked, task_label, window};
use crate::web::host::Host;
use crate::web::util::ms_of;

/// Cell size in px (square thumbnail plus its label).
const CELL_W: u32 = 156;
const CELL_H: u32 = 182;

/// Props of [`Gallery`].
#[derive(Properties, PartialEq)]
pub struct GalleryProps {
    /// Loaded rows.
    pub rows: Rc<Vec<Task>>,
    /// How many the host has.
    pub total: i64,
    /// The host.
    pub host: Host,
    /// Selected rows.
    #[prop_or_default]
    pub picked: Picked,
    /// A modified click: `(index, id, how)`.
    #[prop_or_default]
    pub on_pick: Callback<(usize, String, Click)>,
    /// Asks for more rows from this offset.
    #[prop_or_default]
    pub on_need_more: Callback<usize>,
    /// Open (the viewer).
    #[prop_or_default]
    pub on_action: Callback<RowAction>,
}

/// The grid.
#[function_component(Gallery)]
pub fn gallery(p: &GalleryProps) -> Html {
    let scroll = use_state(|| 0u32);
    let size = use_state(|| (800u32, 600u32));
    let asked = use_mut_ref(|| 0usize);
    let node = use_node_ref();
    {
        let (node, size) = (node.clone(), size.clone());
        use_effect_with((), move |_| {
            if let Some(el) = node.cast::<HtmlElement>() {
                let (w, h) = (el.client_width(), el.client_height());
                if w > 0 && h > 0 {
                    size.set((w as u32, h as u32));
                }
            }
        });
    }
    let per_row = (size.0 / CELL_W).max(1) as usize;
    let total = (p.total.max(0) as usize).max(p.rows.len());
    let grid_rows = total.div_ceil(per_row);
    let w = window(*scroll, size.1, CELL_H, grid_rows, 2);
    let (first, last) = (w.start * per_row, (w.end * per_row).min(total));
    {
        let need = last > p.rows.len() && p.rows.len() < total;
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
    // One handler for every cell (`data-index`).
    let onclick = {
        let (rows, pick, act) = (p.rows.clone(), p.on_pick.clone(), p.on_action.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(i) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|t| t.closest(".gcell[data-index]").ok().flatten())
                .and_then(|c| c.get_attribute("data-index"))
                .and_then(|i| i.parse::<usize>().ok())
            else {
                return;
            };
            let Some(t) = rows.get(i) else { return };
            let how = Click {
                shift: e.shift_key(),
                toggle: e.ctrl_key() || e.meta_key(),
            };
            if how.shift || how.toggle {
                e.prevent_default();
                pick.emit((i, t.id.clone(), how));
            } else {
                act.emit(RowAction::Open(i));
            }
        })
    };
    let cells = (first..last).map(|i| {
        let Some(t) = p.rows.get(i) else {
            return html! { <div key={format!("ph{i}")} class="gcell placeholder"></div> };
        };
        let has = t.status == TaskStatus::Done && t.image_count > 0;
        let version = t.finished_at.as_ref().map_or(0, ms_of);
        html! {
            <div key={t.id.clone()} class={format!("gcell task-{}{}", t.status.as_str(), if p.picked.has(&t.id) { " picked" } else { "" })}
                 data-task-id={t.id.clone()} data-index={i.to_string()} title={format!("{} ({})", task_label(t), t.id)}>
                <Thumb host={p.host.clone()} id={t.id.clone()} has_image={has} {version} />
                <span class="glabel">{ task_label(t) }</span>
            </div>
        }
    });
    html! {
        <div class="vlist gallery-grid" ref={node} {onscroll} {onclick} data-total={total.to_string()}>
            <div style={format!("height:{}px", w.pad_top)}></div>
            <div class="gcells" style={format!("grid-template-columns:repeat({per_row},1fr)")}>{ for cells }</div>
            <div style={format!("height:{}px", w.pad_bottom)}></div>
        </div>
    }
}
