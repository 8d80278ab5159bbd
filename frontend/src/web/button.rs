//! The Enqueue button and the extension's checkpoint dropdown: where they go in each SD.Next
//! theme, and how they look.
//!
//! Measured on the real page (SD.Next `058a7f0`, both themes, 1280×800 … 2560×1440):
//! - **Modern**: Generate is `#<p>_generate` inside `button.sd-button.generate`, the first item
//!   of the right-aligned toolbar `#<p>_generate_group` (then loop, skip, pause, stop and an empty
//!   35 px Enqueue portal slot). Its CSS hides the label of any `.gradio-button` inside an
//!   `.invisible` portal, and only decorates an `#<p>_enqueue` present at start-up, so the slot
//!   is no place for a labelled button. The button goes right after Generate's `sd-button`, as
//!   an `sd-button` with SD.Next's own `icon-enqueue` and a label; the checkpoint dropdown goes
//!   to the toolbar's free left end, where it shrinks first. "Above Generate" puts both in a row
//!   above the toolbar.
//! - **Standard**: Generate sits in `#<p>_generate_box`, a one-line row (Generate, Reprocess) at the
//!   top of an actions column exactly as tall as the prompts beside it; the Networks panel opens
//!   at a fixed offset right under that column's Styles row, so a line added to the column puts
//!   Styles under it. The button joins the Generate row (after Reprocess, or before Generate for
//!   "between prompt and Generate") and the dropdown goes to the quicksettings row beside "Base
//!   model", labelled "Enqueue with", shown for the open tab only. On a page without those rows
//!   the wrapper (dropdown, ↻, button) takes a line of its own inside that box, under the
//!   Generate row ("beside") or over it ("above").
//!
//! The children of the button ignore the pointer, so the element at the button's centre is
//! the button itself.
//!
//! This module depends on nothing of the content script: the content script hands it the
//! layout ([`Layout`]) and what a press does ([`Hooks`]) through [`configure`].

use std::cell::Cell;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element};

use super::util;
use crate::capture::Tab;
use crate::state::Placement;

fn doc() -> Document {
    util::document()
}

/// Where the button goes and whether the checkpoint dropdown shows (from the options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Beside or above Generate.
    pub placement: Placement,
    /// No checkpoint dropdown.
    pub hide_checkpoint: bool,
}

/// What the button and the dropdown do when used: supplied by the content script.
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// A click on the button of a tab.
    pub enqueue: fn(Tab),
    /// A right-click on the button of a tab, at these client coordinates.
    pub menu: fn(Tab, i32, i32),
    /// Fills a checkpoint `<select>` with the known checkpoints.
    pub fill_checkpoints: fn(&Element),
    /// The ↻ button: reload the checkpoint list.
    pub refresh_checkpoints: fn(),
}

thread_local! {
    static CONFIG: Cell<Option<(Layout, Hooks)>> = const { Cell::new(None) };
}

/// Sets the layout and the hooks [`ensure_buttons`] places the buttons with. Until it is
/// called, no button is placed.
pub fn configure(layout: Layout, hooks: Hooks) {
    CONFIG.with(|c| c.set(Some((layout, hooks))));
}

fn config() -> Option<(Layout, Hooks)> {
    CONFIG.with(Cell::get)
}

/// The SD.Next theme a tab's Generate button lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Theme {
    /// The Modern UI: a toolbar `#<p>_generate_group` with `sd-button`s.
    Modern,
    /// The Standard UI (and pages shaped like it): `#<p>_generate_box`.
    Standard,
}

/// The Modern toolbar's Generate `sd-button`, when the page has one for `tab`.
fn modern_generate(tab: Tab) -> Option<Element> {
    doc()
        .query_selector(&format!(
            "#{}_generate_group > button.sd-button.generate",
            tab.prefix()
        ))
        .ok()
        .flatten()
}

fn theme(tab: Tab) -> Theme {
    if modern_generate(tab).is_some() {
        Theme::Modern
    } else {
        Theme::Standard
    }
}

fn by_attr(attr: &str, tab: Tab) -> Option<Element> {
    doc()
        .query_selector(&format!("[{attr}=\"{}\"]", tab.prefix()))
        .ok()
        .flatten()
}

