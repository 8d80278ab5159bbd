//! The agent-scheduler browser extension (Yew/WASM).
//!
//! Module map:
//! - [`capture`]: SD.Next form values → enqueue request, through one id → field table (pure).
//! - [`state`]: UI state logic (queue reorder, event application, filters, virtual-list
//!   window math, shortcut parsing, extension options) — pure, tested natively.
//! - [`messages`]: the typed `chrome.runtime` messages between content script, service
//!   worker and panel (pure).
//! - `web` (wasm32 only): chrome.* bindings, the host connection (`scheduler-api`'s typed
//!   client over `fetch`), content script, service worker, and the Yew apps (panel, popup,
//!   options).

pub mod capture;
pub mod messages;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub use web::exports::*;
