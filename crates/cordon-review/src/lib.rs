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

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cordon_domain::{Action, Category, DecidedBy, Scores, Verdict};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;
use sqlx::{PgPool, Row};

mod accounts;
mod queue;
mod reports;

pub use accounts::{
    Account, AccountChange, NewSession, Session, HASH_WAIT, MAX_LOGIN_ATTEMPTS,
    MAX_SESSIONS_PER_ACCOUNT, MIN_PASSWORD_CHARS,
};

pub use queue::{
    priority, AuditEntry, BulkResult, CaseFilter, CategoryAgreement, Facet, HourCount, QueueCounts,
    QueueReport, Role, BULK_LIMIT, MAX_CLAIMS,
};
pub use reports::{
    NewReport, Report, ReportLane, ReportLimits, ReportOutcome, MAX_DETAILS_CHARS,
    MAX_REPORTER_BYTES, MAX_REPORT_PRIORITY, REPORTS_ACTOR,
};

/// Why a review-queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The database failed or could not be reached.
    #[error("review database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("review database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request names something that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is not valid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The case changed since the caller read it, or another moderator holds it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller is not signed in, or the credentials are wrong.
    #[error("not signed in: {0}")]
    Unauthorized(String),
    /// The caller's role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The caller sent too many requests; retry later.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Publishing outbox rows failed; they stay queued.
    #[error("publishing the outbox failed: {0}")]
    Publish(String),
}

impl ReviewError {
    /// Whether the error means the database is unreachable, overloaded or restarting (worth
    /// retrying later), as opposed to a bad request or a fault that retrying cannot mend.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ReviewError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::BeginFailed => true,
                // Connection exceptions, insufficient resources, operator intervention (a
                // restart), serialization failures and deadlocks, a read-only standby during a
                // fail-over, a lock not available.
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    ["08", "53", "57", "40"]
                        .iter()
                        .any(|class| c.starts_with(class))
                        || c == "25006"
                        || c == "55P03"
                }),
                _ => false,
            },
            ReviewError::Publish(_) => true,
            _ => false,
        }
    }

    /// Whether the database refused a value the caller sent (a data exception such as a NUL
    /// character in text, or a violated constraint): a client error that retrying cannot mend.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ReviewError::Database(sqlx::Error::Database(db))
            if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
    }
}

/// A case the worker asks to queue.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// The item's id.
    pub item_id: String,
    /// The item version scored.
    pub item_version: u64,
    /// The category that crossed its review threshold.
    pub category: Category,
    /// That category's score.
    pub score: f32,
    /// All scores.
    pub scores: Scores,
    /// Why it was queued.
    pub reason: String,
    /// The model that scored it.
    pub model_version: String,
    /// How many people the item can reach (the channel's subscribers), if known.
    pub reach: Option<u64>,
    /// The item's language, if the producer gave one.
    pub language: Option<String>,
}

/// A case in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Case id.
    pub id: i64,
    /// The item's id.
    pub item_id: String,
    /// The item version under review.
    pub item_version: u64,
    /// `model` or `report`.
    pub source: String,
    /// The category that brought it here.
    pub category: String,
    /// That category's score.
    pub score: f32,
    /// All scores.
    pub scores: Scores,
    /// Why it was queued.
    pub reason: String,
    /// The model that scored it, if any.
    pub model_version: Option<String>,
    /// open, claimed, escalated or resolved.
    pub state: String,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Optimistic version: every change increments it; a decision naming an older one is refused.
    pub version: i32,
    /// Queue priority (higher first; age is added when ordering).
    pub priority: f32,
    /// The item's reach, if known.
    pub reach: Option<i64>,
    /// Whether it waits for (or was claimed by) a senior moderator.
    pub escalated: bool,
    /// Who holds it, while claimed.
    pub claimed_by: Option<String>,
    /// Until when the claim holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// The item's language, if known.
    pub language: Option<String>,
}

/// What a recorded decision did (the `decisions.action` column; the database refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    /// Hidden from public search.
    Suppress,
    /// Public again.
    Restore,
    /// Hidden until a person decides (a report hold).
    Hold,
    /// Every item of a channel hidden.
    SuppressChannel,
    /// A channel's block lifted.
    RestoreChannel,
}

