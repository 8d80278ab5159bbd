//! The panel's modals' wasm module (viewer, group sheet, edit form), loaded by the panel's
//! page on first use: the frontend built with only its `viewer` feature.
pub use frontend::*;
