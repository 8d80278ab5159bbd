//! The status predicates of every query, written once from [`TaskStatus`]: listings, counts
//! and selections read status through these. Status itself is written only by
//! [`super::transitions`] (and `'pending'` at insert).

use std::sync::LazyLock;

use scheduler_api::TaskStatus;

/// `status = '<s>'`.
pub fn is(s: TaskStatus) -> String {
    format!("status = '{}'", s.as_str())
}

fn any(of: &[TaskStatus]) -> String {
    let words: Vec<String> = of.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("status IN ({})", words.join(", "))
}

/// Running or pending: the queue.
pub static ACTIVE: LazyLock<String> =
    LazyLock::new(|| any(&[TaskStatus::Running, TaskStatus::Pending]));

/// Done, failed or interrupted: the history.
pub static FINISHED: LazyLock<String> = LazyLock::new(|| {
    any(&[
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Interrupted,
    ])
});
