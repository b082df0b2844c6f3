//! When the indexer commits: often while it keeps up, so a suppression is searchable within a
//! fraction of a second; rarely while it is behind, so a backlog drains at full speed (a commit
//! costs a segment flush, a reader reload and later merges, whatever its size, and stalls
//! applying while it runs).

use std::time::Duration;

/// The commit policy, from `[index]` (`commit_interval_ms`, `behind_commit_interval_ms`,
/// `behind_after_ms`).
///
/// "Behind" is judged by the age of the newest record applied (its Kafka timestamp against this
/// machine's clock): a record that waited longer than `behind_after` in the topic means there is
/// a backlog, and larger commits drain it faster. Clocks that disagree by more than
/// `behind_after` make the indexer commit at the slower interval: suppression then takes up to
/// `behind` instead of `caught_up`, and nothing else changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    /// Time between commits while the indexer keeps up.
    pub caught_up: Duration,
    /// Time between commits while it is behind.
    pub behind: Duration,
    /// A record older than this when applied means the indexer is behind.
    pub behind_after: Duration,
}

/// Whether the indexer keeps up with its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The newest record applied was fresh (or had no timestamp).
    CaughtUp,
    /// The newest record applied had waited longer than `behind_after`.
    Behind,
}

impl CommitPolicy {
    /// The pace that the age of the newest record applied shows (`None`: no timestamp).
    pub fn pace(&self, record_age: Option<Duration>) -> Pace {
        match record_age {
            Some(age) if age > self.behind_after => Pace::Behind,
            _ => Pace::CaughtUp,
        }
    }

    /// How long changes may stay pending at this pace.
    pub fn interval(&self, pace: Pace) -> Duration {
        match pace {
            Pace::CaughtUp => self.caught_up,
            Pace::Behind => self.behind,
        }
    }

    /// How long until changes pending for `pending_for` are due to be committed at `pace`
    /// (zero: commit now).
    pub fn remaining(&self, pending_for: Duration, pace: Pace) -> Duration {
        self.interval(pace).saturating_sub(pending_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CommitPolicy = CommitPolicy {
        caught_up: Duration::from_millis(100),
        behind: Duration::from_millis(1000),
        behind_after: Duration::from_millis(1000),
    };

    #[test]
    fn fresh_records_commit_at_the_short_interval() {
        let pace = POLICY.pace(Some(Duration::from_millis(30)));
        assert_eq!(pace, Pace::CaughtUp);
        assert_eq!(
            POLICY.remaining(Duration::from_millis(40), pace),
            Duration::from_millis(60)
        );
        assert_eq!(
            POLICY.remaining(Duration::from_millis(100), pace),
            Duration::ZERO
        );
    }

    #[test]
    fn old_records_mean_a_backlog_and_larger_commits() {
        let pace = POLICY.pace(Some(Duration::from_secs(5)));
        assert_eq!(pace, Pace::Behind);
        assert_eq!(
            POLICY.remaining(Duration::from_millis(100), pace),
            Duration::from_millis(900)
        );
        assert_eq!(
            POLICY.remaining(Duration::from_millis(1500), pace),
            Duration::ZERO
        );
    }

    #[test]
    fn the_threshold_itself_and_missing_timestamps_count_as_caught_up() {
        assert_eq!(POLICY.pace(Some(POLICY.behind_after)), Pace::CaughtUp);
        assert_eq!(POLICY.pace(None), Pace::CaughtUp);
    }

    #[test]
    fn catching_up_shortens_the_wait_of_changes_already_pending() {
        // Pending for 300 ms while behind: not due; the next record is fresh: due now.
        let pending_for = Duration::from_millis(300);
        assert!(POLICY.remaining(pending_for, Pace::Behind) > Duration::ZERO);
        assert_eq!(
            POLICY.remaining(pending_for, Pace::CaughtUp),
            Duration::ZERO
        );
    }
}
