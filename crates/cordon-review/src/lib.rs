//! The review queue in PostgreSQL: cases, moderator decisions and the transactional outbox.
//!
//! Invariants:
//! - A case is unique per (item id, item version): inserting the same case twice is a no-op, so the
//!   worker may re-process a message without doubling cases.
//! - A decision, the resolution of its case and the verdict announcing it are written in one
//!   transaction; the verdict waits in the `outbox` table until [`ReviewStore::relay_outbox`] has
//!   had it acknowledged by Kafka. Nothing is lost while Kafka is down.
//! - Decisions are never updated or deleted; a later decision about the same item version
//!   supersedes an earlier one (larger decision id).
//! - Every restriction has a statement of reasons, never edited: a moderator's suppression, a
//!   channel suppression and a report hold get theirs in the transaction that records them, a
//!   model suppression with its batch's cases (once per item version); a restriction lifted
//!   on appeal gets a correcting statement in the transaction of its restore.
//! - An appeal is decided once, by a person other than the one who took the decision appealed.
//! - A strike counts once per restriction a person decided, and only while the restriction
//!   stands; a suspension strikes cause is written with the strike that caused it.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

mod accounts;
mod appeals;
mod cases;
mod decisions;
mod error;
mod model;
mod outbox;
mod queue;
mod reports;
mod rows;
mod statements;
mod strikes;
mod submissions;
#[cfg(feature = "test-support")]
pub mod test_support;
mod transparency;

pub use accounts::{
    Account, AccountChange, NewSession, Session, HASH_WAIT, MAX_LOGIN_ATTEMPTS,
    MAX_SESSIONS_PER_ACCOUNT, MIN_PASSWORD_CHARS,
};

pub use appeals::{
    Appeal, AppealDecision, AppealFiled, AppealNotice, AppealState, AppealsConfig, NewAppeal,
    APPEALS_ACTOR, MAX_APPELLANT_BYTES, MAX_GROUNDS_CHARS, MIN_WINDOW_MONTHS,
};
pub use cases::{SeenItem, VersionCheck};
pub(crate) use decisions::{check_id, check_reason, check_text};
pub use decisions::{MAX_ID_BYTES, MAX_NOTE_CHARS, MAX_REASON_CHARS};
pub use error::ReviewError;
pub use model::{
    Case, CaseSource, CaseState, ChannelDecision, Decision, DecisionAction, DecisionRequest,
    NewCase, OutboxRow, OutboxTopic, QueueStats, Role,
};
pub(crate) use outbox::{enqueue_outcome, enqueue_verdict};
pub use queue::{
    priority, AuditEntry, BulkResult, CaseFilter, CategoryAgreement, Facet, HourCount, QueueCounts,
    QueueReport, BULK_LIMIT, MAX_CLAIMS,
};
pub use reports::{
    NewReport, Report, ReportLane, ReportLimits, ReportNotice, ReportOutcome, ReportStatus,
    MAX_DETAILS_CHARS, MAX_REPORTER_BYTES, MAX_REPORT_PRIORITY, REPORTS_ACTOR,
};
pub(crate) use rows::{case_from_row, decision_from_row, parsed, CASE_COLUMNS, DECISION_COLUMNS};
pub(crate) use statements::DecisionStatement;
pub use statements::{ItemFacts, ModelSuppression, Statement};
pub use strikes::{ChannelStrikes, Strike, StrikesConfig, Suspension, STRIKES_ACTOR};
pub use submissions::{QueuedStatement, RejectedStatement, SubmissionCounts, Submitted};
pub use transparency::{
    days, AppealFigures, ReportFigures, RestrictionCount, StatementFigures, TransparencyReport,
};

/// Handle on the review database.
#[derive(Debug, Clone)]
pub struct ReviewStore {
    pub(crate) pool: PgPool,
    /// The password-hashing threads (each argon2 hash takes ~19 MiB).
    pub(crate) hasher: std::sync::Arc<accounts::Hasher>,
    /// How statements of reasons are drafted.
    pub(crate) statements: std::sync::Arc<cordon_statements::StatementsConfig>,
    /// Who may appeal, for how long, and who decides.
    pub(crate) appeals: std::sync::Arc<AppealsConfig>,
    /// How restrictions weigh on their channels.
    pub(crate) strikes: std::sync::Arc<StrikesConfig>,
}

impl ReviewStore {
    /// Connects and applies pending migrations. `acquire_timeout` bounds how long a request waits
    /// for a connection, so an outage gives a clear error instead of a hang.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<ReviewStore, ReviewError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        // Under PostgreSQL's advisory lock (sqlx's default), so processes starting together
        // migrate once. A migration this build does not know (a newer release ran it) is no
        // error: migrations only add or widen, so a rollback keeps working.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        Ok(ReviewStore {
            pool,
            hasher: std::sync::Arc::new(accounts::Hasher::new(accounts::DEFAULT_CONCURRENT_HASHES)),
            statements: Default::default(),
            appeals: Default::default(),
            strikes: Default::default(),
        })
    }

    /// Hashes passwords on `n` (at least 1) threads; more sign-ins wait (at most
    /// [`HASH_WAIT`], boundedly many) and are then refused with [`ReviewError::RateLimited`].
    pub fn with_concurrent_hashes(mut self, n: usize) -> ReviewStore {
        self.hasher = std::sync::Arc::new(accounts::Hasher::new(n));
        self
    }

    /// A transaction holding the advisory lock `key` until it ends, or `None` while another
    /// transaction holds it: one relay (or submitter) at a time across processes.
    pub(crate) async fn begin_exclusive(
        &self,
        key: i64,
    ) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, ReviewError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), ReviewError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
