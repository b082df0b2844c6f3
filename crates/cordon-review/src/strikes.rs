//! Strikes and the channel suspensions they cause.
//!
//! - Every suppression of an item a person decided adds a strike to the item's channel, of its
//!   category's weight ([`StrikesConfig::weights`]), expiring after
//!   [`StrikesConfig::expire_days`]; once per statement of reasons. A person restoring the item
//!   version (on appeal or otherwise) removes the strike; it stays in the history.
//! - When a new strike brings the channel's live weight to [`StrikesConfig::suspend_at`], the
//!   channel is suspended — every item hidden from public search — for
//!   [`StrikesConfig::suspension_secs`]; at [`StrikesConfig::ban_at`] (replacing a suspension
//!   for a time in force), or at `suspend_at` again after an earlier suspension ended within the
//!   window, for good. A channel otherwise suppressed is left as it is; an item version earns
//!   one live strike however often it is suppressed. Each suspension is a channel decision by `system:strikes` with its verdict
//!   through the outbox and its own statement of reasons (fully automated, with its end date),
//!   which the channel may appeal, all in the transaction of the strike.
//! - [`ReviewStore::lift_ended_suspensions`] restores a channel when its suspension ends, unless
//!   a later decision about the channel was taken meanwhile (which then stands); a person
//!   restoring the channel lifts its suspension too, and so does a restore that brings the live
//!   strikes below `suspend_at` (`withdrawn`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cordon_domain::{Category, Verdict};
use cordon_statements::Restriction;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use tracing::info;

use crate::{
    decision_from_row, enqueue_verdict, queue, Decision, DecisionStatement, ReviewError,
    ReviewStore, DECISION_COLUMNS,
};

/// The actor of the decisions and audit entries strikes cause.
pub const STRIKES_ACTOR: &str = "system:strikes";

/// How restrictions weigh on their channels (`[strikes]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrikesConfig {
    /// Whether restrictions add strikes and strikes suspend channels.
    pub enabled: bool,
    /// Each category's strike weight (a category not named weighs 1).
    pub weights: BTreeMap<Category, f32>,
    /// Days a strike counts.
    pub expire_days: u32,
    /// Live strike weight that suspends the channel for `suspension_secs`.
    pub suspend_at: f32,
    /// How long a suspension lasts, in seconds.
    pub suspension_secs: u64,
    /// Live strike weight that suspends the channel for good (also `suspend_at` reached again
    /// after an earlier suspension ended within `expire_days`).
    pub ban_at: f32,
}

impl Default for StrikesConfig {
    fn default() -> Self {
        StrikesConfig {
            enabled: true,
            weights: BTreeMap::new(),
            expire_days: 90,
            suspend_at: 3.0,
            suspension_secs: 7 * 86_400,
            ban_at: 6.0,
        }
    }
}

impl StrikesConfig {
    /// A category's weight.
    pub fn weight(&self, category: Category) -> f32 {
        self.weights.get(&category).copied().unwrap_or(1.0)
    }

    /// Refuses weights and thresholds that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if let Some((c, w)) = self
            .weights
            .iter()
            .find(|(_, w)| !w.is_finite() || **w < 0.0)
        {
            return Err(format!(
                "strikes.weights.{} must be a number of at least 0, not {w}",
                c.as_str()
            ));
        }
        if !(self.suspend_at.is_finite() && self.suspend_at > 0.0) {
            return Err("strikes.suspend_at must be above 0".into());
        }
        if !(self.ban_at.is_finite() && self.ban_at >= self.suspend_at) {
            return Err("strikes.ban_at must be at least strikes.suspend_at".into());
        }
        if self.expire_days == 0 || self.suspension_secs == 0 {
            return Err("strikes.expire_days and strikes.suspension_secs must be above 0".into());
        }
        Ok(())
    }
}