/// The Enqueue button of `tab`, if placed.
pub fn button(tab: Tab) -> Option<Element> {
    by_attr("data-sdq-tab", tab)
}

/// The wrapper of `tab`: the dropdown and the button in the Modern "above" placement and on
/// pages without SD.Next's rows; the labelled dropdown in the Standard quicksettings row;
/// empty and hidden in the Modern "beside" placement.
pub fn wrapper(tab: Tab) -> Option<Element> {
    by_attr("data-sdq-wrap", tab)
}

fn ckpt_box(tab: Tab) -> Option<Element> {
    by_attr("data-sdq-ckpt", tab)
}

/// Removes the button, the dropdown and the wrapper of every tab (before a re-placement with
/// new options).
pub fn remove_all() {
    for tab in Tab::ALL {
        for el in [button(tab), ckpt_box(tab), wrapper(tab)]
            .into_iter()
            .flatten()
        {
            el.remove();
        }
    }
}

/// Puts (or re-puts) the button and the dropdown of each tab in place. Cheap when nothing
/// moved: it is called on page mutations, when a toolbar changes size (a tab shown, the
/// window resized) and every 2 s.
pub fn ensure_buttons() {
    let d = doc();
    let Some((layout, hooks)) = config() else {
        return;
    };
    let placement = layout.placement;
    for tab in Tab::ALL {
        let Some(generate) = d.get_element_by_id(&format!("{}_generate", tab.prefix())) else {
            continue;
        };
        let th = theme(tab);
        let Some(btn) = button(tab).or_else(|| make_button(tab, th, hooks)) else {
            continue;
        };
        let ckpt = if layout.hide_checkpoint {
            None
        } else {
            ckpt_box(tab).or_else(|| make_ckpt(tab, hooks))
        };
        let Some(wrap) = wrapper(tab).or_else(|| make_wrapper(tab)) else {
            continue;
        };
        place(tab, th, placement, &generate, &wrap, &btn, ckpt.as_ref());
        if th == Theme::Modern {
            watch_size(tab);
        }
    }
}

thread_local! {
    static SIZE_WATCH: std::cell::RefCell<Option<web_sys::ResizeObserver>> =
        const { std::cell::RefCell::new(None) };
}

/// Re-fits the buttons whenever a Modern toolbar changes size: its tab shown (0 → its width)
/// or the room around it changed. One observer for all tabs; observing twice is harmless.
fn watch_size(tab: Tab) {
    let Some(group) = doc().get_element_by_id(&format!("{}_generate_group", tab.prefix())) else {
        return;
    };
    if group.get_attribute("data-sdq-watched").is_some() {
        return;
    }
    SIZE_WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            let cb = Closure::<dyn FnMut(js_sys::Array, JsValue)>::new(
                |_: js_sys::Array, _: JsValue| {
                    // Not from inside the observer's callback: placing may change sizes again.
                    wasm_bindgen_futures::spawn_local(async { ensure_buttons() });
                },
            );
            *w = web_sys::ResizeObserver::new(cb.as_ref().unchecked_ref()).ok();
            cb.forget();
        }
        if let Some(obs) = w.as_ref() {
            obs.observe(&group);
            let _ = group.set_attribute("data-sdq-watched", "1");
        }
    });
}

/// Inserts `el` as the next sibling of `anchor` unless it already is.
fn put_after(anchor: &Element, el: &Element) {
    if anchor.next_element_sibling().as_ref() != Some(el) {
        let _ = anchor.after_with_node_1(el);
    }
}

/// Inserts `el` as the previous sibling of `anchor` unless it already is.
fn put_before(anchor: &Element, el: &Element) {
    if el.next_element_sibling().as_ref() != Some(anchor) {
        let _ = anchor.before_with_node_1(el);
    }
}

/// Makes `el` the first child of `parent` unless it already is.
fn put_first(parent: &Element, el: &Element) {
    if parent.first_element_child().as_ref() != Some(el) {
        let _ = parent.prepend_with_node_1(el);
    }
}

/// Makes `el` the last child of `parent` unless it already is.
fn put_last(parent: &Element, el: &Element) {
    if parent.last_element_child().as_ref() != Some(el) {
        let _ = parent.append_with_node_1(el);
    }
}

