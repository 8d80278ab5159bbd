//! Yew apps: the task panel (feature `panel`: the extension's panel page and drawer, and the
//! web app the host serves), its modals (feature `viewer`: the full-size viewer, the group
//! sheet and the edit form, a module of their own loaded on first use), the popup and the
//! options page (feature `popup`).

pub mod images;
pub mod notify;

#[cfg(any(feature = "panel", feature = "popup"))]
pub mod live;

#[cfg(feature = "panel")]
pub mod backends;
#[cfg(all(feature = "panel", feature = "test-hooks"))]
mod bench;
#[cfg(feature = "panel")]
pub mod gallery;
#[cfg(feature = "panel")]
pub mod history;
#[cfg(feature = "panel")]
pub mod panel;

#[cfg(feature = "viewer")]
pub mod edit;
#[cfg(feature = "viewer")]
pub mod modal;
#[cfg(feature = "viewer")]
pub mod sheet;
#[cfg(feature = "viewer")]
pub mod viewer;

#[cfg(feature = "popup")]
pub mod options;
#[cfg(feature = "popup")]
pub mod popup;

/// Mounts a Yew app on `#app` (or the body).
pub fn mount_on_app<C: yew::BaseComponent>(props: C::Properties) {
    let d = super::util::document();
    let root = d
        .get_element_by_id("app")
        .or_else(|| d.body().map(Into::into))
        .expect("root element");
    yew::Renderer::<C>::with_root_and_props(root, props).render();
}

/// A yes/no question.
pub fn confirm(msg: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(msg).ok())
        .unwrap_or(false)
}
