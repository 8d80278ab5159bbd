//! Free-text search: what the user types becomes a full-text query.

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
