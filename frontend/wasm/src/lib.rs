//! The wasm artifact: re-exports the frontend.
pub use frontend::*;
