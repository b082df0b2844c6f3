//! The transactional outbox: verdicts of decisions, and the notices reporters and appellants
//! get, wait here until Kafka acknowledged them.

use std::future::Future;

use sqlx::types::Json;
use sqlx::Row;

use crate::{Decision, OutboxRow, ReviewError, ReviewStore};

const RELAY_LOCK: i64 = 0x636f_7264_6f6e;

/// Queues the verdict announcing `decision` in the outbox (keyed by the decision's item id, or
/// `channel:<id>` for a channel), in the caller's transaction.
pub(crate) async fn enqueue_verdict(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    decision: &Decision,
) -> Result<(), ReviewError> {
    sqlx::query("INSERT INTO outbox (key, payload) VALUES ($1, $2)")
        .bind(&decision.item_id)
        .bind(Json(decision.verdict()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queues a notice for the outcomes topic under `key` (a report's id, `appeal-<id>`), in the
/// caller's transaction.
pub(crate) async fn enqueue_outcome(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    key: &str,
    notice: &impl serde::Serialize,
) -> Result<(), ReviewError> {
    sqlx::query("INSERT INTO outbox (key, payload, topic) VALUES ($1, $2, 'outcomes')")
        .bind(key)
        .bind(Json(notice))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl ReviewStore {
    /// Publishes up to `limit` outbox rows, oldest first, through `publish`, and marks them
    /// published once it succeeds. `publish` answers the rows (by position) that can never be
    /// published, with why: they are marked refused (kept, counted in [`QueueStats`], never
    /// retried), so one bad row cannot hold back every later decision. Only one relay publishes
    /// at a time (an advisory lock), so verdicts leave in decision order. Returns how many rows
    /// were published.
    pub async fn relay_outbox<F, Fut>(&self, limit: i64, publish: F) -> Result<usize, ReviewError>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut,
        Fut: Future<Output = Result<Vec<(usize, String)>, String>>,
    {
        let Some(mut tx) = self.begin_exclusive(RELAY_LOCK).await? else {
            return Ok(0);
        };
        let rows = sqlx::query(
            "SELECT id, topic, key, payload::text AS payload FROM outbox
             WHERE published_at IS NULL AND refused_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let batch: Vec<OutboxRow> = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    topic: crate::parsed(r, "topic")?,
                    key: r.try_get("key")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let mut ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
        let refused = match publish(batch).await {
            Ok(refused) => refused,
            Err(e) => {
                // Release the lock now, not whenever the pool gets round to the dropped
                // transaction.
                tx.rollback().await?;
                return Err(ReviewError::Publish(e));
            }
        };
        for (index, why) in refused.iter().rev() {
            let id = ids.remove(*index);
            sqlx::query("UPDATE outbox SET refused_at = now(), error = $2 WHERE id = $1")
                .bind(id)
                .bind(why)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len())
    }
}
