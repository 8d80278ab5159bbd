//! The wire contract of the agent-scheduler host.
//!
//! Every request, response, event and error body that crosses HTTP between the host, the
//! browser extension and the tests is declared here, once. The crate depends only on serde
//! (plus `utoipa` behind the `openapi` feature, which the frontend does not enable) and
//! compiles for native targets and `wasm32-unknown-unknown` alike.
//!
//! Feature `client` adds [`client::Client`], a typed client of every route (reqwest on
//! native targets, `fetch` on wasm32).
//!
//! Compatibility rule: the AgentScheduler shapes are kept field for field (including their
//! quirks: `/task/{id}` dates are ISO strings, `/queue` and `/history` dates are epoch
//! milliseconds, `result` is a JSON *string*). Cleaner forms are added as new fields or new
//! endpoints, never by changing the type of an old field.

pub mod backend;
pub mod bulk;
#[cfg(feature = "client")]
pub mod client;
pub mod edit;
pub mod enqueue;
pub mod eta;
pub mod event;
pub mod listing;
pub mod message;
pub mod routes;
pub mod settings;
pub mod task;
pub mod transfer;

pub use backend::*;
pub use bulk::*;
pub use edit::*;
pub use enqueue::*;
pub use eta::*;
pub use event::*;
pub use listing::*;
pub use message::*;
pub use settings::*;
pub use task::*;
pub use transfer::*;

/// The id of the browser extension, fixed by the public `key` in
/// `extension-manifest/manifest.json` (first 32 hex digits of sha256(DER key), 0-f → a-p).
pub const EXTENSION_ID: &str = "ndpebdnbbmnlbadnjhpngekbkgfahgag";

/// The `Origin` the extension's pages and service worker send.
pub const EXTENSION_ORIGIN: &str = "chrome-extension://ndpebdnbbmnlbadnjhpngekbkgfahgag";

/// The address the host listens on by default, and the extension's default host URL.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7861";

/// The extension's default host URL.
pub const DEFAULT_HOST_URL: &str = "http://127.0.0.1:7861";

/// The SD.Next backend used when none is configured.
pub const DEFAULT_BACKEND: &str = "http://127.0.0.1:7860";

/// Header that makes an enqueue idempotent: the same key returns the first answer again.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Header carried by every callback delivery so receivers can drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "X-Agent-Scheduler-Delivery";

/// Header giving the id of the task a callback is about.
pub const CALLBACK_TASK_HEADER: &str = "X-Agent-Scheduler-Task";

#[cfg(test)]
mod tests;