impl DecisionAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Suppress => "suppress",
            DecisionAction::Restore => "restore",
            DecisionAction::Hold => "hold",
            DecisionAction::SuppressChannel => "suppress_channel",
            DecisionAction::RestoreChannel => "restore_channel",
        }
    }

    /// Parses a stored name; any other is an error, never silently a restore.
    pub fn parse(name: &str) -> Option<DecisionAction> {
        [
            DecisionAction::Suppress,
            DecisionAction::Restore,
            DecisionAction::Hold,
            DecisionAction::SuppressChannel,
            DecisionAction::RestoreChannel,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// The verdict action that announces it.
    pub fn verdict_action(self) -> Action {
        match self {
            DecisionAction::Suppress | DecisionAction::SuppressChannel => Action::Suppress,
            DecisionAction::Hold => Action::Hold,
            DecisionAction::Restore | DecisionAction::RestoreChannel => Action::Restore,
        }
    }
}

impl std::fmt::Display for DecisionAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moderator's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Decision id (later decisions have larger ids).
    pub id: i64,
    /// The case decided, if the decision was made on one.
    pub case_id: Option<i64>,
    /// The item's id.
    pub item_id: String,
    /// The item version decided.
    pub item_version: u64,
    /// What it did.
    pub action: DecisionAction,
    /// Who decided.
    pub moderator: String,
    /// The policy reason code.
    pub reason: String,
    /// The moderator's note.
    pub note: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// The channel, for a decision about a whole channel.
    pub channel_id: Option<String>,
    /// A restore that closes the item version for good: later reports do not queue it again.
    pub no_requeue: bool,
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    /// The item.
    pub item_id: String,
    /// The item version decided about.
    pub item_version: u64,
    /// Suppress or restore.
    pub action: Action,
    /// Who decides.
    pub moderator: String,
    /// Policy reason code.
    pub reason: String,
    /// Optional note.
    pub note: Option<String>,
    /// The case decided on, if any.
    pub case_id: Option<i64>,
    /// The case version the moderator saw; a decision on a case changed since is refused.
    pub expected_version: Option<i32>,
    /// The moderator's role (escalated cases need a senior).
    pub role: Role,
    /// With a restore: do not queue this item version again, whatever reports follow.
    pub no_requeue: bool,
}

/// A decision about a whole channel.
#[derive(Debug, Clone)]
pub struct ChannelDecision {
    /// The channel.
    pub channel_id: String,
    /// Hide every item of it (true) or undo that (false).
    pub suppress: bool,
    /// Who decides.
    pub moderator: String,
    /// Their role.
    pub role: Role,
    /// Policy reason code.
    pub reason: String,
    /// Optional note.
    pub note: Option<String>,
    /// The case it was made on and the case version the moderator saw, if any.
    pub case: Option<(i64, Option<i32>)>,
}

/// A verdict waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Kafka key (the item id).
    pub key: String,
    /// The verdict as JSON.
    pub payload: String,
}

/// Queue figures for metrics.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Cases not yet resolved.
    pub open_cases: i64,
    /// Age of the oldest unresolved case, in seconds.
    pub oldest_open_age_seconds: f64,
    /// Verdicts not yet published.
    pub outbox_pending: i64,
    /// Verdicts set aside because they can never be published.
    pub outbox_refused: i64,
}

/// Handle on the review database.
#[derive(Debug, Clone)]
pub struct ReviewStore {
    pub(crate) pool: PgPool,
    /// The password-hashing threads (each argon2 hash takes ~19 MiB).
    pub(crate) hasher: std::sync::Arc<accounts::Hasher>,
}

pub(crate) const CASE_COLUMNS: &str = "id, item_id, item_version, source, category, score, scores, reason, \
     model_version, state, created_at, resolved_at, version, priority, reach, escalated, claimed_by, \
     lease_until, language";
pub(crate) const DECISION_COLUMNS: &str =
    "id, case_id, item_id, item_version, action, moderator, reason, note, decided_at, channel_id, \
     no_requeue";
const RELAY_LOCK: i64 = 0x636f_7264_6f6e;

/// `(item_id, version)` rows as a map.
fn versions_of(rows: &[sqlx::postgres::PgRow]) -> Result<HashMap<String, u64>, ReviewError> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("item_id")?,
                r.try_get::<i64, _>("version")? as u64,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ReviewError::from)
}

pub(crate) fn case_from_row(row: &sqlx::postgres::PgRow) -> Result<Case, sqlx::Error> {
    Ok(Case {
        id: row.try_get("id")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get::<i64, _>("item_version")? as u64,
        source: row.try_get("source")?,
        category: row.try_get("category")?,
        score: row.try_get("score")?,
        scores: row.try_get::<Json<Scores>, _>("scores")?.0,
        reason: row.try_get("reason")?,
        model_version: row.try_get("model_version")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        resolved_at: row.try_get("resolved_at")?,
        version: row.try_get("version")?,
        priority: row.try_get("priority")?,
        reach: row.try_get("reach")?,
        escalated: row.try_get("escalated")?,
        claimed_by: row.try_get("claimed_by")?,
        lease_until: row.try_get("lease_until")?,
        language: row.try_get("language")?,
    })
}

