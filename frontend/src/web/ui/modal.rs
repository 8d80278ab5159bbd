//! The modal module's app (feature `viewer`, its own wasm module `pkg/viewer_bg.wasm`,
//! loaded by the panel's page on the first open): the full-size viewer, a group's
//! comparison sheet and the edit form, shown over the panel in the same document.
//!
//! The panel calls `open_modal(json)` (a [`ModalSpec`]) through its page's loader; the
//! viewer and the sheet switch to each other here; toasts and reloads go back to the panel
//! as window events ([`super::notify`]). Closing unmounts the app.

use std::cell::RefCell;
use std::rc::Rc;

use scheduler_api::Task;
use yew::AppHandle;
use yew::prelude::*;

use super::edit::EditView;
use super::sheet::Sheet;
use super::viewer::Viewer;
use crate::messages::{Modal, ModalSpec};
use crate::web::host::{Host, Platform};
use crate::web::util;

thread_local! {
    static APP: RefCell<Option<AppHandle<ModalApp>>> = const { RefCell::new(None) };
}

/// The id of the element the modals mount in.
const ROOT_ID: &str = "sdq-modal-root";

/// Shows a modal (replacing one already open).
pub fn open(spec_json: &str) {
    let spec: ModalSpec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => return super::notify::toast(format!("cannot open: {e}"), true),
    };
    close();
    let d = util::document();
    let Some(body) = d.body() else { return };
    let Ok(root) = d.create_element("div") else {
        return;
    };
    root.set_id(ROOT_ID);
    let _ = body.append_child(&root);
    let host = Host {
        base: spec.base,
        token: spec.token,
        platform: if spec.web {
            Platform::Web
        } else {
            Platform::Extension
        },
    };
    let handle = yew::Renderer::<ModalApp>::with_root_and_props(
        root,
        ModalProps {
            host,
            modal: spec.modal,
        },
    )
    .render();
    APP.with(|a| *a.borrow_mut() = Some(handle));
}

/// Closes the modal (unmounts the app, removes its root).
pub fn close() {
    if let Some(h) = APP.with(|a| a.borrow_mut().take()) {
        h.destroy();
    }
    if let Some(el) = util::document().get_element_by_id(ROOT_ID) {
        el.remove();
    }
}

/// Props of [`ModalApp`].
#[derive(Properties, PartialEq)]
pub struct ModalProps {
    /// The host.
    pub host: Host,
    /// What it opens with.
    pub modal: Modal,
}

/// What is shown now.
#[derive(Clone, PartialEq)]
enum Shown {
    Viewer(Rc<Vec<Task>>, usize),
    Sheet(String),
    Edit(Rc<Task>),
}

/// The modal app.
#[function_component(ModalApp)]
pub fn modal_app(p: &ModalProps) -> Html {
    let shown = use_state(|| match &p.modal {
        Modal::Viewer { tasks, start } => Shown::Viewer(Rc::new(tasks.clone()), *start),
        Modal::Sheet { group_id } => Shown::Sheet(group_id.clone()),
        Modal::Edit { task } => Shown::Edit(Rc::new((**task).clone())),
    });
    // Closing unmounts this app, which must not happen while it renders.
    let on_close = Callback::from(|_: ()| {
        super::notify::spawn(async { close() });
    });
    match (*shown).clone() {
        Shown::Viewer(rows, start) => {
            let on_sheet = {
                let shown = shown.clone();
                Callback::from(move |g: String| shown.set(Shown::Sheet(g)))
            };
            html! { <Viewer {rows} {start} host={p.host.clone()} {on_close} {on_sheet} /> }
        }
        Shown::Sheet(g) => {
            let on_open = {
                let shown = shown.clone();
                Callback::from(move |(rows, i): (Rc<Vec<Task>>, usize)| {
                    shown.set(Shown::Viewer(rows, i))
                })
            };
            let k = g.clone();
            html! { <Sheet key={k} group_id={g} host={p.host.clone()} {on_close} {on_open} /> }
        }
        Shown::Edit(task) => {
            let k = task.id.clone();
            html! { <EditView key={k} task={(*task).clone()} host={p.host.clone()} {on_close} /> }
        }
    }
}
