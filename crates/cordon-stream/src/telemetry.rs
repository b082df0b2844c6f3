//! What librdkafka's statistics tell about a client, every [`STATISTICS_INTERVAL`]: how far a
//! consumer is behind, read from its own fetch state, and the requests it sent to the brokers.
//!
//! The lag comes from the statistics rather than from asking the broker for its watermarks: a
//! watermark request waits on the client's connection behind the fetch in flight, and one that
//! times out makes librdkafka drop the connection — with the fetch — so a consumer far behind a
//! slow broker would stall on its own lag gauge.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

use crate::logs::Throttled;

/// How often librdkafka reports a client's statistics (`statistics.interval.ms`): every second,
/// so that `/readyz` sees an index catch up or a broker go away within a second or two. A
/// report is built and parsed in the client's own process (no broker request); a few clients
/// each process make that negligible.
pub const STATISTICS_INTERVAL: Duration = Duration::from_secs(1);

/// The latest statistics of one client, shared between librdkafka's callback and whoever
/// reports them (the role's metrics).
#[derive(Debug, Default)]
pub struct Telemetry {
    latest: Mutex<ClientStats>,
}

/// One client's figures as of its latest statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Records in the partitions a consumer reads that it has not yet handed to the
    /// application (high watermark minus the position), summed over those partitions; `None`
    /// until a fetch response has told every one's high watermark (an undercount could make an
    /// index that is far behind look caught up), and always for a producer.
    pub lag: Option<i64>,
    /// Requests sent to the brokers since the client started, by Kafka request type
    /// (`Fetch`, `Produce`, `Heartbeat`, ...); types never sent are left out.
    pub requests: BTreeMap<String, u64>,
    /// Brokers the client holds an open, authenticated connection to (state `UP`); `None`
    /// before the first statistics.
    pub brokers_up: Option<usize>,
}

impl Telemetry {
    /// The figures of the latest statistics.
    pub fn latest(&self) -> ClientStats {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the figures (the client context calls it with each statistics report).
    pub fn record(&self, stats: ClientStats) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = stats;
    }
}

impl ClientStats {
    /// The figures in librdkafka's statistics of one client.
    pub(crate) fn of(statistics: &Statistics) -> ClientStats {
        let mut requests = BTreeMap::new();
        let brokers_up = statistics
            .brokers
            .values()
            .filter(|b| matches!(b.source.as_str(), "learned" | "configured") && b.state == "UP")
            .count();
        for broker in statistics.brokers.values() {
            for (request, sent) in &broker.req {
                if let Ok(sent @ 1..) = u64::try_from(*sent) {
                    *requests.entry(request.clone()).or_default() += sent;
                }
            }
        }
        let mut lag = None;
        let mut unknown = false;
        let partitions = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values());
        for p in partitions.filter(|p| p.partition >= 0 && p.desired) {
            if p.hi_offset < 0 {
                unknown = true;
                continue;
            }
            // Where the application stands: past the last record handed to it, else where it
            // (or its group) committed, else where it is fetching from less what it fetched and
            // did not hand over yet (a reader resuming from offsets it keeps itself, like the
            // indexer, that has received nothing since), else the partition's start.
            let fetching = (p.next_offset >= 0).then(|| p.next_offset - p.fetchq_cnt);
            let position = [p.app_offset, p.committed_offset]
                .into_iter()
                .chain(fetching)
                .chain([p.lo_offset])
                .find(|o| *o >= 0);
            if let Some(position) = position {
                *lag.get_or_insert(0) += (p.hi_offset - position).max(0);
            }
        }
        if unknown {
            lag = None;
        }
        ClientStats {
            lag,
            requests,
            brokers_up: Some(brokers_up),
        }
    }
}

/// The client context of every Cordon client: keeps its [`Telemetry`] current and writes
/// librdkafka's log lines and errors with repeats held back ([`Throttled`]).
pub(crate) struct Observed {
    telemetry: Arc<Telemetry>,
    logs: Throttled,
}

impl Observed {
    pub(crate) fn new(telemetry: Arc<Telemetry>) -> Observed {
        Observed {
            telemetry,
            logs: Throttled::default(),
        }
    }

    /// A consumer found its broker connections lost (it waits for librdkafka to reconnect).
    pub(crate) fn connection_lost(&self, code: RDKafkaErrorCode) {
        self.logs.warn(&format!("waiting for the brokers: {code}"));
    }
}

