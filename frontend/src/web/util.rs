//! Small DOM / timing helpers.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds since the page started, sub-millisecond.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn perf_now() -> f64;
    /// `console.log(s)`.
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    pub fn console_log(s: &str);
}

/// The window's document (content script, pages).
pub fn document() -> web_sys::Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("document")
}

/// Sleeps (timer based; not used for synchronisation with the host).
pub async fn sleep_ms(ms: u32) {
    gloo::timers::future::TimeoutFuture::new(ms).await;
}

/// The element matching `selector` at or above an event's target: the control a delegated
/// handler was pressed through.
pub fn closest_target(e: &web_sys::Event, selector: &str) -> Option<web_sys::Element> {
    e.target()?
        .dyn_into::<web_sys::Element>()
        .ok()?
        .closest(selector)
        .ok()?
}

/// Whether an element is rendered with a size (visible tab).
pub fn is_shown(el: &web_sys::Element) -> bool {
    let r = el.get_bounding_client_rect();
    r.width() > 0.0 && r.height() > 0.0
}

/// A task time (epoch ms, or ISO) in the browser's locale, short form.
pub fn fmt_time(t: &scheduler_api::WireTime) -> String {
    let d = match t {
        scheduler_api::WireTime::Epoch(ms) => js_sys::Date::new(&JsValue::from_f64(*ms as f64)),
        scheduler_api::WireTime::Iso(s) => js_sys::Date::new(&JsValue::from_str(s)),
    };
    if d.get_time().is_nan() {
        return String::new();
    }
    let opts = js_sys::Object::new();
    for (k, v) in [("dateStyle", "short"), ("timeStyle", "short")] {
        let _ = js_sys::Reflect::set(&opts, &k.into(), &v.into());
    }
    d.to_locale_string("default", &opts).into()
}

/// Epoch milliseconds of a task time (ISO or epoch); 0 when it does not parse.
pub fn ms_of(t: &scheduler_api::WireTime) -> i64 {
    match t {
        scheduler_api::WireTime::Epoch(ms) => *ms,
        scheduler_api::WireTime::Iso(s) => {
            let v = js_sys::Date::parse(s);
            if v.is_nan() { 0 } else { v as i64 }
        }
    }
}

/// A clock time (`03:40`) of epoch milliseconds, in the browser's time zone.
pub fn fmt_clock(ms: i64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    if d.get_time().is_nan() {
        return "—".into();
    }
    let clock = crate::state::queue::fmt_hm(d.get_hours(), d.get_minutes());
    // Another day: say which.
    let today = js_sys::Date::new_0();
    if d.get_date() != today.get_date() || (ms as f64 - today.get_time()).abs() > 86_400_000.0 {
        format!("{} {clock}", fmt_day(&d))
    } else {
        clock
    }
}

fn fmt_day(d: &js_sys::Date) -> String {
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"weekday".into(), &"short".into());
    d.to_locale_date_string("default", &opts).into()
}

/// `localStorage[key]` (works in extension pages and the web app alike).
pub fn stored(key: &str) -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(key)
        .ok()?
}

/// Sets `localStorage[key]`.
pub fn store(key: &str, value: &str) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(key, value);
    }
}
