//! Pure UI state logic shared by the panel, popup, options and service worker.

pub mod options;
pub mod queue;
pub mod vlist;

pub use options::{ExtOptions, Placement, Shortcut};
pub use queue::{
    HistoryFilter, MoveTarget, QueueModel, Reload, drop_target, filter_label, task_label,
};
pub use vlist::{Window, window};
