//! Escaping for the few places the panel writes markup as text (static toolbars and the
//! cells of task rows are raw HTML, which is far less wasm than an element tree per
//! control): every text from a task goes through [`esc`].

use std::fmt::Write;

/// `s` with `& < > " '` escaped: safe as element text and inside a double- or
/// single-quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_esc(&mut out, s);
    out
}

/// Appends `s` escaped (see [`esc`]).
pub fn push_esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Appends `<tag class="class" title="title">text</tag>` (title and text escaped; `class`
/// and `tag` are the caller's constants).
pub fn push_el(out: &mut String, tag: &str, class: &str, title: &str, text: &str) {
    let _ = write!(out, "<{tag} class=\"{class}\"");
    if !title.is_empty() {
        out.push_str(" title=\"");
        push_esc(out, title);
        out.push('"');
    }
    out.push('>');
    push_esc(out, text);
    let _ = write!(out, "</{tag}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_text_cannot_make_markup() {
        assert_eq!(
            esc(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
        let mut s = String::new();
        push_el(&mut s, "div", "cell c-sampler", "a\"b", "<b>Euler</b>");
        assert_eq!(
            s,
            r#"<div class="cell c-sampler" title="a&quot;b">&lt;b&gt;Euler&lt;/b&gt;</div>"#
        );
        s.clear();
        push_el(&mut s, "span", "chip done", "", "done");
        assert_eq!(s, r#"<span class="chip done">done</span>"#);
    }
}
