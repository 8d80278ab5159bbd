//! The task panel's wasm module (the extension's panel page and drawer, and the web app the
//! host serves at `/`): the frontend built with only its `panel` feature.
pub use frontend::*;
