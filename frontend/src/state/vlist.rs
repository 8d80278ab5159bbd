//! Virtual-list window math: which rows to render for a scroll position.

/// The rows to render and the spacer heights around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First row index rendered.
    pub start: usize,
    /// One past the last row rendered.
    pub end: usize,
    /// Height of the spacer above the rendered rows (px).
    pub pad_top: u32,
    /// Height of the spacer below them (px).
    pub pad_bottom: u32,
}

/// Rows `[start, end)` visible at `scroll_top` in a viewport of `viewport` px, rows of `row`
/// px, plus `overscan` rows each side.
pub fn window(scroll_top: u32, viewport: u32, row: u32, total: usize, overscan: usize) -> Window {
    let row = row.max(1);
    let first = (scroll_top / row) as usize;
    let visible = (viewport.div_ceil(row) as usize).max(1);
    let start = first.saturating_sub(overscan).min(total);
    let end = (first + visible + overscan).min(total);
    let start = start.min(end);
    Window {
        start,
        end,
        pad_top: start as u32 * row,
        pad_bottom: (total - end) as u32 * row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_middle_end_and_tiny_lists() {
        let w = window(0, 400, 40, 10_000, 5);
        assert_eq!((w.start, w.end, w.pad_top), (0, 15, 0));
        assert_eq!(w.pad_bottom, (10_000 - 15) * 40);
        let w = window(40 * 5000, 400, 40, 10_000, 5);
        assert_eq!((w.start, w.end), (4995, 5015));
        assert_eq!(
            w.pad_top + (w.end - w.start) as u32 * 40 + w.pad_bottom,
            400_000
        );
        let w = window(40 * 20_000, 400, 40, 10_000, 5);
        assert_eq!((w.start, w.end), (10_000, 10_000));
        let w = window(0, 400, 40, 3, 5);
        assert_eq!((w.start, w.end, w.pad_bottom), (0, 3, 0));
        let w = window(0, 0, 0, 0, 0);
        assert_eq!((w.start, w.end), (0, 0));
    }
}
