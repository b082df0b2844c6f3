//! Appeals (DSA Art. 20): the channel a restriction hit asks, through the platform's backend, for
//! a person to review it.
//!
//! - A restriction is appealed through its statement of reasons, by its channel, within
//!   [`AppealsConfig::window_months`] of being applied; one appeal per statement (a second one
//!   is acknowledged, not filed again). A correcting statement is no restriction to appeal.
//! - An appeal is decided once, by a signed-in person of at least [`AppealsConfig::deciders`]
//!   who did not take the original decision — never by the system (the model, the reports'
//!   hold), which may have taken the original one.
//! - Upholding keeps the restriction. Reversing lifts it in one transaction: a restore decision
//!   (its verdict through the outbox, as any moderator's), the statement correcting the
//!   original (statements are never edited), the appeal's outcome, the audit entry and the
//!   appellant's notice.
//! - The appellant hears back on the outcomes topic (key `appeal-<id>`) when the appeal is filed
//!   and when it is decided, and through [`ReviewStore::appeal_notice`].

use chrono::{DateTime, Months, Utc};
use cordon_domain::Action;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Row, Transaction};

use crate::{
    check_id, check_reason, check_text, parsed, queue, statements, strikes, ChannelDecision,
    DecisionRequest, ReviewError, ReviewStore, Role, Statement,
};

/// The actor of the audit entry a filed appeal writes.
pub const APPEALS_ACTOR: &str = "system:appeals";
/// Longest appeal grounds (the appellant's words), in characters.
pub const MAX_GROUNDS_CHARS: usize = 4000;
/// Longest appellant id, in bytes.
pub const MAX_APPELLANT_BYTES: usize = 128;
/// The shortest appeal window the law allows, in months (DSA Art. 20(1)).
pub const MIN_WINDOW_MONTHS: u32 = 6;

/// Who may appeal, for how long, and who decides (`[appeals]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppealsConfig {
    /// Months after a restriction during which its channel may appeal it (at least 6).
    pub window_months: u32,
    /// The lowest role that decides appeals: `senior` (the seniors' queue) or `admin`, or
    /// `moderator` for any moderator — in every case one who did not take the original decision.
    pub deciders: Role,
}

impl Default for AppealsConfig {
    fn default() -> Self {
        AppealsConfig {
            window_months: MIN_WINDOW_MONTHS,
            deciders: Role::Senior,
        }
    }
}

impl AppealsConfig {
    /// Refuses a window shorter than the law's six months.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_months < MIN_WINDOW_MONTHS {
            return Err(format!(
                "appeals.window_months must be at least {MIN_WINDOW_MONTHS} (DSA Art. 20(1))"
            ));
        }
        Ok(())
    }
}

/// Where an appeal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealState {
    /// Filed, waiting for a person.
    Open,
    /// A person kept the restriction.
    Upheld,
    /// A person lifted the restriction.
    Reversed,
}

impl AppealState {
    /// Every state.
    pub const ALL: [AppealState; 3] = [
        AppealState::Open,
        AppealState::Upheld,
        AppealState::Reversed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppealState::Open => "open",
            AppealState::Upheld => "upheld",
            AppealState::Reversed => "reversed",
        }
    }
}

impl std::str::FromStr for AppealState {
    type Err = String;

    fn from_str(name: &str) -> Result<AppealState, String> {
        AppealState::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| format!("unknown appeal state `{name}`"))
    }
}

impl std::fmt::Display for AppealState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An appeal to file, vouched for by the platform's backend.
#[derive(Debug, Clone)]
pub struct NewAppeal {
    /// The statement of the restriction appealed.
    pub statement_id: i64,
    /// The channel that appeals (the statement's).
    pub channel_id: String,
    /// The platform's id of the person appealing for it.
    pub appellant: String,
    /// The platform key that vouched for the appeal.
    pub key_id: String,
    /// The appellant's words.
    pub grounds: String,
}

/// What filing an appeal did.
#[derive(Debug, Clone, Serialize)]
pub struct AppealFiled {
    /// The appeal.
    pub appeal_id: i64,
    /// Whether the restriction was appealed already (nothing was filed again).
    pub duplicate: bool,
    /// Where the appeal stands.
    pub state: AppealState,
}

