//! Queueing cases and reading them, with the item versions the pipeline checks.

use std::collections::HashMap;

use cordon_domain::Verdict;
use sqlx::Row;

use crate::{
    case_from_row, decision_from_row, priority, Case, Decision, NewCase, QueueStats, ReviewError,
    ReviewStore, Role, CASE_COLUMNS, DECISION_COLUMNS,
};

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
