//! The agent-scheduler browser extension (Yew/WASM).
//!
//! Module map:
//! - [`capture`]: SD.Next form values → enqueue request, through one id → field table (pure).
//! - [`state`]: UI state logic (queue reorder, event application, filters, virtual-list
//!   window math, shortcut parsing, extension options) — pure, tested natively.
//! - [`sse`]: Server-Sent Events parser (pure).
//! - `web` (wasm32 only): chrome.* bindings, host client, content script, service worker,
//!   and the Yew apps (panel, popup, options).

pub mod capture;
pub mod sse;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub use web::exports::*;