/// Sets CSS properties on one of SD.Next's own elements, keeping its other inline styles.
fn set_style_props(el: &Element, props: &[(&str, &str)]) {
    if let Some(h) = el.dyn_ref::<web_sys::HtmlElement>() {
        let st = h.style();
        for (k, v) in props {
            if st.get_property_value(k).ok().as_deref() != Some(*v) {
                let _ = st.set_property(k, v);
            }
        }
    }
}

/// Makes `children` the children of `parent`, in order, moving only what is out of place.
fn put_children(parent: &Element, children: &[&Element]) {
    for (i, ch) in children.iter().enumerate() {
        let here = parent.children().item(i as u32);
        if here.as_ref() != Some(*ch) {
            let r = here.map(JsValue::from);
            let _ = parent.insert_before(ch, r.as_ref().map(|v| v.unchecked_ref()));
        }
    }
}

fn set_style(el: &Element, css: &str) {
    if el.get_attribute("style").as_deref() != Some(css) {
        let _ = el.set_attribute("style", css);
    }
}

// No `aria-label` on Modern buttons: its CSS dims `button[aria-label]` to an icon square.
const MODERN_BTN_CSS: &str = "display:flex;align-items:center;gap:6px;padding:0 10px;\
     flex:0 0 auto;width:auto;cursor:pointer;white-space:nowrap;";
const MODERN_ICON_CSS: &str = "display:flex;align-items:center;justify-content:center;\
     padding:0;flex:0 0 auto;width:36px;cursor:pointer;";
/// Standard: shares the Generate row equally with Generate and Reprocess (their `flex: 1 1 0%`).
const STANDARD_BTN_CSS: &str = "flex:1 1 0%;min-height:36px;cursor:pointer;white-space:nowrap;";
const CKPT_CSS: &str = "display:flex;gap:4px;align-items:stretch;min-width:0;";
/// In the Modern toolbar the dropdown takes the free space at its left end and shrinks first.
const CKPT_MODERN_CSS: &str = "display:flex;gap:4px;align-items:center;min-width:0;\
     flex:0 1 220px;margin-right:auto;";
/// Under the Modern toolbar (when the toolbar is full).
const CKPT_BELOW_CSS: &str = "display:flex;gap:4px;align-items:center;min-width:0;\
     flex:0 1 260px;";
const WRAP_BELOW_MODERN_CSS: &str =
    "display:flex;justify-content:flex-end;align-items:center;gap:4px;padding:2px 4px 0;";
const WRAP_CSS: &str = "display:flex;gap:4px;align-items:stretch;min-width:120px;flex:1 1 auto;";
/// Standard: a line of its own inside the Generate box.
const WRAP_LINE_CSS: &str = "display:flex;gap:4px;align-items:stretch;min-width:0;flex:1 1 100%;";
/// Standard: the dropdown takes what the button leaves of the line.
const CKPT_LINE_CSS: &str = "display:flex;gap:4px;align-items:stretch;min-width:0;flex:1 1 auto;";
/// Standard: a tab's dropdown in the quicksettings row, labelled above like "Base model".
const WRAP_QUICK_CSS: &str = "display:flex;flex-direction:column;justify-content:center;\
     gap:2px;flex:0 0 260px;margin:0 8px;";
const QUICK_LABEL_CSS: &str = "font-size:var(--block-title-text-size,14px);\
     color:var(--block-title-text-color,inherit);pointer-events:none;white-space:nowrap;";
const WRAP_ABOVE_MODERN_CSS: &str = "display:flex;gap:6px;align-items:center;\
     justify-content:flex-end;padding:4px 4px 0;";

