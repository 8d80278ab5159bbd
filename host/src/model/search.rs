//! Free-text search: what the user types becomes a full-text query, limited to the listing
//! it searches (the index's `tags` column: `queue`, or `history <status> [bookmarked]`).

use scheduler_api::HistoryFilter;

/// Which listing a search runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Pending and running tasks.
    Queue,
    /// Finished tasks matching the filter.
    History(HistoryFilter),
}

/// Turns free text into an FTS5 query: every word quoted (so no syntax errors), all words
/// required, the last one as a prefix. NUL and other control characters are dropped first (tabs and
/// newlines still separate words)
/// (SQLite ends a string at NUL, which would make the quoted word unterminated), so no input
/// can produce a malformed query. `None` when there is no word.
pub fn fts_query(q: &str) -> Option<String> {
    let cleaned: String = q
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    let words: Vec<String> = cleaned
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}*", words.join(" ")))
}

/// The full FTS5 expression for `q` in `scope`: the user's words on the text columns only,
/// and the scope's tags. `None` when there is no word.
pub fn fts_match(q: &str, scope: Scope) -> Option<String> {
    let words = fts_query(q)?;
    let tags = match scope {
        Scope::Queue => "\"queue\"".to_owned(),
        Scope::History(HistoryFilter::All) => "\"history\"".to_owned(),
        Scope::History(HistoryFilter::Bookmarked) => "\"history\" \"bookmarked\"".to_owned(),
        Scope::History(HistoryFilter::Status(s)) => format!("\"history\" \"{}\"", s.as_str()),
    };
    Some(format!(
        "{{prompt negative_prompt name checkpoint}} : ({words}) AND tags : ({tags})"
    ))
}
