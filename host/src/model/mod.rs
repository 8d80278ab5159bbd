//! The pure task model: what a task is, what may happen to it, and what an enqueue body
//! means. No I/O, no SQL, no HTTP: everything here is synchronous and tested in-process.
//!
//! - [`task`]: the task as the host stores it ([`TaskRow`], [`ImageRow`]), what changes one
//!   ([`NewTask`], [`TaskEdit`]) and its lifecycle columns ([`Lifecycle`]).
//! - [`transition`]: **the** transition function, [`transition::decide`]: the one place
//!   that decides every status change (claim, finished, released, recovered at start, retry,
//!   delete, the stop of a running claim), what a move and "run now" do to a pending task's
//!   lifecycle, and the legality of edits.
//! - [`policy`]: **the** scheduling policy: which task a backend runs next, and the
//!   projected order the listing shows (the same function).
//! - [`rank`]: order keys of pending tasks.
//! - [`cursor`]: keyset cursors of the listings.
//! - [`spec`]: an [`scheduler_api::EnqueueRequest`] parsed into typed fields ([`TaskSpec`]),
//!   checkpoint expansion, image and callback validation, `PUT` merges.
//! - [`images`]: the one image-field walker (every image field of every task type:
//!   validation, stripping for listings, SQL paths) and what an inline image is.
//! - [`invalid`]: [`Invalid`], the refusal (422) of every check above and below.
//! - [`import`]: reading one item of an export (ours or the original's).
//! - [`search`]: free text to a full-text query limited to one listing.
//! - [`contract`]: SD.Next's request contract (each backend's `/openapi.json`, or the
//!   committed table) and the check every way in runs before anything is written.
//! - [`callback`]: where a callback may go (the host itself, link-local and metadata
//!   addresses never; loopback and private ones not beyond loopback unless allowed).
//!
//! Must not: do I/O (not even read the clock: the time is an argument, taken by the services
//! from [`crate::clock::Clock`]), know SQL (`store/`) or HTTP (`http/`).

pub mod callback;
pub mod contract;
pub mod cursor;
pub mod eta;
pub mod images;
pub mod import;
pub mod invalid;
pub mod policy;
pub mod rank;
pub mod search;
pub mod spec;
pub mod task;
pub mod transition;

#[cfg(test)]
mod tests;

pub use invalid::Invalid;
pub use spec::{CheckpointSpec, TaskSpec};
pub use task::{Candidate, ImageRow, Lifecycle, NewTask, TaskEdit, TaskRow};
pub use transition::{Event, Policy, Refusal, RunEnd, Transition};