/// A strike against a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Strike {
    /// Its id.
    pub id: i64,
    /// The channel.
    pub channel_id: String,
    /// The statement of the restriction that earned it.
    pub statement_id: i64,
    /// The item restricted.
    pub subject: String,
    /// The restriction's category.
    pub category: String,
    /// Its weight.
    pub weight: f32,
    /// When it was given.
    pub created_at: DateTime<Utc>,
    /// When it stops counting.
    pub expires_at: DateTime<Utc>,
    /// When a person's restore removed it.
    pub removed_at: Option<DateTime<Utc>>,
    /// Who restored.
    pub removed_by: Option<String>,
    /// The appeal that restored, if one did.
    pub appeal_id: Option<i64>,
}

impl Strike {
    /// Whether it counts now.
    pub fn live(&self) -> bool {
        self.removed_at.is_none() && self.expires_at > Utc::now()
    }
}

/// A suspension strikes caused.
#[derive(Debug, Clone, Serialize)]
pub struct Suspension {
    /// Its id.
    pub id: i64,
    /// The channel.
    pub channel_id: String,
    /// The channel decision that suspended it.
    pub decision_id: i64,
    /// When it ends (none: for good).
    pub until: Option<DateTime<Utc>>,
    /// The live strike weight that caused it.
    pub strikes: f32,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it was lifted.
    pub lifted_at: Option<DateTime<Utc>>,
    /// Who lifted it (`system:strikes` at its end, or the person who restored the channel).
    pub lifted_by: Option<String>,
    /// Why: `ended`, `restored` (a person restored the channel), `appeal`, `withdrawn` (the
    /// strikes it rested on were withdrawn), `replaced` (by a suspension for good).
    pub lifted_reason: Option<String>,
}

/// A channel's strikes and suspensions, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStrikes {
    /// The live strike weight.
    pub live_weight: f32,
    /// The weight that suspends.
    pub suspend_at: f32,
    /// The weight that suspends for good.
    pub ban_at: f32,
    /// The newest strikes (at most 50), live or not.
    pub strikes: Vec<Strike>,
    /// The newest suspensions (at most 20).
    pub suspensions: Vec<Suspension>,
}

const STRIKE_COLUMNS: &str =
    "id, channel_id, statement_id, subject, category, weight, created_at, \
     expires_at, removed_at, removed_by, appeal_id";
const SUSPENSION_COLUMNS: &str =
    "id, channel_id, decision_id, until, strikes, created_at, lifted_at, lifted_by, lifted_reason";

fn strike_from_row(row: &sqlx::postgres::PgRow) -> Result<Strike, sqlx::Error> {
    Ok(Strike {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        statement_id: row.try_get("statement_id")?,
        subject: row.try_get("subject")?,
        category: row.try_get("category")?,
        weight: row.try_get("weight")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        removed_at: row.try_get("removed_at")?,
        removed_by: row.try_get("removed_by")?,
        appeal_id: row.try_get("appeal_id")?,
    })
}

fn suspension_from_row(row: &sqlx::postgres::PgRow) -> Result<Suspension, sqlx::Error> {
    Ok(Suspension {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        decision_id: row.try_get("decision_id")?,
        until: row.try_get("until")?,
        strikes: row.try_get("strikes")?,
        created_at: row.try_get("created_at")?,
        lifted_at: row.try_get("lifted_at")?,
        lifted_by: row.try_get("lifted_by")?,
        lifted_reason: row.try_get("lifted_reason")?,
    })
}

/// Takes the channel's strikes lock until the transaction ends: one channel's strikes are
/// weighed, and its suspensions lifted, one at a time.
pub(crate) async fn lock_channel(
    tx: &mut Transaction<'_, Postgres>,
    channel_id: &str,
) -> Result<(), ReviewError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('strikes:' || $1))")
        .bind(channel_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The channel's live strike weight.
async fn live_weight(conn: &mut PgConnection, channel_id: &str) -> Result<f32, ReviewError> {
    let live: f64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(weight), 0)::float8 FROM strikes
         WHERE channel_id = $1 AND removed_at IS NULL AND expires_at > now()",
    )
    .bind(channel_id)
    .fetch_one(conn)
    .await?;
    Ok(live as f32)
}