fn place(
    tab: Tab,
    th: Theme,
    placement: Placement,
    generate: &Element,
    wrap: &Element,
    btn: &Element,
    ckpt: Option<&Element>,
) {
    let d = doc();
    let p = tab.prefix();
    if let Some(k) = ckpt
        && th == Theme::Modern
        && placement == Placement::AboveGenerate
    {
        set_style(k, CKPT_CSS);
    }
    set_style(
        btn,
        if th == Theme::Modern {
            MODERN_BTN_CSS
        } else {
            STANDARD_BTN_CSS
        },
    );
    if let Some(l) = btn.query_selector(".sdq-label").ok().flatten() {
        // Shown unless the Modern toolbar fit below hides it.
        set_style(&l, "pointer-events:none;");
    }
    match (th, placement) {
        (Theme::Modern, Placement::BesideGenerate) => {
            let (Some(sd_gen), Some(group)) = (
                modern_generate(tab),
                d.get_element_by_id(&format!("{p}_generate_group")),
            ) else {
                return;
            };
            // The wrapper is a row right under the toolbar's own row: it takes the dropdown
            // when the toolbar has no room for it, and the button too when not even SD.Next's
            // own toolbar fits (1280 px windows with the Networks panel open).
            match group.parent_element() {
                Some(row) => put_after(&row, wrap),
                None => put_after(&group, wrap),
            }
            let fit = modern_fit(&group, btn, ckpt, wrap);
            let _ = btn.set_attribute("data-sdq-fit", fit.as_str());
            if let Some(l) = btn.query_selector(".sdq-label").ok().flatten() {
                set_style(
                    &l,
                    if fit == Fit::Icon {
                        "pointer-events:none;display:none;"
                    } else {
                        "pointer-events:none;"
                    },
                );
            }
            if fit == Fit::Icon {
                set_style(btn, MODERN_ICON_CSS);
            }
            // The row is as wide as the toolbar's row, which its column may clip: keep what
            // it holds inside the part that shows.
            let below_css = format!(
                "{WRAP_BELOW_MODERN_CSS}max-width:{:.0}px;",
                (clip_right(wrap) - wrap.get_bounding_client_rect().left()).max(120.0)
            );
            if fit == Fit::Below {
                set_style(wrap, &below_css);
                if let Some(k) = ckpt {
                    set_style(k, CKPT_BELOW_CSS);
                }
                let kids: Vec<&Element> = ckpt.into_iter().chain([btn]).collect();
                put_children(wrap, &kids);
                return;
            }
            put_after(&sd_gen, btn);
            match (ckpt, fit) {
                (Some(k), Fit::All) => {
                    set_style(k, CKPT_MODERN_CSS);
                    put_first(&group, k);
                    set_style(wrap, "display:none");
                }
                (Some(k), _) => {
                    set_style(k, CKPT_BELOW_CSS);
                    set_style(wrap, &below_css);
                    put_children(wrap, &[k]);
                }
                (None, _) => set_style(wrap, "display:none"),
            }
        }
        (Theme::Modern, Placement::AboveGenerate) => {
            // Above the toolbar's own row (img2img keeps it in the Input header, not in
            // `#img2img_results_header_panel`), inside the part of it that shows.
            let Some(group) = d.get_element_by_id(&format!("{p}_generate_group")) else {
                return;
            };
            let row = group.parent_element().unwrap_or_else(|| group.clone());
            put_before(&row, wrap);
            set_style(
                wrap,
                &format!(
                    "{WRAP_ABOVE_MODERN_CSS}max-width:{:.0}px;",
                    (clip_right(wrap) - wrap.get_bounding_client_rect().left()).max(120.0)
                ),
            );
            let kids: Vec<&Element> = ckpt.into_iter().chain([btn]).collect();
            put_children(wrap, &kids);
        }
        (Theme::Standard, placement) => {
            // SD.Next's actions column is exactly as tall as the two prompts beside it, and
            // the Networks panel opens at a fixed offset right under its Styles row: any line
            // added to the column pushes Styles under that panel. So nothing adds a line: the
            // button joins the Generate row (after Reprocess, "beside"; before Generate,
            // "between the prompt and Generate", as the prompt is on its left), and the
            // dropdown goes to the quicksettings row beside SD.Next's own "Base model".
            let box_ = d
                .get_element_by_id(&format!("{p}_generate_box"))
                .filter(|b| b.contains(Some(generate)));
            let quick = d.get_element_by_id("quicksettings");
            match (box_, quick) {
                (Some(b), Some(q)) => {
                    match placement {
                        Placement::BesideGenerate => put_last(&b, btn),
                        Placement::AboveGenerate => put_first(&b, btn),
                    }
                    put_last(&q, wrap);
                    // One tab's dropdown shows: the tab that is open.
                    let shown = ckpt.is_some() && util::is_shown(generate);
                    set_style(
                        wrap,
                        if shown {
                            WRAP_QUICK_CSS
                        } else {
                            "display:none"
                        },
                    );
                    if let Some(k) = ckpt {
                        set_style(k, CKPT_LINE_CSS);
                        // A bare select is white there, under the page's light text: the
                        // page's own field colours, as "Base model" has.
                        if let Some(sel) = k.query_selector("select").ok().flatten() {
                            set_style_props(
                                &sel,
                                &[
                                    ("color", "var(--body-text-color)"),
                                    ("background-color", "var(--input-background-fill)"),
                                    ("border", "1px solid var(--input-border-color)"),
                                    ("border-radius", "var(--input-radius)"),
                                ],
                            );
                        }
                        let label = wrap
                            .query_selector(".sdq-quick-label")
                            .ok()
                            .flatten()
                            .or_else(make_quick_label);
                        let kids: Vec<&Element> = label.iter().chain([k]).collect();
                        put_children(wrap, &kids);
                    }
                    watch_tabs();
                }
                (box_, _) => {
                    // A page shaped otherwise: the wrapper (dropdown, button) takes a line of
                    // its own in the Generate box, or sits next to Generate.
                    match box_ {
                        Some(b) => {
                            set_style_props(&b, &[("flex-wrap", "wrap"), ("flex", "1 1 100%")]);
                            set_style(wrap, WRAP_LINE_CSS);
                            match placement {
                                Placement::BesideGenerate => put_last(&b, wrap),
                                Placement::AboveGenerate => put_first(&b, wrap),
                            }
                        }
                        None => {
                            set_style(wrap, WRAP_CSS);
                            match placement {
                                Placement::BesideGenerate => put_after(generate, wrap),
                                Placement::AboveGenerate => put_before(generate, wrap),
                            }
                        }
                    }
                    if let Some(k) = ckpt {
                        set_style(k, CKPT_LINE_CSS);
                    }
                    let kids: Vec<&Element> = ckpt.into_iter().chain([btn]).collect();
                    put_children(wrap, &kids);
                }
            }
        }
    }
}

