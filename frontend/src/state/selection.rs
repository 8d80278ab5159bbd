//! Multi-select over a task list: click, ctrl/cmd-click (toggle), shift-click (range from the
//! last clicked row), and "select all in the filter" — which stays a filter (minus the rows
//! clicked off) all the way to the host, so selecting 100,000 tasks sends a few bytes.

use std::collections::BTreeSet;

use scheduler_api::{Selection, SelectionFilter};

/// How a row was clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Click {
    /// Shift held: select the range from the anchor.
    pub shift: bool,
    /// Ctrl or Cmd held (or the row's check box): toggle this row.
    pub toggle: bool,
}

/// The selected rows of one list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Picked {
    /// Everything the list's filter matches is selected (minus `ids`).
    pub all: bool,
    /// Selected ids; with `all`, the ids clicked off.
    pub ids: BTreeSet<String>,
    /// Index of the last clicked row (the start of a shift range).
    pub anchor: Option<usize>,
}

impl Picked {
    /// Whether the row is selected.
    pub fn has(&self, id: &str) -> bool {
        self.all != self.ids.contains(id)
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        !self.all && self.ids.is_empty()
    }

    /// How many rows are selected when the filter matches `total`.
    pub fn count(&self, total: usize) -> usize {
        if self.all {
            total.saturating_sub(self.ids.len())
        } else {
            self.ids.len()
        }
    }

    fn set(&mut self, id: &str, on: bool) {
        // Stored: selected ids, or (with `all`) the ones clicked off.
        if on != self.all {
            self.ids.insert(id.to_owned());
        } else {
            self.ids.remove(id);
        }
    }

    /// A click on row `index` (`id`) of the loaded rows `order`.
    pub fn click(&mut self, order: &[&str], index: usize, id: &str, how: Click) {
        if how.shift
            && let Some(a) = self.anchor
        {
            let (lo, hi) = if a <= index { (a, index) } else { (index, a) };
            for i in order.iter().take(hi + 1).skip(lo) {
                self.set(i, true);
            }
        } else if how.toggle {
            let on = !self.has(id);
            self.set(id, on);
        } else {
            let only = self.ids.len() == 1 && !self.all && self.ids.contains(id);
            *self = Picked::default();
            if !only {
                self.set(id, true);
            }
        }
        self.anchor = Some(index);
    }

    /// Selects everything the filter matches.
    pub fn select_all(&mut self) {
        *self = Picked {
            all: true,
            ..Picked::default()
        };
    }

    /// The selection as the host reads it: the ids, or the filter minus the ids clicked off.
    pub fn to_selection(&self, filter: SelectionFilter) -> Selection {
        if self.all {
            Selection::filter(filter, self.ids.iter().cloned().collect())
        } else {
            Selection::ids(self.ids.iter().cloned())
        }
    }

    /// The selected ids among `order` (the loaded rows), in that order.
    pub fn in_order<'a>(&self, order: &[&'a str]) -> Vec<&'a str> {
        order.iter().copied().filter(|i| self.has(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler_api::ListName;

    const ROWS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
    const TOGGLE: Click = Click {
        shift: false,
        toggle: true,
    };
    const SHIFT: Click = Click {
        shift: true,
        toggle: false,
    };

    #[test]
    fn click_toggle_and_shift_range() {
        let mut p = Picked::default();
        p.click(&ROWS, 1, "b", Click::default());
        assert_eq!(p.in_order(&ROWS), ["b"]);
        p.click(&ROWS, 4, "e", SHIFT);
        assert_eq!(p.in_order(&ROWS), ["b", "c", "d", "e"]);
        p.click(&ROWS, 2, "c", TOGGLE);
        assert_eq!(p.in_order(&ROWS), ["b", "d", "e"]);
        // A range backwards from the new anchor (c) adds a..c.
        p.click(&ROWS, 0, "a", SHIFT);
        assert_eq!(p.in_order(&ROWS), ["a", "b", "c", "d", "e"]);
        // A plain click keeps only that row; a plain click on the only row clears.
        p.click(&ROWS, 5, "f", Click::default());
        assert_eq!(p.in_order(&ROWS), ["f"]);
        p.click(&ROWS, 5, "f", Click::default());
        assert!(p.is_empty());
        // Shift without an anchor is a plain click.
        let mut q = Picked::default();
        q.click(&ROWS, 3, "d", SHIFT);
        assert_eq!(q.in_order(&ROWS), ["d"]);
    }

    #[test]
    fn select_all_stays_a_filter_minus_the_rows_clicked_off() {
        let mut p = Picked::default();
        p.click(&ROWS, 0, "a", Click::default());
        p.select_all();
        assert!(ROWS.iter().all(|r| p.has(r)));
        p.click(&ROWS, 2, "c", TOGGLE);
        p.click(&ROWS, 4, "e", TOGGLE);
        assert!(!p.has("c") && !p.has("e") && p.has("d"));
        assert_eq!(p.count(100_000), 99_998);
        let f = SelectionFilter {
            list: ListName::History,
            status: None,
            q: Some("fox".into()),
        };
        let sel = p.to_selection(f.clone());
        assert_eq!(sel.filter, Some(f.clone()));
        assert_eq!(sel.except, ["c", "e"]);
        assert!(sel.ids.is_empty());
        // Toggling one back on removes it from the exceptions.
        p.click(&ROWS, 2, "c", TOGGLE);
        assert_eq!(p.to_selection(f).except, ["e"]);
        // The wire form is small whatever the count.
        let json = serde_json::to_string(&p.to_selection(SelectionFilter {
            list: ListName::Queue,
            status: None,
            q: None,
        }))
        .unwrap();
        assert_eq!(json, r#"{"filter":{"list":"queue"},"except":["e"]}"#);
    }

    #[test]
    fn explicit_ids_go_as_ids() {
        let mut p = Picked::default();
        p.click(&ROWS, 1, "b", Click::default());
        p.click(&ROWS, 3, "d", TOGGLE);
        let sel = p.to_selection(SelectionFilter {
            list: ListName::Queue,
            status: None,
            q: None,
        });
        assert_eq!(sel.ids, ["b", "d"]);
        assert_eq!(sel.filter, None);
        assert_eq!(p.count(10), 2);
    }
}
