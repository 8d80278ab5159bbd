//! Yew apps: the task panel, the popup and the options page.

pub mod history;
pub mod live;
pub mod options;
pub mod panel;
pub mod popup;

/// Mounts a Yew app on `#app` (or the body).
pub fn mount_on_app<C: yew::BaseComponent<Properties = ()>>() {
    let d = super::util::document();
    let root = d
        .get_element_by_id("app")
        .or_else(|| d.body().map(Into::into))
        .expect("root element");
    yew::Renderer::<C>::with_root(root).render();
}