/// The label of a tab's dropdown in the quicksettings row, in SD.Next's own label style.
fn make_quick_label() -> Option<Element> {
    let l = doc().create_element("span").ok()?;
    let _ = l.set_attribute("class", "sdq-quick-label");
    let _ = l.set_attribute("style", QUICK_LABEL_CSS);
    l.set_text_content(Some("Enqueue with"));
    Some(l)
}

thread_local! {
    static TABS_WATCHED: Cell<bool> = const { Cell::new(false) };
}

/// Re-places after a press on a tab button (the Standard theme shows the open tab's dropdown
/// only), once Gradio has switched the tab: on the next frame.
fn watch_tabs() {
    if TABS_WATCHED.with(|w| w.replace(true)) {
        return;
    }
    let on_click = Closure::<dyn FnMut(web_sys::Event)>::new(|e: web_sys::Event| {
        let in_nav = e
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|t| t.closest(".tab-nav").ok().flatten())
            .is_some();
        if in_nav && let Some(w) = web_sys::window() {
            let next = Closure::once_into_js(ensure_buttons);
            let _ = w.request_animation_frame(next.unchecked_ref());
        }
    });
    let _ = doc().add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
    on_click.forget();
}

/// How much of the extension fits in the Modern toolbar beside SD.Next's own buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// The dropdown and the labelled button.
    All,
    /// The labelled button; the dropdown goes under the toolbar.
    Button,
    /// The button as an icon (SD.Next's own buttons are icons too); the dropdown under.
    Icon,
    /// Not even SD.Next's own buttons fit: the labelled button and the dropdown go in a row
    /// right under the toolbar.
    Below,
}

impl Fit {
    fn as_str(self) -> &'static str {
        match self {
            Fit::All => "all",
            Fit::Button => "button",
            Fit::Icon => "icon",
            Fit::Below => "below",
        }
    }

    fn parse(s: Option<&str>) -> Fit {
        match s {
            Some("icon") => Fit::Icon,
            Some("button") => Fit::Button,
            Some("below") => Fit::Below,
            _ => Fit::All,
        }
    }
}