/// An appeal, as its deciders see it.
#[derive(Debug, Clone, Serialize)]
pub struct Appeal {
    /// Its id.
    pub id: i64,
    /// The statement of the restriction appealed.
    pub statement_id: i64,
    /// What was restricted (an item id, or `channel:<id>`).
    pub subject: String,
    /// The channel that appeals.
    pub channel_id: String,
    /// The platform's id of the person appealing.
    pub appellant: String,
    /// The platform key that vouched for it.
    pub key_id: String,
    /// The appellant's words.
    pub grounds: String,
    /// Where it stands.
    pub state: AppealState,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// The decision's reason code.
    pub decision_reason: Option<String>,
    /// The decider's note (not sent to the appellant).
    pub decision_note: Option<String>,
    /// The restore decision of a reversal.
    pub decision_id: Option<i64>,
    /// The statement correcting the original, of a reversal.
    pub correction_id: Option<i64>,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
}

/// What the appellant is told (the outcomes topic, `GET /v1/appeals/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct AppealNotice {
    /// The appeal.
    pub appeal_id: i64,
    /// The statement of the restriction appealed.
    pub statement_id: i64,
    /// The channel that appealed.
    pub channel_id: String,
    /// The platform's id of the person who appealed.
    pub appellant: String,
    /// Where it stands.
    pub status: AppealState,
    /// When it was filed.
    pub filed_at: DateTime<Utc>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// The decision's reason code, once decided.
    pub reason: Option<String>,
    /// The statement correcting the original, when reversed.
    pub correction_id: Option<i64>,
    /// What the channel is told about the lifted restriction, when reversed.
    pub correction_text: Option<String>,
}

/// A person's decision on an appeal.
#[derive(Debug, Clone)]
pub struct AppealDecision {
    /// The appeal.
    pub appeal_id: i64,
    /// Lift the restriction (true) or keep it.
    pub reverse: bool,
    /// Who decides.
    pub moderator: String,
    /// Their role.
    pub role: Role,
    /// Policy reason code, sent to the appellant.
    pub reason: String,
    /// A note for the record (not sent).
    pub note: Option<String>,
}

const APPEAL_COLUMNS: &str = "a.id, a.statement_id, a.subject, a.channel_id, a.appellant, \
     a.key_id, a.grounds, a.state, a.decided_by, a.decision_reason, a.decision_note, \
     a.decision_id, a.correction_id, a.created_at, a.decided_at";

/// Whether the appeal's statement states a decision on an escalated case (seniors' only).
const ESCALATED: &str = "EXISTS (SELECT 1 FROM statements s JOIN cases c ON c.id = s.case_id \
     WHERE s.id = a.statement_id AND c.escalated)";

fn appeal_from_row(row: &sqlx::postgres::PgRow) -> Result<Appeal, sqlx::Error> {
    Ok(Appeal {
        id: row.try_get("id")?,
        statement_id: row.try_get("statement_id")?,
        subject: row.try_get("subject")?,
        channel_id: row.try_get("channel_id")?,
        appellant: row.try_get("appellant")?,
        key_id: row.try_get("key_id")?,
        grounds: row.try_get("grounds")?,
        state: parsed(row, "state")?,
        decided_by: row.try_get("decided_by")?,
        decision_reason: row.try_get("decision_reason")?,
        decision_note: row.try_get("decision_note")?,
        decision_id: row.try_get("decision_id")?,
        correction_id: row.try_get("correction_id")?,
        created_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

/// Builds the appellant's notice of `appeal`, with the correction's text if it was reversed.
async fn notice_of(
    conn: &mut sqlx::PgConnection,
    appeal: &Appeal,
) -> Result<AppealNotice, ReviewError> {
    let correction_text = match appeal.correction_id {
        Some(id) => {
            sqlx::query_scalar("SELECT text FROM statements WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await?
        }
        None => None,
    };
    Ok(AppealNotice {
        appeal_id: appeal.id,
        statement_id: appeal.statement_id,
        channel_id: appeal.channel_id.clone(),
        appellant: appeal.appellant.clone(),
        status: appeal.state,
        filed_at: appeal.created_at,
        decided_at: appeal.decided_at,
        reason: appeal.decision_reason.clone(),
        correction_id: appeal.correction_id,
        correction_text,
    })
}

/// Whether the restriction `statement` states still stands: no later decision about its item
/// version (or channel) replaced it.
async fn in_force(
    conn: &mut sqlx::PgConnection,
    statement: &Statement,
) -> Result<bool, ReviewError> {
    Ok(sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM decisions WHERE item_id = $1
                              AND ($2::bigint IS NULL OR item_version = $2)
                              AND id > COALESCE($3, 0))",
    )
    .bind(&statement.subject)
    .bind(statement.item_version.map(|v| v as i64))
    .bind(statement.decision_id)
    .fetch_one(conn)
    .await?)
}

/// Whether `who` took part in the restriction `statement` states: a decision of theirs about
/// its item version (or channel), or for a strike suspension a suppression whose strike was
/// live when it was applied. They may not decide its appeal.
async fn took_part(
    conn: &mut sqlx::PgConnection,
    statement: &Statement,
    who: &str,
) -> Result<bool, ReviewError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM decisions WHERE item_id = $1
                          AND ($2::bigint IS NULL OR item_version = $2) AND moderator = $3)
             OR ($4 AND EXISTS (
                 SELECT 1 FROM strikes k
                 JOIN statements s ON s.id = k.statement_id
                 JOIN decisions d ON d.id = s.decision_id
                 WHERE k.channel_id = $5 AND k.created_at <= $6 AND k.expires_at > $6
                   AND d.moderator = $3))",
    )
    .bind(&statement.subject)
    .bind(statement.item_version.map(|v| v as i64))
    .bind(who)
    .bind(statement.restriction == cordon_statements::Restriction::StrikeSuppression)
    .bind(&statement.channel_id)
    .bind(statement.applied_at)
    .fetch_one(conn)
    .await?)
}

