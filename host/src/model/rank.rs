//! Order keys of pending tasks: gap integers, so that a move between two tasks nearly always
//! finds a free integer and touches one row. When a gap is used up (about 20 moves into the
//! same place), only the few tasks next to it are spread out again ([`spread`]), never the
//! whole queue.

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

/// The smallest distance [`spread`] leaves between neighbours (room for ~10 more halvings).
pub const MIN_SPREAD: i64 = 1 << 10;

/// New ranks for `n` neighbouring tasks (in order) and, after them, one more slot for a task
/// moved in: `n + 1` increasing ranks strictly between `lower` (the rank of the task before
/// them, `None` when they start the queue) and `upper` (the task they all go before), evenly
/// spaced. `None` when the span is too small for [`MIN_SPREAD`]; the caller then spreads a
/// wider neighbourhood.
pub fn spread(lower: Option<i64>, upper: i64, n: usize) -> Option<Vec<i64>> {
    let slots = n as i64 + 2;
    let lower = match lower {
        Some(l) => l,
        None => upper.checked_sub(slots.checked_mul(RANK_GAP)?)?,
    };
    let step = upper.checked_sub(lower)? / slots;
    if step < MIN_SPREAD {
        return None;
    }
    Some((1..slots).map(|i| lower + step * i).collect())
}
