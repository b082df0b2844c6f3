//! Submitting statements of reasons to the EU Transparency Database: the queue every statement
//! joins when it is written (a trigger), one submitter at a time (an advisory lock), and what the
//! database answered about each — kept, so a recorded acceptance is final and
//! every rejection keeps its reason.

use std::future::Future;

use chrono::{DateTime, Utc};
use cordon_statements::{Restriction, TdbStatement};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::Row;

use crate::{parsed, ReviewError, ReviewStore};

const SUBMIT_LOCK: i64 = 0x636f_7264_7464;

/// A queued statement, as the database takes it.
#[derive(Debug, Clone)]
pub struct QueuedStatement {
    /// Its id in Cordon.
    pub id: i64,
    /// The statement in the database's schema (its PUID included).
    pub tdb: TdbStatement,
}

/// What the database answered about one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Stored, under the database's own id if it said.
    Accepted {
        /// The database's uuid for it.
        uuid: Option<String>,
    },
    /// Its PUID was already there: an earlier submission whose answer was lost. Done.
    Known,
    /// Refused, with the database's reason (its validation errors for this statement).
    Rejected {
        /// The errors, as the database gave them.
        reason: serde_json::Value,
    },
}

/// Where the statements are.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SubmissionCounts {
    /// Waiting to be submitted.
    pub queued: i64,
    /// Accepted by the database.
    pub accepted: i64,
    /// Already known to the database (done).
    pub known: i64,
    /// Rejected by the database.
    pub rejected: i64,
}

/// A statement the database rejected, with its reason.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedStatement {
    /// The statement.
    pub statement_id: i64,
    /// Its PUID.
    pub puid: String,
    /// What it states.
    pub restriction: Restriction,
    /// The item or channel key.
    pub subject: String,
    /// The database's errors.
    pub reason: serde_json::Value,
    /// When it answered.
    pub at: DateTime<Utc>,
}

impl ReviewStore {
    /// Submits up to `limit` queued statements, oldest first, through `submit`, which answers
    /// what the database said about each one it settled; those leave the queue with their
    /// outcome, and the rest stay for the next round. Only one submitter works at a time (an
    /// advisory lock, held until the answers are recorded), so two processes never send the
    /// same statement at once. Returns how many were settled (0 when none are queued or another
    /// submitter is at work); `submit`'s error leaves every statement queued.
    pub async fn submit_statements<F, Fut>(
        &self,
        limit: i64,
        submit: F,
    ) -> Result<usize, ReviewError>
    where
        F: FnOnce(Vec<QueuedStatement>) -> Fut,
        Fut: Future<Output = Result<Vec<(i64, Submitted)>, String>>,
    {
        let Some(mut tx) = self.begin_exclusive(SUBMIT_LOCK).await? else {
            return Ok(0);
        };
        let rows = sqlx::query(
            "SELECT s.id, s.tdb FROM statement_queue q JOIN statements s ON s.id = q.statement_id
             ORDER BY q.statement_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let batch = rows
            .iter()
            .map(|r| {
                Ok(QueuedStatement {
                    id: r.try_get("id")?,
                    tdb: r.try_get::<Json<TdbStatement>, _>("tdb")?.0,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let answers = match submit(batch).await {
            Ok(answers) => answers,
            Err(e) => {
                tx.rollback().await?;
                return Err(ReviewError::Submit(e));
            }
        };
        let mut ids = Vec::with_capacity(answers.len());
        let mut outcomes = Vec::with_capacity(answers.len());
        let mut uuids = Vec::with_capacity(answers.len());
        let mut reasons = Vec::with_capacity(answers.len());
        for (id, answer) in &answers {
            ids.push(*id);
            let (outcome, uuid, reason) = match answer {
                Submitted::Accepted { uuid } => ("accepted", uuid.as_deref(), None),
                Submitted::Known => ("known", None, None),
                Submitted::Rejected { reason } => ("rejected", None, Some(reason)),
            };
            outcomes.push(outcome);
            uuids.push(uuid);
            reasons.push(reason);
        }
        sqlx::query(
            "INSERT INTO statement_submissions (statement_id, outcome, tdb_uuid, reason)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::jsonb[])
             ON CONFLICT (statement_id) DO NOTHING",
        )
        .bind(&ids)
        .bind(&outcomes)
        .bind(&uuids)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM statement_queue WHERE statement_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Where the statements are: queued, accepted, known, rejected.
    pub async fn submission_counts(&self) -> Result<SubmissionCounts, ReviewError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM statement_queue) AS queued,
                    count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
                    count(*) FILTER (WHERE outcome = 'known') AS known,
                    count(*) FILTER (WHERE outcome = 'rejected') AS rejected
             FROM statement_submissions",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SubmissionCounts {
            queued: row.try_get("queued")?,
            accepted: row.try_get("accepted")?,
            known: row.try_get("known")?,
            rejected: row.try_get("rejected")?,
        })
    }

    /// The queued and the rejected statements' numbers (cheap enough for every round: the queue
    /// is short and the rejected ones have their own index).
    pub async fn submission_backlog(&self) -> Result<(i64, i64), ReviewError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM statement_queue) AS queued,
                    (SELECT count(*) FROM statement_submissions WHERE outcome = 'rejected')
                      AS rejected",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("queued")?, row.try_get("rejected")?))
    }

    /// The statements the database rejected, newest first.
    pub async fn rejected_statements(
        &self,
        limit: i64,
    ) -> Result<Vec<RejectedStatement>, ReviewError> {
        let rows = sqlx::query(
            "SELECT x.statement_id, s.puid, s.restriction, s.subject, x.reason, x.at
             FROM statement_submissions x JOIN statements s ON s.id = x.statement_id
             WHERE x.outcome = 'rejected' ORDER BY x.statement_id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RejectedStatement {
                    statement_id: r.try_get("statement_id")?,
                    puid: r.try_get("puid")?,
                    restriction: parsed(r, "restriction")?,
                    subject: r.try_get("subject")?,
                    reason: r
                        .try_get::<Option<serde_json::Value>, _>("reason")?
                        .unwrap_or_default(),
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ReviewError::from)
    }
}