/// The appeal already filed against `statement_id`, acknowledged as a duplicate.
async fn filed_before(
    conn: &mut sqlx::PgConnection,
    statement_id: i64,
) -> Result<Option<AppealFiled>, ReviewError> {
    let row = sqlx::query(&format!(
        "SELECT {APPEAL_COLUMNS} FROM appeals a WHERE a.statement_id = $1"
    ))
    .bind(statement_id)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|row| appeal_from_row(&row))
        .transpose()?
        .map(|appeal| AppealFiled {
            appeal_id: appeal.id,
            duplicate: true,
            state: appeal.state,
        }))
}

/// Queues the appellant's notice of `appeal` for the outcomes topic, in the caller's transaction.
async fn notify(tx: &mut Transaction<'_, Postgres>, appeal: &Appeal) -> Result<(), ReviewError> {
    let notice = notice_of(tx, appeal).await?;
    crate::enqueue_outcome(tx, &format!("appeal-{}", appeal.id), &notice).await
}

impl ReviewStore {
    /// Appeals on these rules (the defaults until set).
    pub fn with_appeals(mut self, config: AppealsConfig) -> ReviewStore {
        self.appeals = std::sync::Arc::new(config);
        self
    }

    /// The lowest role that decides appeals.
    pub fn appeal_deciders(&self) -> Role {
        self.appeals.deciders
    }

