//! The extension's own options (chrome.storage), and the Enqueue shortcut.

use serde::{Deserialize, Serialize};

/// Where the Enqueue button goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In the row of Generate, right after it (Modern: its portal slot).
    #[default]
    BesideGenerate,
    /// Above the Generate row, between the prompt and Generate.
    AboveGenerate,
}

/// Options stored under the key `options` in `chrome.storage.local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtOptions {
    /// Host URL (default `http://127.0.0.1:7861`).
    pub host_url: String,
    /// Bearer token; empty = none.
    pub token: String,
    /// Button placement.
    pub placement: Placement,
    /// Hide the custom checkpoint dropdown.
    pub hide_checkpoint: bool,
    /// Notify when a task fails.
    pub notify_failed: bool,
    /// Notify when a task is done.
    pub notify_done: bool,
    /// Notify when the queue is finished.
    pub notify_queue_finished: bool,
    /// Enqueue shortcut, e.g. `Ctrl+KeyE`; prefixed `Disabled ` to turn it off.
    pub shortcut: String,
    /// Rows fetched per page in the panel.
    pub page_size: u32,
}

impl Default for ExtOptions {
    fn default() -> Self {
        Self {
            host_url: scheduler_api::DEFAULT_HOST_URL.to_owned(),
            token: String::new(),
            placement: Placement::BesideGenerate,
            hide_checkpoint: false,
            notify_failed: true,
            notify_done: false,
            notify_queue_finished: true,
            shortcut: "Ctrl+KeyE".to_owned(),
            page_size: 50,
        }
    }
}

impl ExtOptions {
    /// The host URL without a trailing slash (default when empty).
    pub fn base(&self) -> String {
        let b = self.host_url.trim().trim_end_matches('/');
        if b.is_empty() {
            scheduler_api::DEFAULT_HOST_URL.to_owned()
        } else {
            b.to_owned()
        }
    }

    /// Reads stored options, tolerating missing or unknown keys.
    pub fn from_json(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
}

/// A parsed shortcut: `Ctrl` also matches Cmd (meta), as the original did on macOS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortcut {
    /// Ctrl or Cmd.
    pub ctrl: bool,
    /// Alt.
    pub alt: bool,
    /// Shift.
    pub shift: bool,
    /// `KeyboardEvent.code`, e.g. `KeyE`, `Digit1`, `Enter`, `Backquote`.
    pub code: String,
}

impl Shortcut {
    /// Parses `Ctrl+Shift+KeyE` (also `Command`/`Cmd`/`Meta` for Ctrl, single letters for
    /// `KeyX`); `None` when disabled or empty.
    pub fn parse(s: &str) -> Option<Shortcut> {
        let s = s.trim();
        if s.is_empty() || s.starts_with("Disabled") {
            return None;
        }
        let mut sc = Shortcut {
            ctrl: false,
            alt: false,
            shift: false,
            code: String::new(),
        };
        for part in s.split('+').map(str::trim) {
            match part.to_ascii_lowercase().as_str() {
                "ctrl" | "control" | "cmd" | "command" | "meta" => sc.ctrl = true,
                "alt" | "option" => sc.alt = true,
                "shift" => sc.shift = true,
                _ => {
                    sc.code = if part.len() == 1 && part.chars().all(|c| c.is_ascii_alphabetic()) {
                        format!("Key{}", part.to_ascii_uppercase())
                    } else if part.len() == 1 && part.chars().all(|c| c.is_ascii_digit()) {
                        format!("Digit{part}")
                    } else {
                        part.to_owned()
                    }
                }
            }
        }
        (!sc.code.is_empty()).then_some(sc)
    }

    /// Whether a keydown matches: required modifiers present (extra ones are not rejected,
    /// as in the original).
    pub fn matches(&self, code: &str, ctrl: bool, meta: bool, alt: bool, shift: bool) -> bool {
        code == self.code
            && (!self.ctrl || ctrl || meta)
            && (!self.alt || alt)
            && (!self.shift || shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcut_parse_and_match() {
        let s = Shortcut::parse("Ctrl+KeyE").unwrap();
        assert!(s.matches("KeyE", true, false, false, false));
        assert!(
            s.matches("KeyE", false, true, false, false),
            "Cmd works as Ctrl"
        );
        assert!(!s.matches("KeyE", false, false, false, false));
        assert!(!s.matches("KeyR", true, false, false, false));
        let s = Shortcut::parse("Alt + Shift + q").unwrap();
        assert_eq!(s.code, "KeyQ");
        assert!(s.matches("KeyQ", false, false, true, true));
        assert!(!s.matches("KeyQ", false, false, true, false));
        assert_eq!(Shortcut::parse("Disabled Ctrl+KeyE"), None);
        assert_eq!(Shortcut::parse("Ctrl+"), None);
        assert_eq!(Shortcut::parse("Ctrl+1").unwrap().code, "Digit1");
    }

    #[test]
    fn options_defaults_and_partial_json() {
        let o = ExtOptions::from_json(&serde_json::json!({"token": "t", "bogus": 1}));
        assert_eq!(o.token, "t");
        assert_eq!(o.host_url, "http://127.0.0.1:7861");
        assert_eq!(o.shortcut, "Ctrl+KeyE");
        let o = ExtOptions {
            host_url: "http://h:1/ ".into(),
            ..Default::default()
        };
        assert_eq!(o.base(), "http://h:1");
        assert_eq!(
            ExtOptions::from_json(&serde_json::Value::Null),
            ExtOptions::default()
        );
    }
}