pub(crate) fn decision_from_row(row: &sqlx::postgres::PgRow) -> Result<Decision, sqlx::Error> {
    Ok(Decision {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get::<i64, _>("item_version")? as u64,
        action: {
            let name: String = row.try_get("action")?;
            DecisionAction::parse(&name).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "action".into(),
                source: format!("unknown decision action `{name}`").into(),
            })?
        },
        moderator: row.try_get("moderator")?,
        reason: row.try_get("reason")?,
        note: row.try_get("note")?,
        decided_at: row.try_get("decided_at")?,
        channel_id: row.try_get("channel_id")?,
        no_requeue: row.try_get("no_requeue")?,
    })
}

impl Decision {
    /// The verdict that announces this decision on the verdicts topic.
    pub fn verdict(&self) -> Verdict {
        let action = self.action.verdict_action();
        Verdict {
            item_id: self.item_id.clone(),
            item_version: self.item_version,
            action,
            decided_by: DecidedBy::Human {
                moderator: self.moderator.clone(),
                decision_id: self.id,
            },
            category: None,
            score: None,
            scores: None,
            fast_scores: None,
            reason: match &self.note {
                Some(note) => format!("{}: {note}", self.reason),
                None => self.reason.clone(),
            },
            channel_id: self.channel_id.clone(),
            explanation: Vec::new(),
            decided_at: self.decided_at,
        }
    }
}

/// Longest policy reason code, in characters.
pub const MAX_REASON_CHARS: usize = 64;
/// Longest moderator note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest item, channel or reporter id, in bytes (as in the content contract).
pub const MAX_ID_BYTES: usize = 512;

/// A reason code: 1 to [`MAX_REASON_CHARS`] lower-case letters, digits and `_ . -`.
pub(crate) fn check_reason(reason: &str) -> Result<(), ReviewError> {
    let ok = (1..=MAX_REASON_CHARS).contains(&reason.len())
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ReviewError::Invalid(format!(
            "reason must be a code of 1 to {MAX_REASON_CHARS} lower-case letters, digits and _ . -"
        )))
    }
}

/// A note: at most [`MAX_NOTE_CHARS`] characters, no control characters but line breaks and tabs.
pub(crate) fn check_note(note: Option<&str>) -> Result<(), ReviewError> {
    check_text("note", note, MAX_NOTE_CHARS)
}