/// Records a channel decision by `system:strikes`, audits it and queues its verdict.
async fn system_channel_decision(
    tx: &mut Transaction<'_, Postgres>,
    channel_id: &str,
    action: &str,
    reason: &str,
    note: &str,
) -> Result<Decision, ReviewError> {
    let key = Verdict::channel_key(channel_id);
    let row = sqlx::query(&format!(
        "INSERT INTO decisions (item_id, item_version, action, moderator, reason, note, channel_id)
         VALUES ($1, 0, $2, $3, $4, $5, $6) RETURNING {DECISION_COLUMNS}"
    ))
    .bind(&key)
    .bind(action)
    .bind(STRIKES_ACTOR)
    .bind(reason)
    .bind(note)
    .bind(channel_id)
    .fetch_one(&mut **tx)
    .await?;
    let decision = decision_from_row(&row)?;
    queue::audit(
        tx,
        STRIKES_ACTOR,
        &format!("strikes:{action}"),
        &key,
        None,
        None,
        Some(note),
    )
    .await?;
    enqueue_verdict(tx, &decision).await?;
    Ok(decision)
}

/// Marks a suspension lifted by `who` for `reason`.
async fn mark_lifted(
    tx: &mut Transaction<'_, Postgres>,
    suspension_id: i64,
    who: &str,
    reason: &str,
) -> Result<Suspension, ReviewError> {
    let row = sqlx::query(&format!(
        "UPDATE suspensions SET lifted_at = now(), lifted_by = $2, lifted_reason = $3
         WHERE id = $1 RETURNING {SUSPENSION_COLUMNS}"
    ))
    .bind(suspension_id)
    .bind(who)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await?;
    Ok(suspension_from_row(&row)?)
}