/// The narrowest the dropdown may get in the toolbar before it moves under it.
const CKPT_MIN_W: f64 = 140.0;
/// The button as an icon (Modern's toolbar buttons are 2.5em = 35 px wide).
const ICON_W: f64 = 36.0;

/// Decides from measured widths (no trial moves, so nothing flickers) what fits in the
/// toolbar. A hidden tab (zero width) keeps its last decision.
fn modern_fit(group: &Element, btn: &Element, ckpt: Option<&Element>, wrap: &Element) -> Fit {
    let last = Fit::parse(btn.get_attribute("data-sdq-fit").as_deref());
    let r = group.get_bounding_client_rect();
    if r.width() <= 0.0 {
        return last;
    }
    // The toolbar can be wider than what shows of it (its column clips it): the room ends
    // at the nearest clipping ancestor or the window's edge.
    let avail = (group.client_width() as f64).min(clip_right(group) - r.left());
    let gap = web_sys::window()
        .and_then(|w| w.get_computed_style(group).ok().flatten())
        .and_then(|cs| cs.get_property_value("column-gap").ok())
        .and_then(|g| g.trim_end_matches("px").parse::<f64>().ok())
        .unwrap_or(0.0);
    let mut others = 0.0;
    let kids = group.children();
    for i in 0..kids.length() {
        let Some(k) = kids.item(i) else { continue };
        if &k == btn || Some(&k) == ckpt || &k == wrap {
            continue;
        }
        let w = k.get_bounding_client_rect().width();
        if w > 0.0 {
            others += w + gap;
        }
    }
    // The labelled width, remembered from when the label was last shown in the toolbar.
    let shown = btn.get_bounding_client_rect().width();
    let full = if matches!(last, Fit::Icon) || shown <= 0.0 {
        btn.get_attribute("data-sdq-full-w")
            .and_then(|w| w.parse().ok())
            .unwrap_or(112.0)
    } else {
        let _ = btn.set_attribute("data-sdq-full-w", &format!("{shown:.0}"));
        shown
    };
    let slack = 2.0;
    if ckpt.is_some() && others + full + gap + CKPT_MIN_W + gap + slack <= avail {
        Fit::All
    } else if others + full + gap + slack <= avail {
        Fit::Button
    } else if others + ICON_W + gap + slack <= avail {
        Fit::Icon
    } else {
        Fit::Below
    }
}

/// The right edge of what shows of `el`: the nearest ancestor that clips its overflow, or the
/// window.
fn clip_right(el: &Element) -> f64 {
    let win = web_sys::window();
    let mut right = win
        .as_ref()
        .and_then(|w| w.inner_width().ok())
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::MAX);
    let mut cur = el.parent_element();
    while let Some(a) = cur {
        let clips = win
            .as_ref()
            .and_then(|w| w.get_computed_style(&a).ok().flatten())
            .and_then(|cs| cs.get_property_value("overflow-x").ok())
            .is_some_and(|o| o != "visible");
        if clips {
            right = right.min(a.get_bounding_client_rect().right());
        }
        cur = a.parent_element();
    }
    right
}

fn make_wrapper(tab: Tab) -> Option<Element> {
    let d = doc();
    let p = tab.prefix();
    let wrap = d.create_element("div").ok()?;
    // SD.Next's Standard CSS sizes `#<p>_enqueue_wrapper`; use that id unless taken.
    let std_wrap = format!("{p}_enqueue_wrapper");
    if d.get_element_by_id(&std_wrap).is_none() {
        wrap.set_id(&std_wrap);
    } else {
        wrap.set_id(&format!("sdq-{p}-wrap"));
    }
    let _ = wrap.set_attribute("data-sdq-wrap", p);
    let _ = wrap.set_attribute("class", "sdq-enqueue-wrapper");
    Some(wrap)
}

