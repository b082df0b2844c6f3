//! `TransparencyDatabaseDouble`: a **test double of an external service**, the EU DSA
//! Transparency Database, for the tests only. It is written here from the database's public API
//! documentation and its open-source request validation (`StatementStoreRequest`,
//! `StatementMultipleAPIController`), not from Cordon's own checks, so that a statement Cordon
//! drafts wrongly is refused here as the real database would refuse it:
//!
//! - `POST /api/v1/statements` with `Authorization: Bearer <token>` (else 401);
//! - `{"statements": [...]}` with 1 to 100 statements (else 422 naming `statements`);
//! - each statement's required fields, allowed values, lengths, date formats and ranges, the
//!   PUID's pattern, and `content_language` among the languages the database knows; every
//!   refused statement is named `statement_<n>` in a 422 and nothing of the batch is stored;
//! - PUIDs unique within the call and the platform (else 422 with `existing_puids`, nothing
//!   stored);
//! - 201 with each statement and its `uuid`.
//!
//! A test can make the next calls fail with 500 (`fail_next`), take a language off the list the
//! database knows (`drop_language`: the database's own lists change), and read every call it
//! received.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

/// One call the double received.
#[derive(Debug, Clone, PartialEq)]
pub struct TdbCall {
    /// How many statements it carried.
    pub statements: usize,
    /// The status it got.
    pub status: u16,
}

#[derive(Default)]
struct Held {
    token: String,
    /// Stored statements by PUID.
    stored: HashMap<String, Value>,
    calls: Vec<TdbCall>,
    /// PUIDs sent again after the double had stored them.
    resent: Vec<String>,
    fail_next: u32,
    /// Languages taken off the list.
    dropped: Vec<String>,
}

