//! Order keys of pending tasks: gap integers, so that a move between two tasks nearly always
//! finds a free integer and touches one row.

/// Distance between neighbouring ranks when a task is appended or put at the head.
pub const RANK_GAP: i64 = 1 << 20;

/// The rank for a task that goes before `first` (the current head), or the first rank ever.
pub fn rank_at_head(first: Option<i64>) -> i64 {
    first.map_or(0, |f| f.saturating_sub(RANK_GAP))
}

/// The rank for a task that goes after `last` (the current tail).
pub fn rank_at_end(last: Option<i64>) -> i64 {
    last.map_or(0, |l| l.saturating_add(RANK_GAP))
}

/// A rank strictly between `before` and `after`, or `None` when they are adjacent and the
/// queue must be renumbered first. `before == None` means "no task before".
pub fn rank_between(before: Option<i64>, after: i64) -> Option<i64> {
    match before {
        None => Some(rank_at_head(Some(after))),
        Some(b) if after - b >= 2 => Some(b + (after - b) / 2),
        Some(_) => None,
    }
}
