//! Pure UI state logic shared by the panel, popup, options and service worker.

pub mod columns;
pub mod markup;
pub mod options;
pub mod queue;
pub mod selection;
pub mod sites;
pub mod vlist;

pub use columns::{Col, Columns};
pub use options::{ExtOptions, Placement, Shortcut};
pub use queue::{
    HistoryFilter, MoveTarget, QueueModel, Reload, drop_target, filter_label, task_label,
};
pub use selection::{Click, Picked};
pub use vlist::{Window, window};
