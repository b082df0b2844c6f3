//! librdkafka's log lines and error callbacks, passed on to `tracing` with repeats held back.
//!
//! While a broker is down every client logs each failed reconnect, and reports it again as an
//! error, several times a second. The same line (digits aside: librdkafka puts counts and
//! durations in them) is written once per [`REPEAT_WINDOW`]; the next one written says how many
//! were held back in between.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use tracing::{debug, error, info, warn};

/// How long an identical line is held back after it was written.
pub(crate) const REPEAT_WINDOW: Duration = Duration::from_secs(30);

/// Distinct lines remembered; past it the memory starts afresh (each line is then written once
/// more), so a flood of distinct lines cannot grow it.
const MAX_REMEMBERED: usize = 256;

/// The lines one client wrote lately.
#[derive(Default)]
pub(crate) struct Throttled {
    seen: Mutex<HashMap<String, Seen>>,
}

struct Seen {
    written_at: Instant,
    held_back: u64,
}

impl Throttled {
    /// Whether to write a line that reads `line` now (`Some` with the number of identical lines
    /// held back since it was last written), or hold it back (`None`).
    fn admit(&self, line: &str, now: Instant) -> Option<u64> {
        let key: String = line.chars().filter(|c| !c.is_ascii_digit()).collect();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = seen.get_mut(&key) {
            if now.duration_since(s.written_at) < REPEAT_WINDOW {
                s.held_back += 1;
                return None;
            }
            let held_back = s.held_back;
            *s = Seen {
                written_at: now,
                held_back: 0,
            };
            return Some(held_back);
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(
            key,
            Seen {
                written_at: now,
                held_back: 0,
            },
        );
        Some(0)
    }

    /// A librdkafka log line (the client context's `log`).
    pub(crate) fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let Some(held_back) = self.admit(message, Instant::now()) else {
            return;
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(target: "librdkafka", facility, held_back, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                warn!(target: "librdkafka", facility, held_back, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", facility, held_back, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                debug!(target: "librdkafka", facility, held_back, "{message}")
            }
        }
    }

    /// A warning of Cordon's own about the client.
    pub(crate) fn warn(&self, line: &str) {
        if let Some(held_back) = self.admit(line, Instant::now()) {
            warn!(held_back, "{line}");
        }
    }

    /// A client error librdkafka reports besides its log (the client context's `error`).
    pub(crate) fn error(&self, error: KafkaError, reason: &str) {
        let line = format!("{error}: {reason}");
        if let Some(held_back) = self.admit(&line, Instant::now()) {
            error!(target: "librdkafka", held_back, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_held_back_for_the_window_then_counted() {
        let t = Throttled::default();
        let start = Instant::now();
        let line = |n: u32| {
            format!("Connect to ipv4#127.0.0.1:9092 failed (after {n}ms in state CONNECT)")
        };
        assert_eq!(t.admit(&line(0), start), Some(0));
        for i in 1..=20 {
            assert_eq!(
                t.admit(&line(i), start + Duration::from_millis(100 * u64::from(i))),
                None
            );
        }
        assert_eq!(
            t.admit("another line", start + Duration::from_secs(1)),
            Some(0),
            "other lines are not held back"
        );
        assert_eq!(t.admit(&line(99), start + REPEAT_WINDOW), Some(20));
        assert_eq!(t.admit(&line(1), start + REPEAT_WINDOW), None);
    }

    #[test]
    fn many_distinct_lines_do_not_grow_the_memory() {
        let t = Throttled::default();
        let now = Instant::now();
        for i in 0..10 * MAX_REMEMBERED {
            t.admit(&format!("line {}", "x".repeat(i % 1000)), now);
        }
        assert!(t.seen.lock().unwrap().len() <= MAX_REMEMBERED);
    }
}
