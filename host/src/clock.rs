//! The host's one clock: wall-clock milliseconds since the Unix epoch, the time every stored
//! timestamp (created, started, finished, retry and callback times, the event log) is taken
//! from. Built once (in the configuration: the system clock in production, a manual one in
//! tests) and handed to the services, which read it and pass the time into the store: no
//! store transaction reads a clock.
//!
//! Must not: depend on anything of the host (every layer may hold it). Monotonic time
//! (`Instant`: timeouts, watchdogs, tokio timers) is not this clock's business.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock milliseconds: the system's, or a manual one a test sets. Cheap to clone; the
/// clones of a manual clock share its time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock(system)"),
            Some(t) => write!(f, "Clock(manual at {} ms)", t.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `start_ms` until it is moved ([`Clock::advance`],
    /// [`Clock::set`]).
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => system_ms(),
        }
    }

    /// Moves a manual clock forward by `ms` (a negative `ms` moves it back). Panics on the
    /// system clock: only a test moves time.
    pub fn advance(&self, ms: i64) {
        self.cell().fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets a manual clock to `ms`. Panics on the system clock.
    pub fn set(&self, ms: i64) {
        self.cell().store(ms, Ordering::SeqCst);
    }

    fn cell(&self) -> &AtomicI64 {
        self.manual
            .as_deref()
            .expect("only a manual clock is moved (Clock::manual)")
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_its_clones_share_it() {
        let c = Clock::manual(1_000);
        let shared = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(shared.now_ms(), 1_250);
        shared.set(5);
        assert_eq!(c.now_ms(), 5);
        assert!(c.is_manual());
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = system_ms();
        let now = Clock::system().now_ms();
        let after = system_ms();
        assert!(
            (before..=after).contains(&now),
            "{before} <= {now} <= {after}"
        );
        assert!(!Clock::default().is_manual());
    }

    #[test]
    #[should_panic(expected = "only a manual clock is moved")]
    fn the_system_clock_is_not_moved() {
        Clock::system().advance(1);
    }
}