/// The running double.
pub struct TransparencyDatabaseDouble {
    /// The API base to configure (`transparency.url`).
    pub url: String,
    held: Arc<Mutex<Held>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TransparencyDatabaseDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TransparencyDatabaseDouble {
    /// Starts the double on a free local port, accepting `token`.
    pub async fn start(token: &str) -> Result<TransparencyDatabaseDouble> {
        let held = Arc::new(Mutex::new(Held {
            token: token.to_string(),
            ..Held::default()
        }));
        let app = axum::Router::new()
            .route("/api/v1/statements", post(statements))
            .with_state(Arc::clone(&held));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/api/v1", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TransparencyDatabaseDouble { url, held, server })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers the next `n` calls with 500 (storing nothing).
    pub fn fail_next(&self, n: u32) {
        self.held().fail_next = n;
    }

    /// Refuses `language` (upper-case ISO 639-1) from now on, as if the database no longer
    /// listed it.
    pub fn drop_language(&self, language: &str) {
        self.held().dropped.push(language.to_string());
    }

    /// The PUIDs stored.
    pub fn stored(&self) -> HashSet<String> {
        self.held().stored.keys().cloned().collect()
    }

    /// A stored statement.
    pub fn statement(&self, puid: &str) -> Option<Value> {
        self.held().stored.get(puid).cloned()
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<TdbCall> {
        self.held().calls.clone()
    }

    /// PUIDs that were sent again after they were stored.
    pub fn resent(&self) -> Vec<String> {
        self.held().resent.clone()
    }
}

const VISIBILITY: &[&str] = &[
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
];
const GROUNDS: &[&str] = &[
    "DECISION_GROUND_ILLEGAL_CONTENT",
    "DECISION_GROUND_INCOMPATIBLE_CONTENT",
];
const CONTENT_TYPES: &[&str] = &[
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
];
const CATEGORIES: &[&str] = &[
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
];
const COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];
/// The languages the database knows (ISO 639-1, upper case): the EU's and others it lists.
const LANGUAGES: &[&str] = &[
    "BG", "CS", "DA", "DE", "EL", "EN", "ES", "ET", "FI", "FR", "GA", "HR", "HU", "IT", "LT", "LV",
    "MT", "NL", "PL", "PT", "RO", "SK", "SL", "SV", "AR", "HE", "HI", "IS", "JA", "KO", "NO", "RU",
    "SQ", "SR", "TR", "UK", "ZH", "BS", "MK", "CA", "EU", "GL", "LB",
];
const SOURCES: &[&str] = &[
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
];
const AUTOMATED: &[&str] = &[
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
];
const KEYWORDS: &[&str] = &[
    "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
    "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_DATA_FALSIFICATION",
    "KEYWORD_PHISHING",
    "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
    "KEYWORD_INAUTHENTIC_LISTINGS",
    "KEYWORD_HUMAN_TRAFFICKING",
    "KEYWORD_OTHER",
];

/// The database's rules for one statement: the errors by field, empty when it is valid.
fn errors_of(s: &Value, dropped: &[String]) -> serde_json::Map<String, Value> {
    let mut errors = serde_json::Map::new();
    let mut refuse = |field: &str, message: &str| {
        errors.insert(field.to_string(), json!([message]));
    };
    let text = |field: &str| s.get(field).and_then(Value::as_str);
    let one_of = |field: &str, allowed: &[&str]| text(field).is_some_and(|v| allowed.contains(&v));
    let all_of = |field: &str, allowed: &[&str], required: bool| match s.get(field) {
        None | Some(Value::Null) => !required,
        Some(Value::Array(values)) => {
            !(required && values.is_empty())
                && values
                    .iter()
                    .all(|v| v.as_str().is_some_and(|v| allowed.contains(&v)))
        }
        Some(_) => false,
    };
    let at_most = |field: &str, max: usize| text(field).is_none_or(|v| v.chars().count() <= max);
    let date = |field: &str, from: &str| {
        text(field).is_some_and(|d| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
                && d.len() == 10
                && d >= from
                && d <= "2038-01-01"
        })
    };
    if !all_of("decision_visibility", VISIBILITY, true) {
        refuse(
            "decision_visibility",
            "The selected decision visibility is invalid.",
        );
    }
    if !one_of("decision_ground", GROUNDS) {
        refuse("decision_ground", "The decision ground field is required.");
    }
    let illegal = text("decision_ground") == Some(GROUNDS[0]);
    for (field, max, needed) in [
        ("illegal_content_legal_ground", 500, illegal),
        ("illegal_content_explanation", 2000, illegal),
        ("incompatible_content_ground", 500, !illegal),
        ("incompatible_content_explanation", 2000, !illegal),
    ] {
        if needed && text(field).is_none_or(str::is_empty) {
            refuse(field, "The field is required for this decision ground.");
        } else if !at_most(field, max) {
            refuse(field, "The field is too long.");
        }
    }
    if !all_of("content_type", CONTENT_TYPES, true) {
        refuse("content_type", "The content type field is required.");
    }
    if !one_of("category", CATEGORIES) {
        refuse("category", "The selected category is invalid.");
    }
    if !all_of("category_specification", KEYWORDS, false) {
        refuse(
            "category_specification",
            "The selected category specification is invalid.",
        );
    }
    if !all_of("territorial_scope", COUNTRIES, false) {
        refuse(
            "territorial_scope",
            "The selected territorial scope is invalid.",
        );
    }
    let language = text("content_language");
    if s.get("content_language").is_some_and(|l| !l.is_null())
        && (!one_of("content_language", LANGUAGES)
            || language.is_some_and(|l| dropped.iter().any(|d| d == l)))
    {
        refuse(
            "content_language",
            "The selected content language is invalid.",
        );
    }
    if !date("content_date", "2000-01-01") {
        refuse(
            "content_date",
            "The content date does not match the format YYYY-MM-DD.",
        );
    }
    if !date("application_date", "2020-01-01") {
        refuse(
            "application_date",
            "The application date does not match the format YYYY-MM-DD.",
        );
    }
    if s.get("end_date_visibility_restriction")
        .is_some_and(|d| !d.is_null())
        && !date("end_date_visibility_restriction", "0000-00-00")
    {
        refuse(
            "end_date_visibility_restriction",
            "The end date does not match the format YYYY-MM-DD.",
        );
    }
    if text("decision_facts").is_none_or(str::is_empty) || !at_most("decision_facts", 5000) {
        refuse(
            "decision_facts",
            "The decision facts field is required and at most 5000 characters.",
        );
    }
    if !one_of("source_type", SOURCES) {
        refuse("source_type", "The selected source type is invalid.");
    }
    if !at_most("source_identity", 500) {
        refuse("source_identity", "The source identity is too long.");
    }
    if !one_of("automated_detection", &["Yes", "No"]) {
        refuse(
            "automated_detection",
            "The selected automated detection is invalid.",
        );
    }
    if !one_of("automated_decision", AUTOMATED) {
        refuse(
            "automated_decision",
            "The selected automated decision is invalid.",
        );
    }
    let puid_ok = text("puid").is_some_and(|p| {
        (1..=500).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !puid_ok {
        refuse("puid", "The puid format is invalid.");
    }
    errors
}

async fn statements(
    State(held): State<Arc<Mutex<Held>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
    let batch = body["statements"].as_array().cloned().unwrap_or_default();
    let (status, answer) = answer(&mut h, &headers, &batch);
    h.calls.push(TdbCall {
        statements: batch.len(),
        status: status.as_u16(),
    });
    (status, Json(answer))
}

fn answer(h: &mut Held, headers: &HeaderMap, batch: &[Value]) -> (StatusCode, Value) {
    let bearer = format!("Bearer {}", h.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Unauthenticated."}),
        );
    }
    if h.fail_next > 0 {
        h.fail_next -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Server Error"}),
        );
    }
    if !(1..=100).contains(&batch.len()) {
        let message = "The statements field must have between 1 and 100 items.";
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": message, "errors": {"statements": [message]}}),
        );
    }
    let mut errors = serde_json::Map::new();
    for (n, s) in batch.iter().enumerate() {
        let e = errors_of(s, &h.dropped);
        if !e.is_empty() {
            errors.insert(format!("statement_{n}"), Value::Object(e));
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "errors": errors }),
        );
    }
    let puids: Vec<&str> = batch.iter().filter_map(|s| s["puid"].as_str()).collect();
    let mut seen = HashSet::new();
    let existing: Vec<String> = puids
        .iter()
        .filter(|p| !seen.insert(**p) || h.stored.contains_key(**p))
        .map(|p| p.to_string())
        .collect();
    if !existing.is_empty() {
        h.resent.extend(
            existing
                .iter()
                .filter(|p| h.stored.contains_key(*p))
                .cloned(),
        );
        let message = "The platform identifier(s) are not all unique within this call.";
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": message, "errors": {"puid": [message], "existing_puids": existing}}),
        );
    }
    let mut created = Vec::with_capacity(batch.len());
    for s in batch {
        let mut stored = s.clone();
        stored["uuid"] = json!(format!("tdb-{}", h.stored.len() + 1));
        let puid = s["puid"].as_str().unwrap_or_default().to_string();
        h.stored.insert(puid, stored.clone());
        created.push(stored);
    }
    (StatusCode::CREATED, json!({ "statements": created }))
}
