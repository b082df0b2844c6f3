//! The worker's self-fence: a batch whose version snapshot is old is checked again right before
//! it is handed to the producer.

use std::time::{Duration, Instant};

use cordon_ops::{retry, Dependency, Interrupted};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::worker::{Scored, Worker};

impl Worker {
    /// The self-fence of a worker that may have lost its partitions without noticing (a GC
    /// pause, a frozen VM, SIGSTOP, a broker outage): there are no broker transactions to fence
    /// it, so when a batch's version snapshot is older than `worker.fence_after_ms` — long
    /// enough for the group to have handed its partitions to another worker — the newest
    /// versions are looked up again right before the batch is handed to the producer, and every
    /// verdict (and case, and statement) a newer version has overtaken is dropped (`cordon_fenced_total`). The
    /// new owner has published the newer version's verdict, and the compacted verdicts topic
    /// must not end on this older one. `Err` when shutdown interrupted the look-up.
    pub(crate) async fn fence(
        &self,
        mut scored: Scored,
        shutdown: &CancellationToken,
    ) -> Result<Scored, Interrupted> {
        let age = scored.snapshot_at.elapsed();
        if age < Duration::from_millis(self.settings.worker.fence_after_ms) {
            return Ok(scored);
        }
        let m = &self.metrics;
        let ids: Vec<String> = scored
            .versions
            .iter()
            .flatten()
            .map(|(id, _)| id.clone())
            .collect();
        let newest = retry(Dependency::Database, shutdown, self.backoff(), m, || {
            self.store.current_versions(&ids)
        })
        .await?;
        let overtaken =
            |id: &str, version: u64| newest.get(id).is_some_and(|newest| *newest > version);
        let current = |v: &Option<(String, u64)>| {
            v.as_ref()
                .is_none_or(|(id, version)| !overtaken(id, *version))
        };
        let before = scored.records.len();
        let mut keep = scored.versions.iter().map(current);
        scored.records.retain(|_| keep.next().unwrap_or(true));
        scored.versions.retain(current);
        scored
            .cases
            .retain(|c| !overtaken(&c.item_id, c.item_version));
        scored
            .suppressions
            .retain(|s| !overtaken(&s.item_id, s.item_version));
        scored.snapshot_at = Instant::now();
        let fenced = before - scored.records.len();
        if fenced > 0 {
            warn!(
                fenced,
                snapshot_age_secs = age.as_secs_f64(),
                "dropping verdicts that newer versions overtook while this worker stalled"
            );
            m.fenced.inc_by(fenced as u64);
        }
        Ok(scored)
    }
}
