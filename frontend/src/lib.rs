//! The agent-scheduler browser extension (Yew/WASM).
//!
//! Module map:
//! - [`capture`]: SD.Next's form → an enqueue request through the id → field tables
//!   (`FIELDS`, Control's `CONTROL_FIELDS` and unit table), the checkpoint dropdown's
//!   choices, the "send to" fill plan (pure, tested natively); its `dom` and `bridge`
//!   submodules (wasm, content script) read and write the page.
//! - [`state`]: UI state logic (the queue model fed by host events, drag-and-drop targets,
//!   filters, notification rules, the task lists' columns, multi-select, virtual-list window
//!   math, extension options and the shortcut, the enabled SD.Next sites, markup escaping) —
//!   pure, tested natively.
//! - [`messages`]: the typed `chrome.runtime` messages between the content script, the
//!   service worker and the panel's modals, and what the panel asks its modal module to show
//!   (pure).
//! - `web` (wasm32 only): chrome.* bindings, the host connection (`scheduler-api`'s typed
//!   client over `fetch`), content script, service worker, and the Yew apps (panel, its
//!   modals, popup, options).

pub mod capture;
pub mod messages;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub use web::exports::*;
