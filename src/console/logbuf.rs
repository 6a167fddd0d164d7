//! A capped ring buffer of log lines and the pane state over it (follow, scroll, wrap,
//! search). The full logs stay in the store; memory holds the newest `cap` lines.

use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Store id of the line (0 for lines that never came from the store).
    pub id: i64,
    pub step: String,
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct LogPane {
    lines: VecDeque<LogLine>,
    cap: usize,
    /// Lines pushed out of memory (still in the store).
    pub dropped: usize,
    /// Highest store id seen: the next poll reads after it.
    pub last_id: i64,
    /// Stick to the newest line.
    pub follow: bool,
    pub wrap: bool,
    /// Index of the first line shown when not following.
    pub top: usize,
    pub search: String,
    /// Index of the current search hit.
    pub hit: Option<usize>,
}

pub const DEFAULT_CAP: usize = 20_000;

impl Default for LogPane {
    fn default() -> Self {
        Self::with_cap(DEFAULT_CAP)
    }
}

impl LogPane {
    pub fn with_cap(cap: usize) -> Self {
        Self {
            lines: VecDeque::with_capacity(cap.min(4096)),
            cap: cap.max(1),
            dropped: 0,
            last_id: 0,
            follow: true,
            wrap: false,
            top: 0,
            search: String::new(),
            hit: None,
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&LogLine> {
        self.lines.get(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter()
    }

    /// Append lines; lines already seen (by store id) are skipped, the oldest fall out.
    pub fn extend(&mut self, new: impl IntoIterator<Item = LogLine>) -> bool {
        let mut changed = false;
        for l in new {
            if l.id != 0 && l.id <= self.last_id {
                continue;
            }
            self.last_id = self.last_id.max(l.id);
            if self.lines.len() == self.cap {
                self.lines.pop_front();
                self.dropped += 1;
                // Keep a reader's place while the buffer slides under it.
                self.top = self.top.saturating_sub(1);
                self.hit = self.hit.and_then(|h| h.checked_sub(1));
            }
            self.lines.push_back(l);
            changed = true;
        }
        changed
    }

    /// The first line to show in a pane `height` lines high.
    pub fn first_shown(&self, height: usize) -> usize {
        if self.follow {
            self.lines.len().saturating_sub(height)
        } else {
            self.top.min(self.lines.len().saturating_sub(1))
        }
    }

    /// Scroll by `delta` lines (negative: up); scrolling stops following.
    pub fn scroll(&mut self, delta: isize, height: usize) {
        let start = self.first_shown(height);
        let max = self.lines.len().saturating_sub(height.max(1));
        self.top = (start as isize + delta).clamp(0, max as isize) as usize;
        self.follow = self.top >= max && delta > 0;
    }

    pub fn to_top(&mut self) {
        self.follow = false;
        self.top = 0;
    }

    pub fn to_bottom(&mut self) {
        self.follow = true;
    }

    /// Jump to the next line (after the current hit, wrapping) containing the search text.
    pub fn next_hit(&mut self) -> bool {
        if self.search.is_empty() || self.lines.is_empty() {
            self.hit = None;
            return false;
        }
        let needle = self.search.to_lowercase();
        let n = self.lines.len();
        let from = self.hit.map_or(0, |h| h + 1);
        for k in 0..n {
            let i = (from + k) % n;
            if self.lines[i].text.to_lowercase().contains(&needle) {
                self.hit = Some(i);
                self.follow = false;
                self.top = i.saturating_sub(2);
                return true;
            }
        }
        self.hit = None;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: i64, text: &str) -> LogLine {
        LogLine {
            id,
            step: "restore".into(),
            stream: "stderr".into(),
            text: text.into(),
        }
    }

    #[test]
    fn ring_buffer_keeps_the_newest_lines_and_counts_the_rest() {
        let mut p = LogPane::with_cap(3);
        p.extend((1..=5).map(|i| line(i, &format!("l{i}"))));
        let texts: Vec<_> = p.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["l3", "l4", "l5"]);
        assert_eq!(p.dropped, 2);
        assert!(
            !p.extend([line(4, "again")]),
            "a line seen before is skipped"
        );
    }

    #[test]
    fn scrolling_up_stops_following_and_search_finds_the_next_hit() {
        let mut p = LogPane::with_cap(100);
        p.extend((1..=50).map(|i| line(i, &format!("line {i}"))));
        assert_eq!(p.first_shown(10), 40);
        p.scroll(-5, 10);
        assert!(!p.follow);
        assert_eq!(p.first_shown(10), 35);
        p.search = "line 4".into();
        assert!(p.next_hit());
        assert_eq!(p.hit, Some(3));
        assert!(p.next_hit());
        assert_eq!(p.hit, Some(39), "line 40 is the next containing 'line 4'");
        p.scroll(100, 10);
        assert!(p.follow, "scrolling to the end follows again");
    }
}