/// The channel's suspension in force, if its decision is still the newest about the channel.
async fn suspension_in_force(
    tx: &mut Transaction<'_, Postgres>,
    channel_id: &str,
) -> Result<Option<Suspension>, ReviewError> {
    let row = sqlx::query(&format!(
        "SELECT {SUSPENSION_COLUMNS} FROM suspensions s
         WHERE channel_id = $1 AND lifted_at IS NULL
           AND decision_id = (SELECT max(id) FROM decisions WHERE item_id = $2)
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(channel_id)
    .bind(Verdict::channel_key(channel_id))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.as_ref().map(suspension_from_row).transpose()?)
}

/// Marks the channel's open suspensions lifted: a person (`who`) restored the channel.
pub(crate) async fn restored(
    tx: &mut Transaction<'_, Postgres>,
    channel_id: &str,
    who: &str,
) -> Result<(), ReviewError> {
    sqlx::query(
        "UPDATE suspensions SET lifted_at = now(), lifted_by = $2, lifted_reason = 'restored'
         WHERE channel_id = $1 AND lifted_at IS NULL",
    )
    .bind(channel_id)
    .bind(who)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Names the appeal as why the suspension of decision `decision_id` was lifted, and the
/// strike of `statement_id` removed (each only if this transaction did it).
pub(crate) async fn on_appeal(
    tx: &mut Transaction<'_, Postgres>,
    decision_id: Option<i64>,
    statement_id: i64,
    appeal_id: i64,
) -> Result<(), ReviewError> {
    sqlx::query(
        "UPDATE suspensions SET lifted_reason = 'appeal'
         WHERE decision_id = $1 AND lifted_at = now()",
    )
    .bind(decision_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE strikes SET appeal_id = $2 WHERE statement_id = $1 AND removed_at = now()")
        .bind(statement_id)
        .bind(appeal_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl ReviewStore {
    /// Strikes on these rules (the defaults until set).
    pub fn with_strikes(mut self, config: StrikesConfig) -> ReviewStore {
        self.strikes = std::sync::Arc::new(config);
        self
    }

    /// Removes the live strikes of an item version's restrictions after `moderator` restored
    /// it; a suspension in force that the remaining live strikes no longer reach is lifted
    /// (`withdrawn`), in the caller's transaction.
    pub(crate) async fn withdraw(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        item_id: &str,
        item_version: u64,
        moderator: &str,
    ) -> Result<(), ReviewError> {
        let channels: Vec<String> = sqlx::query_scalar(
            "UPDATE strikes SET removed_at = now(), removed_by = $3
             WHERE subject = $1 AND removed_at IS NULL
               AND statement_id IN (SELECT id FROM statements WHERE subject = $1 AND item_version = $2)
             RETURNING channel_id",
        )
        .bind(item_id)
        .bind(item_version as i64)
        .bind(moderator)
        .fetch_all(&mut **tx)
        .await?;
        let Some(channel_id) = channels.first() else {
            return Ok(());
        };
        lock_channel(tx, channel_id).await?;
        if live_weight(tx, channel_id).await? >= self.strikes.suspend_at {
            return Ok(());
        }
        if let Some(suspension) = suspension_in_force(tx, channel_id).await? {
            system_channel_decision(
                tx,
                channel_id,
                "restore_channel",
                "strikes_withdrawn",
                &format!(
                    "{moderator} restored {item_id}: its channel's live strikes no longer reach {:.1}",
                    self.strikes.suspend_at
                ),
            )
            .await?;
            mark_lifted(tx, suspension.id, STRIKES_ACTOR, "withdrawn").await?;
        }
        Ok(())
    }

    /// Adds the strike a person's restriction with statement `statement_id` earns its channel,
    /// and suspends the channel if that reaches a threshold (see the module documentation), in
    /// the caller's transaction.
    pub(crate) async fn strike(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        statement_id: i64,
    ) -> Result<(), ReviewError> {
        let rules = &self.strikes;
        if !rules.enabled {
            return Ok(());
        }
        let stated =
            sqlx::query("SELECT channel_id, subject, category FROM statements WHERE id = $1")
                .bind(statement_id)
                .fetch_one(&mut **tx)
                .await?;
        // An item Cordon never saw names no channel: nothing to strike.
        let Some(channel_id) = stated.try_get::<Option<String>, _>("channel_id")? else {
            return Ok(());
        };
        let subject: String = stated.try_get("subject")?;
        let category: String = stated.try_get("category")?;
        let category = Category::parse(&category).unwrap_or(Category::OtherIllegal);
        lock_channel(tx, &channel_id).await?;
        // One live strike per item version, however often people suppress it again.
        let struck: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM strikes k JOIN statements s ON s.id = k.statement_id
                            WHERE k.subject = $1 AND k.removed_at IS NULL
                              AND s.item_version = (SELECT item_version FROM statements WHERE id = $2))",
        )
        .bind(&subject)
        .bind(statement_id)
        .fetch_one(&mut **tx)
        .await?;
        if struck {
            return Ok(());
        }
        let added = sqlx::query(
            "INSERT INTO strikes (channel_id, statement_id, subject, category, weight, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))
             ON CONFLICT (statement_id) DO NOTHING",
        )
        .bind(&channel_id)
        .bind(statement_id)
        .bind(&subject)
        .bind(category.as_str())
        .bind(rules.weight(category))
        .bind(rules.expire_days as i32)
        .execute(&mut **tx)
        .await?;
        if added.rows_affected() == 0 {
            return Ok(());
        }
        let live = live_weight(tx, &channel_id).await?;
        queue::audit(
            tx,
            STRIKES_ACTOR,
            "strike",
            &subject,
            None,
            None,
            Some(&format!(
                "strike of {:.1} ({}) against channel {channel_id}: live weight {live:.1}",
                rules.weight(category),
                category.as_str()
            )),
        )
        .await?;
        if live < rules.suspend_at {
            return Ok(());
        }
        let key = Verdict::channel_key(&channel_id);
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT action FROM decisions WHERE item_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
        // A suppressed channel stays as it is, unless strikes suspended it for a time and now
        // reach the ban: a suspension for good replaces that one.
        let replaced = match latest.as_deref() {
            Some("suppress_channel") => match suspension_in_force(tx, &channel_id).await? {
                Some(s) if s.until.is_some() && live >= rules.ban_at => Some(s),
                _ => return Ok(()),
            },
            _ => None,
        };
        // Earlier suspensions that ended count; ones a person, an appeal or withdrawn strikes
        // lifted do not (nor one a ban replaced: the ban counted instead, and it was lifted).
        let suspended_before: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM suspensions WHERE channel_id = $1
                              AND created_at > now() - make_interval(days => $2)
                              AND (lifted_reason IS NULL OR lifted_reason = 'ended'))",
        )
        .bind(&channel_id)
        .bind(rules.expire_days as i32)
        .fetch_one(&mut **tx)
        .await?;
        let for_good = live >= rules.ban_at || suspended_before;
        let note = format!(
            "strike weight {live:.1} within {} days reached {:.1}{}",
            rules.expire_days,
            if for_good && live >= rules.ban_at {
                rules.ban_at
            } else {
                rules.suspend_at
            },
            if for_good { ": suspended for good" } else { "" },
        );
        let decision =
            system_channel_decision(tx, &channel_id, "suppress_channel", "strikes", &note).await?;
        let until = (!for_good)
            .then(|| decision.decided_at + chrono::Duration::seconds(rules.suspension_secs as i64));
        self.state_decision(
            tx,
            DecisionStatement {
                decision: &decision,
                restriction: Restriction::StrikeSuppression,
                case: None,
                until,
                category: Some(category),
            },
        )
        .await?;
        sqlx::query(
            "INSERT INTO suspensions (channel_id, decision_id, until, strikes) VALUES ($1, $2, $3, $4)",
        )
        .bind(&channel_id)
        .bind(decision.id)
        .bind(until)
        .bind(live)
        .execute(&mut **tx)
        .await?;
        if let Some(earlier) = replaced {
            mark_lifted(tx, earlier.id, STRIKES_ACTOR, "replaced").await?;
        }
        info!(channel_id = %channel_id, strikes = live, until = ?until, "channel suspended by strikes");
        Ok(())
    }

    /// Restores the channels whose suspension has ended (at most 100 per call, each in its own
    /// transaction), unless a later decision about the channel stands; returns the suspensions
    /// lifted.
    pub async fn lift_ended_suspensions(&self) -> Result<Vec<Suspension>, ReviewError> {
        let due: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, channel_id FROM suspensions
             WHERE lifted_at IS NULL AND until <= now() ORDER BY until LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut done = Vec::with_capacity(due.len());
        for (id, channel_id) in due {
            let mut tx = self.pool.begin().await?;
            // The channel first, as every decision takes it: not while a strike is weighed or a
            // person decides about the channel; another process may have lifted it meanwhile.
            lock_channel(&mut tx, &channel_id).await?;
            let Some(row) = sqlx::query(&format!(
                "SELECT {SUSPENSION_COLUMNS} FROM suspensions WHERE id = $1 AND lifted_at IS NULL"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let s = suspension_from_row(&row)?;
            let overtaken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM decisions WHERE item_id = $1 AND id > $2)",
            )
            .bind(Verdict::channel_key(&s.channel_id))
            .bind(s.decision_id)
            .fetch_one(&mut *tx)
            .await?;
            if !overtaken {
                system_channel_decision(
                    &mut tx,
                    &s.channel_id,
                    "restore_channel",
                    "suspension_ended",
                    &format!("the suspension of decision {} ended", s.decision_id),
                )
                .await?;
            }
            done.push(mark_lifted(&mut tx, s.id, STRIKES_ACTOR, "ended").await?);
            tx.commit().await?;
        }
        Ok(done)
    }

    /// A channel's strikes and suspensions.
    pub async fn channel_strikes(&self, channel_id: &str) -> Result<ChannelStrikes, ReviewError> {
        let strikes = sqlx::query(&format!(
            "SELECT {STRIKE_COLUMNS} FROM strikes WHERE channel_id = $1 ORDER BY id DESC LIMIT 50"
        ))
        .bind(channel_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(strike_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let live_weight = live_weight(&mut *self.pool.acquire().await?, channel_id).await?;
        let suspensions = sqlx::query(&format!(
            "SELECT {SUSPENSION_COLUMNS} FROM suspensions WHERE channel_id = $1
             ORDER BY id DESC LIMIT 20"
        ))
        .bind(channel_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(suspension_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(ChannelStrikes {
            live_weight,
            suspend_at: self.strikes.suspend_at,
            ban_at: self.strikes.ban_at,
            strikes,
            suspensions,
        })
    }
}
