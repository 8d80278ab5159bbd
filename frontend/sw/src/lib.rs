//! The service worker's wasm module: the frontend built with only its `sw` feature, so the
//! worker never loads the panel, the popup or the content script.
pub use frontend::*;