/// Free text of at most `max` characters without control characters other than line breaks
/// and tabs (PostgreSQL refuses NUL, and the rest only deceive).
pub(crate) fn check_text(name: &str, text: Option<&str>, max: usize) -> Result<(), ReviewError> {
    let Some(text) = text else { return Ok(()) };
    if text.chars().count() > max {
        return Err(ReviewError::Invalid(format!(
            "{name} has at most {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ReviewError::Invalid(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(())
}

/// An id (item, channel, reporter): 1 to [`MAX_ID_BYTES`] bytes without whitespace, control or
/// invisible formatting characters — the same rule as the content contract.
pub(crate) fn check_id(name: &str, id: &str) -> Result<(), ReviewError> {
    cordon_domain::check_id(id).map_err(|why| ReviewError::Invalid(format!("{name} {why}")))
}

/// The item a decision is about: a content item id (never a `channel:` key — channels are
/// decided through [`ReviewStore::decide_channel`]) and a version that fits the database.
fn check_item_key(item_id: &str, item_version: u64) -> Result<(), ReviewError> {
    check_id("item_id", item_id)?;
    if item_id.starts_with(Verdict::CHANNEL_KEY_PREFIX) {
        return Err(ReviewError::Invalid(
            "item_id names a channel: use the channel decision instead".into(),
        ));
    }
    if item_version > i64::MAX as u64 {
        return Err(ReviewError::Invalid(
            "item_version must fit in a signed 64-bit integer".into(),
        ));
    }
    Ok(())
}

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
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(ReviewStore {
            pool,
            hasher: std::sync::Arc::new(accounts::Hasher::new(accounts::DEFAULT_CONCURRENT_HASHES)),
        })
    }

    /// Hashes passwords on `n` (at least 1) threads; more sign-ins wait (at most
    /// [`HASH_WAIT`], boundedly many) and are then refused with [`ReviewError::RateLimited`].
    pub fn with_concurrent_hashes(mut self, n: usize) -> ReviewStore {
        self.hasher = std::sync::Arc::new(accounts::Hasher::new(n));
        self
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), ReviewError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Queues cases; a case that exists for the same item version is left alone. Returns how many
    /// were new.
    pub async fn insert_cases(&self, cases: &[NewCase]) -> Result<u64, ReviewError> {
        if cases.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(cases.len());
        let mut versions = Vec::with_capacity(cases.len());
        let mut categories = Vec::with_capacity(cases.len());
        let mut scores = Vec::with_capacity(cases.len());
        let mut all_scores = Vec::with_capacity(cases.len());
        let mut reasons = Vec::with_capacity(cases.len());
        let mut models = Vec::with_capacity(cases.len());
        let mut reaches = Vec::with_capacity(cases.len());
        let mut priorities = Vec::with_capacity(cases.len());
        let mut languages = Vec::with_capacity(cases.len());
        for c in cases {
            languages.push(c.language.clone());
            reaches.push(c.reach.map(|r| r.min(i64::MAX as u64) as i64));
            priorities.push(priority(c.score, c.reach, 0));
            ids.push(c.item_id.clone());
            versions.push(c.item_version as i64);
            categories.push(c.category.as_str().to_string());
            scores.push(c.score);
            all_scores.push(serde_json::to_value(c.scores).unwrap_or_default());
            reasons.push(c.reason.clone());
            models.push(c.model_version.clone());
        }
        let result = sqlx::query(
            "INSERT INTO cases (item_id, item_version, source, category, score, scores, reason, model_version,
                                reach, priority, language)
             SELECT i, v, 'model', c, s, a, r, m, re, p, l
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::real[], $5::jsonb[], $6::text[], $7::text[],
                         $8::bigint[], $9::real[], $10::text[])
                  AS t(i, v, c, s, a, r, m, re, p, l)
             ON CONFLICT (item_id, item_version) DO NOTHING",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&categories)
        .bind(&scores)
        .bind(&all_scores)
        .bind(&reasons)
        .bind(&models)
        .bind(&reaches)
        .bind(&priorities)
        .bind(&languages)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Records the versions of a batch and returns, for each item id, the newest version ever
    /// seen (this batch included). A version below it arrived late and is stale.
    pub async fn newest_versions(
        &self,
        items: &[(String, u64)],
    ) -> Result<HashMap<String, u64>, ReviewError> {
        let mut newest: HashMap<&str, u64> = HashMap::new();
        for (id, version) in items {
            let v = newest.entry(id.as_str()).or_insert(*version);
            *v = (*v).max(*version);
        }
        if newest.is_empty() {
            return Ok(HashMap::new());
        }
        let (ids, versions): (Vec<&str>, Vec<i64>) =
            newest.into_iter().map(|(i, v)| (i, v as i64)).unzip();
        let rows = sqlx::query(
            "INSERT INTO item_versions (item_id, version)
             SELECT * FROM UNNEST($1::text[], $2::bigint[])
             ON CONFLICT (item_id) DO UPDATE
                 SET version = GREATEST(item_versions.version, EXCLUDED.version)
             RETURNING item_id, version",
        )
        .bind(&ids)
        .bind(&versions)
        .fetch_all(&self.pool)
        .await?;
        versions_of(&rows)
    }

    /// The newest version seen of each of these items that has one (read-only: the worker's
    /// fence looks again before it publishes a batch whose snapshot grew old).
    pub async fn current_versions(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, u64>, ReviewError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows =
            sqlx::query("SELECT item_id, version FROM item_versions WHERE item_id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        versions_of(&rows)
    }

    /// The latest human decision for each of these item versions that has one, as verdicts.
    pub async fn human_verdicts(
        &self,
        keys: &[(String, u64)],
    ) -> Result<HashMap<(String, u64), Verdict>, ReviewError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<&str> = keys.iter().map(|(i, _)| i.as_str()).collect();
        let versions: Vec<i64> = keys.iter().map(|(_, v)| *v as i64).collect();
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT ON (d.item_id, d.item_version) {}
             FROM decisions d JOIN UNNEST($1::text[], $2::bigint[]) AS k(i, v)
               ON d.item_id = k.i AND d.item_version = k.v
             ORDER BY d.item_id, d.item_version, d.id DESC",
            DECISION_COLUMNS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(&ids)
        .bind(&versions)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for row in &rows {
            let d = decision_from_row(row)?;
            out.insert((d.item_id.clone(), d.item_version), d.verdict());
        }
        Ok(out)
    }

    /// One case.
    pub async fn case(&self, id: i64) -> Result<Case, ReviewError> {
        let row = sqlx::query(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ReviewError::NotFound(format!("case {id}")))?;
        Ok(case_from_row(&row)?)
    }

    /// Every case and decision about an item, oldest first, as `role` may see them: below
    /// senior, escalated cases and the decisions made on them are left out.
    pub async fn history(
        &self,
        item_id: &str,
        role: Role,
    ) -> Result<(Vec<Case>, Vec<Decision>), ReviewError> {
        let cases = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE item_id = $1 AND ($2 OR NOT escalated)
             ORDER BY id"
        ))
        .bind(item_id)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        let decisions = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions d WHERE item_id = $1
               AND ($2 OR NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND c.escalated))
             ORDER BY id"
        ))
        .bind(item_id)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        Ok((
            cases.iter().map(case_from_row).collect::<Result<_, _>>()?,
            decisions
                .iter()
                .map(decision_from_row)
                .collect::<Result<_, _>>()?,
        ))
    }

    /// The latest decisions about any of these items (channel keys included), newest first, as
    /// `role` may see them (below senior, none made on escalated cases).
    pub async fn decisions_about(
        &self,
        item_ids: &[String],
        limit: i64,
        role: Role,
    ) -> Result<Vec<Decision>, ReviewError> {
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions d WHERE item_id = ANY($1)
               AND ($3 OR NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND c.escalated))
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(item_ids)
        .bind(limit)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(decision_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Records a decision, resolves the item version's open case and queues the verdict in the
    /// outbox, all in one transaction.
    pub async fn decide(&self, req: &DecisionRequest) -> Result<Decision, ReviewError> {
        if !matches!(req.action, Action::Suppress | Action::Restore) {
            return Err(ReviewError::Invalid(
                "a moderator decision is suppress or restore".into(),
            ));
        }
        if req.moderator.trim().is_empty() {
            return Err(ReviewError::Invalid("moderator is required".into()));
        }
        check_reason(&req.reason)?;
        check_note(req.note.as_deref())?;
        check_item_key(&req.item_id, req.item_version)?;
        if req.no_requeue && req.action != Action::Restore {
            return Err(ReviewError::Invalid(
                "\"do not queue this version again\" goes with restore".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        // A decision about a version the worker has not seen yet would be waiting for it, and
        // would overrule the model (and any case) when it comes: refused.
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT version FROM item_versions WHERE item_id = $1")
                .bind(&req.item_id)
                .fetch_optional(&mut *tx)
                .await?;
        if newest.is_some_and(|n| req.item_version as i64 > n) {
            return Err(ReviewError::Invalid(format!(
                "item {} has no version {} yet",
                req.item_id, req.item_version
            )));
        }
        let before = queue::lock_for_decision(
            &mut tx,
            &req.item_id,
            req.item_version,
            req.case_id.map(|id| (id, req.expected_version)),
            &req.moderator,
            req.role,
        )
        .await?;
        let row = sqlx::query(&format!(
            "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason, note,
                                    no_requeue)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {DECISION_COLUMNS}"
        ))
        .bind(req.case_id)
        .bind(&req.item_id)
        .bind(req.item_version as i64)
        .bind(req.action.as_str())
        .bind(&req.moderator)
        .bind(&req.reason)
        .bind(&req.note)
        .bind(req.no_requeue)
        .fetch_one(&mut *tx)
        .await?;
        let decision = decision_from_row(&row)?;
        let resolved = sqlx::query(&format!(
            "UPDATE cases SET state = 'resolved', resolved_at = now(), updated_at = now(),
                    version = version + 1, claimed_by = NULL, lease_until = NULL
             WHERE item_id = $1 AND item_version = $2 AND state <> 'resolved'
             RETURNING {CASE_COLUMNS}"
        ))
        .bind(&req.item_id)
        .bind(req.item_version as i64)
        .fetch_all(&mut *tx)
        .await?;
        let after = resolved.first().map(case_from_row).transpose()?;
        queue::audit(
            &mut tx,
            &req.moderator,
            &format!("decide:{}", req.action.as_str()),
            &req.item_id,
            before.as_ref(),
            after.as_ref(),
            Some(&decision.reason),
        )
        .await?;
        enqueue_verdict(&mut tx, &decision).await?;
        reports::settle(&mut tx, &req.item_id, req.item_version, req.action).await?;
        tx.commit().await?;
        Ok(decision)
    }

    /// Records a decision about a whole channel — suppress hides every item of it from public
    /// search, restore undoes that — resolves the case it was made on, if any, and queues the
    /// channel verdict (key `channel:<id>`) in the outbox, in one transaction.
    pub async fn decide_channel(&self, req: &ChannelDecision) -> Result<Decision, ReviewError> {
        let ChannelDecision {
            channel_id,
            suppress,
            moderator,
            role,
            reason,
            note,
            case,
        } = req;
        let (channel_id, moderator, reason) =
            (channel_id.as_str(), moderator.as_str(), reason.as_str());
        if moderator.trim().is_empty() {
            return Err(ReviewError::Invalid("moderator is required".into()));
        }
        if !role.is_senior() {
            return Err(ReviewError::Forbidden(
                "decisions about a whole channel are for senior moderators; escalate the case"
                    .into(),
            ));
        }
        check_id("channel_id", channel_id)?;
        check_reason(reason)?;
        check_note(note.as_deref())?;
        let key = Verdict::channel_key(channel_id);
        let action = if *suppress {
            "suppress_channel"
        } else {
            "restore_channel"
        };
        let mut tx = self.pool.begin().await?;
        let before = match case {
            Some((id, version)) => {
                let case = queue::lock_case(&mut tx, *id).await?;
                queue::check_may_act(&case, moderator, *role, *version)?;
                if case.state == "resolved" {
                    return Err(ReviewError::Conflict(format!("case {id} is resolved")));
                }
                Some(case)
            }
            None => None,
        };
        let row = sqlx::query(&format!(
            "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason, note, channel_id)
             VALUES ($1, $2, 0, $3, $4, $5, $6, $7) RETURNING {DECISION_COLUMNS}"
        ))
        .bind(before.as_ref().map(|c| c.id))
        .bind(&key)
        .bind(action)
        .bind(moderator)
        .bind(reason)
        .bind(note.as_deref())
        .bind(channel_id)
        .fetch_one(&mut *tx)
        .await?;
        let decision = decision_from_row(&row)?;
        let after = match &before {
            Some(case) => {
                let row = sqlx::query(&format!(
                    "UPDATE cases SET state = 'resolved', resolved_at = now(), updated_at = now(),
                            version = version + 1, claimed_by = NULL, lease_until = NULL
                     WHERE id = $1 RETURNING {CASE_COLUMNS}"
                ))
                .bind(case.id)
                .fetch_one(&mut *tx)
                .await?;
                Some(case_from_row(&row)?)
            }
            None => None,
        };
        queue::audit(
            &mut tx,
            moderator,
            action,
            &key,
            before.as_ref(),
            after.as_ref(),
            Some(reason),
        )
        .await?;
        enqueue_verdict(&mut tx, &decision).await?;
        tx.commit().await?;
        Ok(decision)
    }

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
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT id, key, payload::text AS payload FROM outbox
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

    /// Open cases, the oldest open case's age and the outbox backlog.
    pub async fn stats(&self) -> Result<QueueStats, ReviewError> {
        let row = sqlx::query(
            "SELECT
               (SELECT count(*) FROM cases WHERE state <> 'resolved') AS open_cases,
               (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                  FROM cases WHERE state <> 'resolved') AS oldest,
               (SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL)
                 AS outbox,
               (SELECT count(*) FROM outbox WHERE refused_at IS NOT NULL) AS refused",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            open_cases: row.try_get("open_cases")?,
            oldest_open_age_seconds: row.try_get("oldest")?,
            outbox_pending: row.try_get("outbox")?,
            outbox_refused: row.try_get("refused")?,
        })
    }
}

#[cfg(test)]
mod decision_action_tests {
    use super::*;

    #[test]
    fn every_stored_action_parses_back_and_nothing_else_does() {
        for a in [
            DecisionAction::Suppress,
            DecisionAction::Restore,
            DecisionAction::Hold,
            DecisionAction::SuppressChannel,
            DecisionAction::RestoreChannel,
        ] {
            assert_eq!(DecisionAction::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(
            DecisionAction::parse("restor"),
            None,
            "never silently a restore"
        );
        assert_eq!(
            DecisionAction::SuppressChannel.verdict_action(),
            Action::Suppress
        );
        assert_eq!(
            DecisionAction::RestoreChannel.verdict_action(),
            Action::Restore
        );
    }
}