fn make_ckpt(tab: Tab, hooks: Hooks) -> Option<Element> {
    let d = doc();
    let p = tab.prefix();
    let k = d.create_element("div").ok()?;
    let _ = k.set_attribute("data-sdq-ckpt", p);
    let _ = k.set_attribute("class", "sdq-ckpt");
    let sel = d.create_element("select").ok()?;
    sel.set_id(&format!("sdq-{p}-ckpt"));
    let _ = sel.set_attribute("title", "Checkpoint for Enqueue");
    let _ = sel.set_attribute("aria-label", "Checkpoint for Enqueue");
    let _ = sel.set_attribute(
        "style",
        "min-width:0;max-width:100%;flex:1 1 auto;font-size:12px;height:32px;",
    );
    (hooks.fill_checkpoints)(&sel);
    let _ = k.append_child(&sel);
    let refresh = d.create_element("button").ok()?;
    refresh.set_text_content(Some("↻"));
    let _ = refresh.set_attribute("title", "Refresh checkpoints");
    let _ = refresh.set_attribute("type", "button");
    let _ = refresh.set_attribute("style", "flex:0 0 auto;cursor:pointer;min-width:28px;");
    let on_refresh = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        e.prevent_default();
        (hooks.refresh_checkpoints)();
    });
    let _ = refresh.add_event_listener_with_callback("click", on_refresh.as_ref().unchecked_ref());
    on_refresh.forget();
    let _ = k.append_child(&refresh);
    Some(k)
}

fn button_id(tab: Tab, th: Theme) -> String {
    // Standard: reuse SD.Next's placeholder id (its CSS sizes it like Generate) unless
    // something else (e.g. a manually installed agent-scheduler) owns it. Modern: never, so
    // the Modern UI's late portal pass cannot pull the button into its label-hiding slot.
    let std_id = format!("{}_enqueue", tab.prefix());
    let taken = doc()
        .get_element_by_id(&std_id)
        .is_some_and(|el| el.get_attribute("data-sdq-tab").is_none());
    if th == Theme::Modern || taken {
        format!("sdq-{}-enqueue", tab.prefix())
    } else {
        std_id
    }
}

fn make_button(tab: Tab, th: Theme, hooks: Hooks) -> Option<Element> {
    let d = doc();
    let p = tab.prefix();
    let btn = d.create_element("button").ok()?;
    btn.set_id(&button_id(tab, th));
    let class = match th {
        // Modern's own toolbar button look (background, radius, height, hover).
        Theme::Modern => "sd-button sdq-enqueue".to_owned(),
        // Standard: Generate's classes minus `generate` (Gradio's button look).
        Theme::Standard => {
            let classes = d
                .get_element_by_id(&format!("{p}_generate"))
                .and_then(|g| g.get_attribute("class"))
                .unwrap_or_default();
            format!("{classes} sdq-enqueue").replace("generate", "")
        }
    };
    let _ = btn.set_attribute("class", &class);
    let _ = btn.set_attribute("type", "button");
    let _ = btn.set_attribute("data-sdq-tab", p);
    let _ = btn.set_attribute("data-sdq-state", "idle");
    let _ = btn.set_attribute(
        "title",
        "Add this generation to the queue (right-click for more; Ctrl+E)",
    );
    if th == Theme::Modern {
        // SD.Next's own Enqueue icon (a CSS mask) beside the label.
        let icon = d.create_element("div").ok()?;
        let _ = icon.set_attribute("class", "mask-icon icon-enqueue");
        let _ = icon.set_attribute("style", "pointer-events:none;flex:0 0 auto;");
        let _ = btn.append_child(&icon);
    }
    let label = d.create_element("span").ok()?;
    let _ = label.set_attribute("class", "sdq-label");
    let _ = label.set_attribute("style", "pointer-events:none;");
    label.set_text_content(Some("Enqueue"));
    let _ = btn.append_child(&label);
    let on_click = Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |e: web_sys::MouseEvent| {
        e.prevent_default();
        e.stop_propagation();
        (hooks.enqueue)(tab);
    });
    let _ = btn.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
    on_click.forget();
    let on_menu = Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |e: web_sys::MouseEvent| {
        e.prevent_default();
        e.stop_propagation();
        (hooks.menu)(tab, e.client_x(), e.client_y());
    });
    let _ = btn.add_event_listener_with_callback("contextmenu", on_menu.as_ref().unchecked_ref());
    on_menu.forget();
    Some(btn)
}

/// Sets the button's label ("Enqueue", "Queued", "Not queued").
pub fn set_label(btn: &Element, text: &str) {
    match btn.query_selector(".sdq-label").ok().flatten() {
        Some(l) => l.set_text_content(Some(text)),
        None => btn.set_text_content(Some(text)),
    }
}
