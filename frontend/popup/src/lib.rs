//! The toolbar popup's and the options page's wasm module: the frontend built with only its
//! `popup` feature.
pub use frontend::*;
