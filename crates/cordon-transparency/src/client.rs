//! One call to the Transparency Database: `POST <url>/statements` with `{"statements": [...]}`,
//! and what its answer means for each statement of the batch.
//!
//! The database stores a batch whole or not at all. `201` stores every statement. `422` with
//! `errors.statement_<n>` names the statements (by position) its validation refused, and
//! `errors.existing_puids` the PUIDs it already holds; it stored nothing, so the statements
//! neither names are sent again. Any other answer settles nothing.

use std::collections::HashMap;
use std::time::Duration;

use cordon_review::{QueuedStatement, Submitted};
use cordon_secret::Secret;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Why a call settled nothing.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The database could not be reached, or asked to wait (429, 5xx): retried.
    #[error("the Transparency Database is unavailable: {0}")]
    Unavailable(String),
    /// The token was refused (401, 403).
    #[error("the Transparency Database refused the token ({0}): check transparency.token")]
    Unauthorized(StatusCode),
    /// Any other answer (a batch the database cannot read): logged with the body.
    #[error("the Transparency Database refused the batch ({status}): {body}")]
    Refused {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
}

impl Failure {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Unavailable(_) => "unavailable",
            Failure::Unauthorized(_) => "unauthorized",
            Failure::Refused { .. } => "refused",
        }
    }
}

/// A client of the database's API.
#[derive(Debug, Clone)]
pub struct TdbClient {
    http: reqwest::Client,
    endpoint: String,
    token: Secret,
}

/// The most of an unexpected answer's body kept for the log.
const BODY_EXCERPT: usize = 500;

impl TdbClient {
    /// A client of the API at `url` (`/statements` is appended) with the platform's token.
    pub fn new(url: &str, token: Secret, timeout: Duration) -> Result<TdbClient, Failure> {
        // A redirect would turn the POST into a GET of something else: an answer the database
        // did not give.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        Ok(TdbClient {
            http,
            endpoint: format!("{}/statements", url.trim_end_matches('/')),
            token,
        })
    }

    /// Submits a batch; answers what the database said about each statement it settled.
    pub async fn submit(
        &self,
        batch: &[QueuedStatement],
    ) -> Result<Vec<(i64, Submitted)>, Failure> {
        let body = json!({ "statements": batch.iter().map(|s| &s.tdb).collect::<Vec<_>>() });
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Unavailable(e.without_url().to_string()))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            StatusCode::CREATED => {
                let stored = accepted(batch, &answer);
                if stored.is_empty() {
                    // Not the database's answer (a proxy's page, another service): nothing is
                    // settled on it.
                    Err(refused(status, &text))
                } else {
                    Ok(stored)
                }
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                let settled = unprocessable(batch, &answer);
                if settled.is_empty() {
                    Err(refused(status, &text))
                } else {
                    Ok(settled)
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failure::Unauthorized(status)),
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                Err(Failure::Unavailable(format!("status {s}")))
            }
            s => Err(refused(s, &text)),
        }
    }
}

fn refused(status: StatusCode, body: &str) -> Failure {
    Failure::Refused {
        status,
        body: body.chars().take(BODY_EXCERPT).collect(),
    }
}

/// The statements a `201` lists as stored (matched by PUID), with the uuid the database gave
/// each; a statement it does not list is not settled.
fn accepted(batch: &[QueuedStatement], answer: &Value) -> Vec<(i64, Submitted)> {
    let stored: HashMap<&str, Option<&str>> = answer["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["puid"].as_str()?, s["uuid"].as_str())))
        .collect();
    batch
        .iter()
        .filter_map(|s| {
            let uuid = stored.get(s.tdb.puid.as_str())?.map(str::to_string);
            Some((s.id, Submitted::Accepted { uuid }))
        })
        .collect()
}

/// The statements a `422` settles: those whose PUID the database holds (done) and those its
/// validation refused (rejected, with the errors). The others were not stored and stay queued.
fn unprocessable(batch: &[QueuedStatement], answer: &Value) -> Vec<(i64, Submitted)> {
    let errors = &answer["errors"];
    let known: Vec<&str> = errors["existing_puids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    batch
        .iter()
        .enumerate()
        .filter_map(|(n, s)| {
            if known.contains(&s.tdb.puid.as_str()) {
                return Some((s.id, Submitted::Known));
            }
            let reason = errors.get(format!("statement_{n}"))?;
            Some((
                s.id,
                Submitted::Rejected {
                    reason: reason.clone(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<QueuedStatement> {
        let tdb: cordon_statements::TdbStatement = serde_json::from_value(json!({
            "decision_visibility": ["DECISION_VISIBILITY_CONTENT_DEMOTED"],
            "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
            "illegal_content_legal_ground": "law",
            "illegal_content_explanation": "why",
            "content_type": ["CONTENT_TYPE_TEXT"],
            "category": "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
            "territorial_scope": ["DE"],
            "content_date": "2026-11-30",
            "application_date": "2026-11-30",
            "decision_facts": "facts",
            "source_type": "SOURCE_VOLUNTARY",
            "automated_detection": "Yes",
            "automated_decision": "AUTOMATED_DECISION_FULLY",
            "puid": "p",
        }))
        .expect("a statement");
        (0..3)
            .map(|n| {
                let mut tdb = tdb.clone();
                tdb.puid = format!("p{n}");
                QueuedStatement { id: 10 + n, tdb }
            })
            .collect()
    }

    #[test]
    fn only_what_the_answer_lists_as_stored_is_accepted() {
        let answer = json!({"statements": [{"puid": "p1", "uuid": "u-1"}, {"puid": "p2"}]});
        let settled = accepted(&batch(), &answer);
        assert_eq!(
            settled,
            [
                (
                    11,
                    Submitted::Accepted {
                        uuid: Some("u-1".into())
                    }
                ),
                (12, Submitted::Accepted { uuid: None })
            ]
        );
        // A page that is not the database's answer settles nothing.
        assert!(accepted(&batch(), &json!({"ok": true})).is_empty());
    }

    #[test]
    fn a_422_settles_the_refused_and_the_known_and_leaves_the_rest() {
        let answer = json!({"errors": {"statement_2": {"content_language": ["The selected content language is invalid."]}}});
        let settled = unprocessable(&batch(), &answer);
        assert_eq!(settled.len(), 1);
        assert!(
            matches!(&settled[0], (12, Submitted::Rejected { reason }) if reason["content_language"][0].is_string())
        );
        let answer = json!({"message": "The platform identifier(s) are not all unique within this call.",
                            "errors": {"puid": ["..."], "existing_puids": ["p0"]}});
        assert_eq!(
            unprocessable(&batch(), &answer),
            vec![(10, Submitted::Known)]
        );
        // A 422 about the batch itself (its size) names no statement: nothing is settled.
        let answer = json!({"errors": {"statements": ["The statements field must have between 1 and 100 items."]}});
        assert!(unprocessable(&batch(), &answer).is_empty());
    }
}
