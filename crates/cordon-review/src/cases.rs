//! Queueing cases and reading them, with the item versions the pipeline checks.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cordon_domain::{ContentItem, Verdict};
use sqlx::Row;

use crate::{
    case_from_row, decision_from_row, priority, Case, Decision, NewCase, QueueStats, ReviewError,
    ReviewStore, Role, CASE_COLUMNS, DECISION_COLUMNS,
};

/// An item version the pipeline sees: the worker has the item itself, whose facts (channel,
/// kind, publication date, pictures, language) are kept for its statements of reasons; the
/// context role has only the key.
#[derive(Debug, Clone, Copy)]
pub struct SeenItem<'a> {
    /// The item's id.
    pub id: &'a str,
    /// Its version.
    pub version: u64,
    /// The item, when the caller has it.
    pub item: Option<&'a ContentItem>,
}

impl<'a> SeenItem<'a> {
    /// An item the worker decoded.
    pub fn of(item: &'a ContentItem) -> SeenItem<'a> {
        SeenItem {
            id: &item.id,
            version: item.version,
            item: Some(item),
        }
    }
}

/// What [`ReviewStore::check_versions`] found for a batch.
#[derive(Debug, Default)]
pub struct VersionCheck {
    /// The newest version ever seen of each item id.
    pub newest: HashMap<String, u64>,
    /// The latest human decision on an item's newest version, as a verdict, by (id, version).
    pub decided: HashMap<(String, u64), Verdict>,
}

impl VersionCheck {
    /// Whether `version` of `id` is current: no newer version of the item was seen.
    pub fn is_current(&self, id: &str, version: u64) -> bool {
        self.newest.get(id).is_none_or(|v| *v <= version)
    }

    /// The person's decision on this item version, if there is one.
    pub fn decision(&self, id: &str, version: u64) -> Option<&Verdict> {
        self.decided.get(&(id.to_string(), version))
    }
}

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

impl ReviewStore {
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
            all_scores.push(serde_json::to_value(c.scores)?);
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

    /// Records the versions of a batch (with the facts of the items the caller has) and
    /// returns, in one round trip, the newest version ever seen of each item id (this batch
    /// included; a version below it arrived late and is stale) and the latest human decision on
    /// each item's newest version, if a person decided it.
    pub async fn check_versions(
        &self,
        items: &[SeenItem<'_>],
    ) -> Result<VersionCheck, ReviewError> {
        let mut newest: HashMap<&str, SeenItem<'_>> = HashMap::new();
        for seen in items {
            let v = newest.entry(seen.id).or_insert(*seen);
            if seen.version > v.version || (seen.version == v.version && v.item.is_none()) {
                *v = *seen;
            }
        }
        let mut check = VersionCheck::default();
        if newest.is_empty() {
            return Ok(check);
        }
        let n = newest.len();
        let (mut ids, mut versions) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut channels, mut kinds) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut published, mut images, mut languages) = (
            Vec::<Option<DateTime<Utc>>>::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (id, seen) in newest {
            ids.push(id);
            versions.push(seen.version as i64);
            channels.push(seen.item.map(|i| i.channel.id.as_str()));
            kinds.push(seen.item.map(|i| i.kind.as_str()));
            published.push(seen.item.map(|i| i.published_at));
            images.push(seen.item.map(ContentItem::has_images));
            languages.push(seen.item.and_then(|i| i.lang.as_deref()));
        }
        // The facts follow the newest version that brought them (the context role brings none).
        let rows = sqlx::query(&format!(
            "WITH seen AS (
                 INSERT INTO item_versions AS iv
                        (item_id, version, channel_id, kind, published_at, has_images, language)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[],
                                      $5::timestamptz[], $6::boolean[], $7::text[])
                 ON CONFLICT (item_id) DO UPDATE SET
                     version = GREATEST(iv.version, EXCLUDED.version),
                     channel_id = CASE WHEN EXCLUDED.kind IS NOT NULL AND EXCLUDED.version >= iv.version
                                       THEN EXCLUDED.channel_id ELSE iv.channel_id END,
                     kind = CASE WHEN EXCLUDED.kind IS NOT NULL AND EXCLUDED.version >= iv.version
                                 THEN EXCLUDED.kind ELSE iv.kind END,
                     published_at = CASE WHEN EXCLUDED.kind IS NOT NULL AND EXCLUDED.version >= iv.version
                                         THEN EXCLUDED.published_at ELSE iv.published_at END,
                     has_images = CASE WHEN EXCLUDED.kind IS NOT NULL AND EXCLUDED.version >= iv.version
                                       THEN EXCLUDED.has_images ELSE iv.has_images END,
                     language = CASE WHEN EXCLUDED.kind IS NOT NULL AND EXCLUDED.version >= iv.version
                                     THEN EXCLUDED.language ELSE iv.language END
                 RETURNING item_id, version)
             SELECT seen.item_id AS seen_item, seen.version AS seen_version, d.*
             FROM seen LEFT JOIN LATERAL (
                 SELECT {DECISION_COLUMNS} FROM decisions
                 WHERE decisions.item_id = seen.item_id AND decisions.item_version = seen.version
                 ORDER BY decisions.id DESC LIMIT 1) d ON true"
        ))
        .bind(ids)
        .bind(versions)
        .bind(channels)
        .bind(kinds)
        .bind(published)
        .bind(images)
        .bind(languages)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let id: String = row.try_get("seen_item")?;
            let version = row.try_get::<i64, _>("seen_version")? as u64;
            if row.try_get::<Option<i64>, _>("id")?.is_some() {
                let decision = decision_from_row(row)?;
                check
                    .decided
                    .insert((id.clone(), version), decision.verdict());
            }
            check.newest.insert(id, version);
        }
        Ok(check)
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

    /// Open cases, the oldest open case's age and the outbox backlog.
    pub async fn stats(&self) -> Result<QueueStats, ReviewError> {
        let row = sqlx::query(
            "SELECT
               (SELECT count(*) FROM cases WHERE state <> 'resolved') AS open_cases,
               (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                  FROM cases WHERE state <> 'resolved') AS oldest,
               (SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL)
                 AS outbox,
               (SELECT count(*) FROM outbox WHERE refused_at IS NOT NULL) AS refused,
               (SELECT count(*) FROM appeals WHERE state = 'open') AS appeals,
               (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                  FROM appeals WHERE state = 'open') AS oldest_appeal,
               (SELECT count(*) FROM suspensions
                  WHERE lifted_at IS NULL AND until < now() - interval '1 minute') AS overdue",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            open_cases: row.try_get("open_cases")?,
            oldest_open_age_seconds: row.try_get("oldest")?,
            outbox_pending: row.try_get("outbox")?,
            outbox_refused: row.try_get("refused")?,
            open_appeals: row.try_get("appeals")?,
            oldest_open_appeal_age_seconds: row.try_get("oldest_appeal")?,
            overdue_suspensions: row.try_get("overdue")?,
        })
    }
}
