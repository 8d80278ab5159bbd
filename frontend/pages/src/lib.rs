//! The extension pages' wasm module (panel, popup, options): the frontend built with only its
//! `pages` feature.
pub use frontend::*;
