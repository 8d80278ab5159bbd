//! Free-text search: what the user types becomes a full-text query.

/// Turns free text into an FTS5 query: every word quoted (so no syntax errors), all words
/// required, the last one as a prefix. `None` when there is no word.
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}*", words.join(" ")))
}
