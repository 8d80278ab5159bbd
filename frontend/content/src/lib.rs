//! The content script's wasm module: the frontend built with only its `content` feature.
pub use frontend::*;
