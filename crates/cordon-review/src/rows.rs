//! Reading the model types from their rows.

use cordon_domain::Scores;
use sqlx::types::Json;
use sqlx::Row;

use crate::{Case, Decision, DecisionAction};

pub(crate) const CASE_COLUMNS: &str = "id, item_id, item_version, source, category, score, scores, reason, \
     model_version, state, created_at, resolved_at, version, priority, reach, escalated, claimed_by, \
     lease_until, language";

pub(crate) const DECISION_COLUMNS: &str =
    "id, case_id, item_id, item_version, action, moderator, reason, note, decided_at, channel_id, \
     no_requeue";

pub(crate) fn case_from_row(row: &sqlx::postgres::PgRow) -> Result<Case, sqlx::Error> {
    Ok(Case {
        id: row.try_get("id")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get::<i64, _>("item_version")? as u64,
        source: parsed(row, "source")?,
        category: row.try_get("category")?,
        score: row.try_get("score")?,
        scores: row.try_get::<Json<Scores>, _>("scores")?.0,
        reason: row.try_get("reason")?,
        model_version: row.try_get("model_version")?,
        state: parsed(row, "state")?,
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

/// A closed-set column: an unknown value is a decode error, never a default.
pub(crate) fn parsed<T>(row: &sqlx::postgres::PgRow, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = String>,
{
    let name: String = row.try_get(column)?;
    name.parse().map_err(|e: String| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: e.into(),
    })
}
