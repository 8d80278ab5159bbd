//! The SD.Next addresses the extension works on. Loopback (`http://127.0.0.1`, `localhost`,
//! `[::1]`, any port) is on from install, by the manifest. Any other address — a GPU box on
//! the LAN, a reverse proxy, a cloud GPU's proxy URL — the user enables once (popup or
//! options): the extension then asks for that origin's host permission, and registers its
//! content scripts for it. This module is the pure part: an address → the match pattern it
//! grants, the stored list, and the title rule that tells an SD.Next page.

use serde::{Deserialize, Serialize};

/// The manifest's content-script matches: on from install, never stored.
pub const LOOPBACK_PATTERNS: [&str; 3] =
    ["http://127.0.0.1/*", "http://localhost/*", "http://[::1]/*"];

/// The `storage.local` key of the enabled sites.
pub const STORAGE_KEY: &str = "sites";

/// One enabled SD.Next address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The match pattern granted and matched: `scheme://host/*` (every port of the host:
    /// match patterns have no port).
    pub pattern: String,
    /// The address as the user gave it, normalised (`http://192.168.1.20:7860`).
    pub url: String,
}

/// Why an address cannot be enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteError {
    /// Empty input.
    Empty,
    /// Not `http` or `https`.
    Scheme(String),
    /// No host, or one with characters a host cannot have.
    Host(String),
    /// A port that is not a number from 1 to 65535.
    Port(String),
    /// Loopback is always on.
    Loopback,
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SiteError::Empty => write!(f, "enter the address SD.Next is served at"),
            SiteError::Scheme(s) => write!(f, "only http and https addresses ({s}: given)"),
            SiteError::Host(h) => write!(f, "not a host name or IP address: {h:?}"),
            SiteError::Port(p) => write!(f, "not a port: {p:?}"),
            SiteError::Loopback => write!(f, "loopback addresses are always on"),
        }
    }
}

/// An address (`http://192.168.1.20:7860/`, `sd.example.lan`, `https://[fd00::1]:7860`) →
/// the site to enable. No scheme means `http`; a path, query or fragment is dropped.
pub fn site_for(input: &str) -> Result<Site, SiteError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SiteError::Empty);
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, rest)) => (sc.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), s),
    };
    if scheme != "http" && scheme != "https" {
        return Err(SiteError::Scheme(scheme));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(SiteError::Host(authority.to_owned()));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| SiteError::Host(authority.to_owned()))?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(SiteError::Host(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| SiteError::Host(authority.to_owned()))?,
            ),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = !h.is_empty()
            && !h.starts_with(['.', '-'])
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !ok {
            return Err(SiteError::Host(h.to_owned()));
        }
        (h.to_ascii_lowercase(), p)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(SiteError::Port(p.to_owned())),
        },
    };
    let pattern = format!("{scheme}://{host}/*");
    if LOOPBACK_PATTERNS.contains(&pattern.as_str()) {
        return Err(SiteError::Loopback);
    }
    let url = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(Site { pattern, url })
}

/// Whether a page at `url` is covered from install (loopback over http, any port).
pub fn is_loopback(url: &str) -> bool {
    matches!(site_for(url), Err(SiteError::Loopback))
}

/// Whether a tab's title is SD.Next's (its page sets `SD.Next` in the served HTML, behind
/// a proxy too): the rule the popup offers "Enable on this site" by, and the content
/// script's first marker.
pub fn is_sdnext_title(title: &str) -> bool {
    title.starts_with("SD.Next")
}

/// The stored list (tolerating anything else stored there).
pub fn from_json(v: &serde_json::Value) -> Vec<Site> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// The list with `site` added (replacing one with the same pattern).
pub fn with(list: &[Site], site: Site) -> Vec<Site> {
    let mut out: Vec<Site> = list
        .iter()
        .filter(|s| s.pattern != site.pattern)
        .cloned()
        .collect();
    out.push(site);
    out
}