    /// Files an appeal (see the module documentation). An unknown statement and one of another
    /// channel are alike not found, so a caller learns nothing about other channels.
    pub async fn file_appeal(&self, a: &NewAppeal) -> Result<AppealFiled, ReviewError> {
        check_id("channel_id", &a.channel_id)?;
        check_id("appellant", &a.appellant)?;
        if a.appellant.len() > MAX_APPELLANT_BYTES {
            return Err(ReviewError::Invalid(format!(
                "appellant is at most {MAX_APPELLANT_BYTES} bytes"
            )));
        }
        if a.grounds.trim().is_empty() {
            return Err(ReviewError::Invalid(
                "grounds are required: why the restriction is wrong".into(),
            ));
        }
        check_text("grounds", Some(&a.grounds), MAX_GROUNDS_CHARS)?;
        let mut tx = self.pool.begin().await?;
        let unknown = || {
            ReviewError::NotFound(format!(
                "statement {} of channel {}",
                a.statement_id, a.channel_id
            ))
        };
        let statement = match statements::statement_in(&mut tx, a.statement_id).await {
            Err(ReviewError::NotFound(_)) => return Err(unknown()),
            found => found?.0,
        };
        if statement.channel_id.as_deref() != Some(a.channel_id.as_str()) {
            return Err(unknown());
        }
        if statement.corrects.is_some() {
            return Err(ReviewError::Conflict(format!(
                "statement {} states a restriction lifted on appeal: there is nothing to appeal",
                a.statement_id
            )));
        }
        let applied_at = statement.applied_at;
        let window = Months::new(self.appeals.window_months);
        let closes = applied_at.checked_add_months(window).unwrap_or(applied_at);
        if let Some(filed) = filed_before(&mut tx, a.statement_id).await? {
            return Ok(filed);
        }
        if Utc::now() > closes {
            return Err(ReviewError::Conflict(format!(
                "the restriction of statement {} could be appealed until {}",
                a.statement_id,
                closes.format("%Y-%m-%d")
            )));
        }
        if !in_force(&mut tx, &statement).await? {
            return Err(ReviewError::Conflict(format!(
                "the restriction of statement {} is no longer in force: a later decision replaced it",
                a.statement_id
            )));
        }
        let subject = statement.subject.clone();
        // Two appeals of one statement racing: the second waits on the unique key, then finds
        // the first (committed by then) and is acknowledged as a duplicate.
        let row = sqlx::query(&format!(
            "INSERT INTO appeals AS a (statement_id, subject, channel_id, appellant, key_id, grounds)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (statement_id) DO NOTHING
             RETURNING {APPEAL_COLUMNS}"
        ))
        .bind(a.statement_id)
        .bind(&subject)
        .bind(&a.channel_id)
        .bind(&a.appellant)
        .bind(&a.key_id)
        .bind(&a.grounds)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return filed_before(&mut tx, a.statement_id).await?.ok_or_else(|| {
                ReviewError::Conflict(format!(
                    "another appeal of statement {} is being filed; try again",
                    a.statement_id
                ))
            });
        };
        let appeal = appeal_from_row(&row)?;
        queue::audit(
            &mut tx,
            APPEALS_ACTOR,
            "appeal:file",
            &subject,
            None,
            None,
            Some(&format!(
                "appeal {} of statement {} by channel {}",
                appeal.id, appeal.statement_id, appeal.channel_id
            )),
        )
        .await?;
        notify(&mut tx, &appeal).await?;
        tx.commit().await?;
        Ok(AppealFiled {
            appeal_id: appeal.id,
            duplicate: false,
            state: appeal.state,
        })
    }

    /// Refuses appeals to a role below the deciders', and an escalated case's below senior.
    fn check_may_see_appeal(&self, role: Role, escalated: bool) -> Result<(), ReviewError> {
        if role < self.appeals.deciders {
            return Err(ReviewError::Forbidden(format!(
                "appeals are for {} and above",
                self.appeals.deciders.as_str()
            )));
        }
        if escalated && !role.is_senior() {
            return Err(ReviewError::Forbidden(
                "this appeal is about a decision on an escalated case".into(),
            ));
        }
        Ok(())
    }

    /// Decides an appeal (see the module documentation) and returns it as decided.
    pub async fn decide_appeal(&self, d: &AppealDecision) -> Result<Appeal, ReviewError> {
        if d.moderator.trim().is_empty() || d.moderator.starts_with("system:") {
            return Err(ReviewError::Forbidden(
                "an appeal is decided by a person".into(),
            ));
        }
        check_reason(&d.reason)?;
        check_text("note", d.note.as_deref(), crate::MAX_NOTE_CHARS)?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS}, {ESCALATED} AS escalated FROM appeals a WHERE a.id = $1
             FOR UPDATE"
        ))
        .bind(d.appeal_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ReviewError::NotFound(format!("appeal {}", d.appeal_id)))?;
        self.check_may_see_appeal(d.role, row.try_get("escalated")?)?;
        let appeal = appeal_from_row(&row)?;
        if appeal.state != AppealState::Open {
            return Err(ReviewError::Conflict(format!(
                "appeal {} is {} already",
                appeal.id, appeal.state
            )));
        }
        let (original, _) = statements::statement_in(&mut tx, appeal.statement_id).await?;
        if took_part(&mut tx, &original, &d.moderator).await? {
            return Err(ReviewError::Forbidden(
                "you took the decision appealed (or one it rests on): another person decides its appeal"
                    .into(),
            ));
        }
        let (state, decision_id, correction_id) = if d.reverse {
            if !in_force(&mut tx, &original).await? {
                return Err(ReviewError::Conflict(format!(
                    "the restriction of statement {} is no longer in force: a later decision \
                     replaced it, and the channel may appeal that one",
                    original.id
                )));
            }
            let decision = match original.restriction {
                r if r.is_channel() => {
                    let channel_id = original.channel_id.clone().ok_or_else(|| {
                        ReviewError::Invalid(format!("statement {} names no channel", original.id))
                    })?;
                    self.decide_channel_in(
                        &mut tx,
                        &ChannelDecision {
                            channel_id,
                            suppress: false,
                            moderator: d.moderator.clone(),
                            role: d.role,
                            reason: d.reason.clone(),
                            note: d.note.clone(),
                            case: None,
                        },
                    )
                    .await?
                }
                _ => {
                    self.decide_in(
                        &mut tx,
                        &DecisionRequest {
                            item_id: original.subject.clone(),
                            item_version: original.item_version.unwrap_or_default(),
                            action: Action::Restore,
                            moderator: d.moderator.clone(),
                            reason: d.reason.clone(),
                            note: d.note.clone(),
                            case_id: None,
                            expected_version: None,
                            role: d.role,
                            no_requeue: false,
                        },
                    )
                    .await?
                }
            };
            strikes::on_appeal(&mut tx, original.decision_id, original.id, appeal.id).await?;
            let correction = self.state_correction(&mut tx, &original, &decision).await?;
            (AppealState::Reversed, Some(decision.id), Some(correction))
        } else {
            (AppealState::Upheld, None, None)
        };
        let row = sqlx::query(&format!(
            "UPDATE appeals AS a SET state = $2, decided_by = $3, decision_reason = $4,
                    decision_note = $5, decision_id = $6, correction_id = $7, decided_at = now()
             WHERE a.id = $1 RETURNING {APPEAL_COLUMNS}"
        ))
        .bind(appeal.id)
        .bind(state.as_str())
        .bind(&d.moderator)
        .bind(&d.reason)
        .bind(&d.note)
        .bind(decision_id)
        .bind(correction_id)
        .fetch_one(&mut *tx)
        .await?;
        let decided = appeal_from_row(&row)?;
        queue::audit(
            &mut tx,
            &d.moderator,
            &format!("appeal:{}", if d.reverse { "reverse" } else { "uphold" }),
            &decided.subject,
            None,
            None,
            Some(&format!(
                "appeal {} of statement {}: {}",
                decided.id, decided.statement_id, d.reason
            )),
        )
        .await?;
        notify(&mut tx, &decided).await?;
        tx.commit().await?;
        Ok(decided)
    }

    /// Whether `who` took part in the restriction `statement` states (and so may not decide
    /// its appeal).
    pub async fn took_part(&self, statement: &Statement, who: &str) -> Result<bool, ReviewError> {
        took_part(&mut *self.pool.acquire().await?, statement, who).await
    }

    /// One appeal, as `role` may see it.
    pub async fn appeal(&self, id: i64, role: Role) -> Result<Appeal, ReviewError> {
        let row = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS}, {ESCALATED} AS escalated FROM appeals a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| ReviewError::NotFound(format!("appeal {id}")))?;
        self.check_may_see_appeal(role, row.try_get("escalated")?)?;
        Ok(appeal_from_row(&row)?)
    }

    /// Up to `limit` appeals in `state` as `role` may see them: open ones oldest first (the
    /// queue), decided ones newest first.
    pub async fn appeals(
        &self,
        state: AppealState,
        role: Role,
        limit: i64,
    ) -> Result<Vec<Appeal>, ReviewError> {
        self.check_may_see_appeal(role, false)?;
        let order = match state {
            AppealState::Open => "a.id",
            _ => "a.decided_at DESC, a.id DESC",
        };
        let rows = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals a WHERE a.state = $1 AND ($2 OR NOT {ESCALATED})
             ORDER BY {order} LIMIT $3"
        ))
        .bind(state.as_str())
        .bind(role.is_senior())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(appeal_from_row).collect::<Result<_, _>>()?)
    }

    /// The appeals of these statements, for the case view (as `role` may see them; none below
    /// the deciders' role).
    pub async fn appeals_of(
        &self,
        statement_ids: &[i64],
        role: Role,
    ) -> Result<Vec<Appeal>, ReviewError> {
        if role < self.appeals.deciders || statement_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals a WHERE a.statement_id = ANY($1)
               AND ($2 OR NOT {ESCALATED}) ORDER BY a.id"
        ))
        .bind(statement_ids)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(appeal_from_row).collect::<Result<_, _>>()?)
    }

    /// What the appellant of appeal `id` is told.
    pub async fn appeal_notice(&self, id: i64) -> Result<AppealNotice, ReviewError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ReviewError::NotFound(format!("appeal {id}")))?;
        notice_of(&mut conn, &appeal_from_row(&row)?).await
    }
}
