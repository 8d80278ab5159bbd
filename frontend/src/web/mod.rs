//! Browser-side code (wasm32 only): chrome.* bindings, the host connection, the content
//! script, the service worker and the Yew apps.

#[cfg(feature = "content")]
pub mod button;
pub mod chrome;
#[cfg(feature = "content")]
pub mod content;
pub mod exports;
pub mod host;
#[cfg(any(feature = "sw", feature = "popup"))]
pub mod sites;
#[cfg(feature = "sw")]
pub mod sw;
#[cfg(any(feature = "panel", feature = "popup", feature = "viewer"))]
pub mod ui;
pub mod util;