/// The list without `pattern`.
pub fn without(list: &[Site], pattern: &str) -> Vec<Site> {
    list.iter()
        .filter(|s| s.pattern != pattern)
        .cloned()
        .collect()
}

/// The site of `pattern` in `list`, if enabled.
pub fn find<'a>(list: &'a [Site], pattern: &str) -> Option<&'a Site> {
    list.iter().find(|s| s.pattern == pattern)
}

/// Every pattern the content scripts, the menus and the panel run on: loopback plus the
/// enabled sites.
pub fn all_patterns(list: &[Site]) -> Vec<String> {
    LOOPBACK_PATTERNS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(list.iter().map(|s| s.pattern.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> String {
        site_for(s)
            .map(|x| x.pattern)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn addresses_become_patterns_for_every_port_of_the_host() {
        assert_eq!(pat("http://192.168.1.20:7860"), "http://192.168.1.20/*");
        assert_eq!(pat("https://sd.example.lan/"), "https://sd.example.lan/*");
        assert_eq!(
            pat("https://abc123-7860.proxy.runpod.net/?__theme=dark#x"),
            "https://abc123-7860.proxy.runpod.net/*"
        );
        assert_eq!(pat("http://[FD00::1]:7860/"), "http://[fd00::1]/*");
        assert_eq!(pat("SDNext.Test:8080"), "http://sdnext.test/*");
        assert_eq!(pat("box"), "http://box/*");
        assert_eq!(
            site_for("http://192.168.1.20:7860/ui").unwrap().url,
            "http://192.168.1.20:7860"
        );
        assert_eq!(
            site_for("https://[::1]").unwrap().pattern,
            "https://[::1]/*",
            "https on loopback is not covered by the manifest"
        );
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        assert_eq!(site_for("  "), Err(SiteError::Empty));
        assert_eq!(site_for("ftp://x"), Err(SiteError::Scheme("ftp".into())));
        assert!(matches!(site_for("http://a b/"), Err(SiteError::Host(_))));
        assert!(matches!(
            site_for("http://*.example/"),
            Err(SiteError::Host(_))
        ));
        assert!(matches!(
            site_for("http://u:p@host/"),
            Err(SiteError::Host(_))
        ));
        assert!(matches!(
            site_for("http://[zz::1]/"),
            Err(SiteError::Host(_))
        ));
        assert_eq!(site_for("http://h:0"), Err(SiteError::Port("0".into())));
        assert_eq!(
            site_for("http://h:99999"),
            Err(SiteError::Port("99999".into()))
        );
        assert_eq!(site_for("http://127.0.0.1:7860"), Err(SiteError::Loopback));
        assert_eq!(site_for("localhost:7860"), Err(SiteError::Loopback));
        assert_eq!(site_for("http://[::1]:7860"), Err(SiteError::Loopback));
        assert!(is_loopback("http://localhost:17860/"));
        assert!(!is_loopback("http://sdnext.test:17860/"));
    }

    #[test]
    fn the_list_adds_replaces_and_removes_by_pattern() {
        let a = site_for("http://a:1").unwrap();
        let a2 = site_for("http://a:2").unwrap();
        let b = site_for("https://b").unwrap();
        let l = with(&with(&[], a.clone()), b.clone());
        let l = with(&l, a2.clone());
        assert_eq!(l, vec![b.clone(), a2.clone()]);
        assert_eq!(find(&l, "http://a/*"), Some(&a2));
        assert_eq!(without(&l, "http://a/*"), vec![b.clone()]);
        assert_eq!(
            all_patterns(&[b]),
            vec![
                "http://127.0.0.1/*",
                "http://localhost/*",
                "http://[::1]/*",
                "https://b/*"
            ]
        );
        assert_eq!(from_json(&serde_json::json!({"x": 1})), vec![]);
        assert!(is_sdnext_title("SD.Next"));
        assert!(!is_sdnext_title("Grafana"));
    }
}
