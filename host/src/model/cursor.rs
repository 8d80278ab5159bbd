//! Keyset cursors of the listings: where the next page starts, as an opaque string on the
//! wire (`next_cursor` in, `cursor=` out). A page read from a cursor costs the same at any
//! depth, unlike an offset. Also where an export's next page of pending tasks starts
//! ([`PendingFrom`], never on the wire).

/// Where a listing page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The queue's look-ahead window, from this index of the policy's order (the running
    /// tasks were on earlier pages).
    Window(i64),
    /// The queue beyond the window: pending tasks after `(rank, seq)`; `position` is the
    /// place of the next one (running tasks first).
    Rank {
        /// Rank of the last task shown.
        rank: i64,
        /// Its `seq`.
        seq: i64,
        /// The place of the next task in the queue.
        position: i64,
    },
    /// The history: finished tasks after `(finished_at, seq)`, newest first.
    Finished {
        /// `finished_at` of the last task shown.
        finished_at: i64,
        /// Its `seq`.
        seq: i64,
    },
    /// Search results: after this `seq` (in the order of creation).
    Seq(i64),
    /// The history by checkpoint: after `(checkpoint, finished_at, seq)`.
    Checkpoint {
        /// The checkpoint of the last task shown (`None`: whatever is loaded).
        checkpoint: Option<String>,
        /// Its `finished_at`.
        finished_at: i64,
        /// Its `seq`.
        seq: i64,
    },
}

impl Cursor {
    /// The wire form.
    pub fn encode(&self) -> String {
        match self {
            Cursor::Window(i) => format!("w{i}"),
            Cursor::Rank {
                rank,
                seq,
                position,
            } => format!("r{rank}_{seq}_{position}"),
            Cursor::Finished { finished_at, seq } => format!("f{finished_at}_{seq}"),
            Cursor::Seq(s) => format!("s{s}"),
            Cursor::Checkpoint {
                checkpoint,
                finished_at,
                seq,
            } => {
                let ck = match checkpoint {
                    None => "n".to_owned(),
                    Some(c) => c.bytes().fold("h".to_owned(), |mut h, b| {
                        h.push_str(&format!("{b:02x}"));
                        h
                    }),
                };
                format!("c{finished_at}_{seq}_{ck}")
            }
        }
    }

    /// Parses the wire form; `None` for anything this host did not write.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (kind, rest) = s.split_at_checked(1)?;
        if kind == "c" {
            let mut parts = rest.splitn(3, '_');
            let finished_at = parts.next()?.parse().ok()?;
            let seq = parts.next()?.parse().ok()?;
            let ck = parts.next()?;
            let checkpoint = match ck.split_at_checked(1)? {
                ("n", "") => None,
                ("h", hex) if hex.len() % 2 == 0 => {
                    let bytes = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()?;
                    Some(String::from_utf8(bytes).ok()?)
                }
                _ => return None,
            };
            return Some(Cursor::Checkpoint {
                checkpoint,
                finished_at,
                seq,
            });
        }
        let nums: Vec<i64> = rest
            .split('_')
            .map(|n| n.parse::<i64>().ok())
            .collect::<Option<_>>()?;
        Some(match (kind, nums.as_slice()) {
            ("w", [i]) if *i >= 0 => Cursor::Window(*i),
            ("r", [rank, seq, position]) if *position >= 0 => Cursor::Rank {
                rank: *rank,
                seq: *seq,
                position: *position,
            },
            ("f", [finished_at, seq]) => Cursor::Finished {
                finished_at: *finished_at,
                seq: *seq,
            },
            ("s", [s]) => Cursor::Seq(*s),
            _ => return None,
        })
    }
}

/// Where a page of pending tasks starts (an export read in pages, in queue order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingFrom {
    /// The first page: skip this many tasks.
    Offset(i64),
    /// Later pages: after this `(rank, seq)`.
    After(i64, i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        for c in [
            Cursor::Window(7),
            Cursor::Rank {
                rank: -1_048_576,
                seq: 12,
                position: 140,
            },
            Cursor::Finished {
                finished_at: 1_700_000_000_000,
                seq: 3,
            },
            Cursor::Seq(99),
            Cursor::Checkpoint {
                checkpoint: Some("sdxl/Jugger_naut [ab12] ü".into()),
                finished_at: 1_700_000_000_000,
                seq: 7,
            },
            Cursor::Checkpoint {
                checkpoint: None,
                finished_at: 5,
                seq: 6,
            },
            Cursor::Checkpoint {
                checkpoint: Some(String::new()),
                finished_at: 5,
                seq: 6,
            },
        ] {
            assert_eq!(Cursor::parse(&c.encode()), Some(c));
        }
        for bad in [
            "", "w", "w-1", "x1", "r1_2", "f1", "s1_2", "wabc", "r1_2_-3", "c1_2", "c1_2_x",
            "c1_2_h6", "c1_2_hzz", "c1_2_nx", "cx_2_n", "c1_2_hff",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
