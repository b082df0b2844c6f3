//! What `/readyz` asks of a process besides its review database: that each Kafka consumer it
//! runs reaches a broker, and that each consumer whose readers need it caught up (the indexer,
//! whose index the search serves) has been within its lag bound once.
//!
//! Both come from librdkafka's statistics ([`cordon_stream::Telemetry`], every
//! [`cordon_stream::STATISTICS_INTERVAL`]), so `/readyz` sends nothing to the brokers. Catching
//! up is latched: an index replica that has caught up stays ready when a burst puts it behind
//! again, so that a load spike cannot take every replica out of service at once (the lag
//! metric and its alert watch that instead).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cordon_stream::Telemetry;

/// The readiness conditions of one process; cheap to clone (one shared list).
#[derive(Clone, Default)]
pub struct Readiness(Arc<Inner>);

#[derive(Default)]
struct Inner {
    watched: Mutex<Vec<Watched>>,
    /// The last answer given, to log only its changes.
    last_answer: Mutex<Option<String>>,
}

/// One consumer `/readyz` watches.
struct Watched {
    role: &'static str,
    telemetry: Arc<Telemetry>,
    /// The lag the consumer must have been within once, and whether it has been.
    catch_up: Option<(i64, AtomicBool)>,
}

impl Readiness {
    /// Watches that `role`'s consumer reaches a broker.
    pub fn watch_kafka(&self, role: &'static str, telemetry: Arc<Telemetry>) {
        self.push(Watched {
            role,
            telemetry,
            catch_up: None,
        });
    }

    /// Watches that `role`'s consumer reaches a broker and has once been at most `max_lag`
    /// records behind its topics.
    pub fn watch_catch_up(&self, role: &'static str, telemetry: Arc<Telemetry>, max_lag: i64) {
        self.push(Watched {
            role,
            telemetry,
            catch_up: Some((max_lag, AtomicBool::new(false))),
        });
    }

    fn push(&self, watched: Watched) {
        self.0
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(watched);
    }

    /// Whether `answer` differs from the one noted last time (then it is noted): `/readyz`
    /// logs a change of its answer once, not every probe.
    pub fn changed(&self, answer: &str) -> bool {
        let mut last = self
            .0
            .last_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.as_deref() == Some(answer) {
            return false;
        }
        *last = Some(answer.to_string());
        true
    }

    /// What keeps the process from being ready, one sentence each; empty when it is ready.
    pub fn problems(&self) -> Vec<String> {
        let watched = self
            .0
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut problems = Vec::new();
        for w in watched.iter() {
            let stats = w.telemetry.latest();
            // Before the first statistics, the connection check at start speaks for the brokers.
            if stats.brokers_up == Some(0) {
                problems.push(format!("{}: no Kafka broker reachable", w.role));
            }
            if let Some((max_lag, caught_up)) = &w.catch_up {
                if caught_up.load(Ordering::Relaxed) {
                    continue;
                }
                match stats.lag {
                    Some(lag) if lag <= *max_lag => caught_up.store(true, Ordering::Relaxed),
                    Some(lag) => problems.push(format!(
                        "{}: catching up, {lag} records behind (ready at {max_lag})",
                        w.role
                    )),
                    None => problems.push(format!("{}: catching up, lag not known yet", w.role)),
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_stream::ClientStats;

    fn stats(lag: Option<i64>, brokers_up: Option<usize>) -> ClientStats {
        ClientStats {
            lag,
            brokers_up,
            ..Default::default()
        }
    }

    #[test]
    fn an_indexer_is_ready_once_caught_up_and_while_it_reaches_a_broker() {
        let telemetry = Arc::new(Telemetry::default());
        let readiness = Readiness::default();
        readiness.watch_catch_up("indexer", Arc::clone(&telemetry), 100);
        assert_eq!(
            readiness.problems(),
            ["indexer: catching up, lag not known yet"]
        );
        telemetry.record(stats(Some(5_000), Some(1)));
        assert_eq!(
            readiness.problems(),
            ["indexer: catching up, 5000 records behind (ready at 100)"]
        );
        telemetry.record(stats(Some(100), Some(1)));
        assert!(readiness.problems().is_empty());
        // A burst later does not take it out of service ...
        telemetry.record(stats(Some(5_000), Some(1)));
        assert!(readiness.problems().is_empty());
        // ... losing the brokers does.
        telemetry.record(stats(Some(5_000), Some(0)));
        assert_eq!(readiness.problems(), ["indexer: no Kafka broker reachable"]);
    }

    #[test]
    fn a_consumer_is_ready_while_it_reaches_a_broker() {
        let telemetry = Arc::new(Telemetry::default());
        let readiness = Readiness::default();
        readiness.watch_kafka("api", Arc::clone(&telemetry));
        assert!(readiness.problems().is_empty(), "before statistics");
        telemetry.record(stats(None, Some(0)));
        assert_eq!(readiness.problems(), ["api: no Kafka broker reachable"]);
        telemetry.record(stats(None, Some(2)));
        assert!(readiness.problems().is_empty());
    }
}