impl ClientContext for Observed {
    fn stats(&self, statistics: Statistics) {
        self.telemetry.record(ClientStats::of(&statistics));
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logs.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logs.error(error, reason);
    }
}

impl ConsumerContext for Observed {}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::statistics::{Broker, Partition, Topic};

    const INVALID: i64 = -1001;

    /// A consumer's statistics: two brokers and the given partitions of one topic.
    fn statistics(partitions: Vec<Partition>) -> Statistics {
        let broker = |req: &[(&str, i64)]| Broker {
            req: req.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            ..Default::default()
        };
        Statistics {
            brokers: [
                (
                    "b1".into(),
                    broker(&[("Fetch", 7), ("ListOffsets", 2), ("Produce", 0)]),
                ),
                ("b2".into(), broker(&[("Fetch", 3)])),
            ]
            .into(),
            topics: [(
                "t".into(),
                Topic {
                    partitions: partitions.into_iter().map(|p| (p.partition, p)).collect(),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    fn partition(id: i32, desired: bool, app: i64, committed: i64, lo: i64, hi: i64) -> Partition {
        Partition {
            partition: id,
            desired,
            app_offset: app,
            committed_offset: committed,
            next_offset: INVALID,
            lo_offset: lo,
            hi_offset: hi,
            ..Default::default()
        }
    }

    #[test]
    fn requests_are_summed_over_brokers_by_type() {
        let stats = ClientStats::of(&statistics(vec![partition(0, true, 5, INVALID, 0, 10)]));
        let expected: BTreeMap<String, u64> =
            [("Fetch".to_string(), 10), ("ListOffsets".to_string(), 2)].into();
        assert_eq!(stats.requests, expected);
    }

    #[test]
    fn lag_counts_what_the_application_has_not_received() {
        let partitions = vec![
            // Handed out up to 5 of 10; a reader that never commits.
            partition(0, true, 5, INVALID, 0, 10),
            // Nothing handed out yet: from what the group committed.
            partition(1, true, INVALID, 40, 0, 100),
            // Nothing handed out, nothing committed: from the partition's start.
            partition(2, true, INVALID, INVALID, 20, 30),
            // A reader resuming at offset 95 of 100 that has received nothing since ...
            Partition {
                next_offset: 95,
                ..partition(5, true, INVALID, INVALID, 0, 100)
            },
            // ... and one that fetched 3 records from offset 10 but handed none over yet.
            Partition {
                next_offset: 13,
                fetchq_cnt: 3,
                ..partition(6, true, INVALID, INVALID, 0, 12)
            },
            // No longer assigned: not counted.
            partition(3, false, 0, INVALID, 0, 1000),
            // librdkafka's internal unassigned partition.
            partition(-1, true, 0, INVALID, 0, 1000),
        ];
        assert_eq!(
            ClientStats::of(&statistics(partitions)).lag,
            Some(5 + 60 + 10 + 5 + 2)
        );
    }

    #[test]
    fn no_lag_before_every_watermark_is_known() {
        let partitions = vec![partition(0, true, INVALID, INVALID, INVALID, INVALID)];
        assert_eq!(ClientStats::of(&statistics(partitions)).lag, None);
        let partitions = vec![
            partition(0, true, 5, INVALID, 0, 10),
            partition(1, true, 0, INVALID, 0, INVALID),
        ];
        assert_eq!(ClientStats::of(&statistics(partitions)).lag, None);
    }

    #[test]
    fn brokers_up_count_real_connections_only() {
        let mut stats = statistics(Vec::new());
        let broker = |source: &str, state: &str| Broker {
            source: source.into(),
            state: state.into(),
            ..Default::default()
        };
        stats.brokers = [
            ("a:9092/bootstrap".into(), broker("configured", "DOWN")),
            ("a:9092/1".into(), broker("learned", "UP")),
            ("b:9092/2".into(), broker("learned", "CONNECT")),
            ("GroupCoordinator".into(), broker("logical", "UP")),
            (":0/internal".into(), broker("internal", "UP")),
        ]
        .into();
        assert_eq!(ClientStats::of(&stats).brokers_up, Some(1));
        assert_eq!(ClientStats::default().brokers_up, None, "before statistics");
    }

    #[test]
    fn observed_clients_are_given_the_interval() {
        let config = crate::KafkaSettings::default().consumer_config();
        assert_eq!(
            config.get("statistics.interval.ms"),
            Some(STATISTICS_INTERVAL.as_millis().to_string().as_str())
        );
    }
}
