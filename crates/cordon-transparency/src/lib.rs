//! Submitting statements of reasons to the EU Transparency Database (DSA Art. 24(5)).
//!
//! Code map: `client.rs` ([`TdbClient`]: one `POST /statements` of at most 100 statements, and
//! what the database's answer means for each of them); `submitter.rs` ([`run`]: the loop that
//! drains the review store's statement queue through the client, with back-off, and keeps the
//! metrics).
//!
//! Invariants:
//! - A batch holds at most 100 statements (the database's limit), checked at start.
//! - A statement leaves the queue with the database's answer, recorded in the transaction that
//!   holds the submitter's lock, so two processes never send the same batch and a recorded
//!   answer is final; if the answer is lost (a crash, a failed commit) the statements are sent
//!   again, and the PUIDs the database already holds are done (`known`).
//! - Only what the database says it stored is accepted: a `201` that does not list a statement
//!   settles nothing for it, and redirects are not followed.
//! - Nothing the database does not answer for is settled: a failed call (network, 429, 5xx,
//!   a refused token) leaves the whole batch queued; in an answer that rejects some statements
//!   (the database stores none of a batch with an error), the rejected ones are kept with their
//!   reasons and the others are sent again.
//!
//! API boundary: [`TransparencyConfig`] (`[transparency]`) and [`run`]; the store holds the
//! queue and the outcomes, the API and console show them.

mod client;
mod submitter;

pub use client::{Failure, TdbClient};
pub use submitter::run;

use cordon_secret::Secret;
use serde::{Deserialize, Serialize};

/// The database's most statements per call.
pub const MAX_BATCH: usize = 100;

/// `[transparency]`: where and how statements are submitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransparencyConfig {
    /// Submit statements (the API role does; one process submits at a time).
    pub enabled: bool,
    /// The database's API base, e.g. `https://transparency.dsa.ec.europa.eu/api/v1` (the
    /// sandbox first); `/statements` is appended.
    pub url: String,
    /// The platform's API token (a secret: `CORDON_TRANSPARENCY__TOKEN_FILE` reads it from a
    /// file).
    pub token: Secret,
    /// Statements per call, 1 to 100.
    pub batch_size: usize,
    /// Seconds between looks at an empty queue.
    pub interval_secs: u64,
    /// Seconds one call may take.
    pub timeout_secs: u64,
    /// First wait after a failed call, in milliseconds; it doubles up to `max_backoff_secs`.
    pub retry_backoff_ms: u64,
    /// Longest wait between failed calls, in seconds.
    pub max_backoff_secs: u64,
}

impl Default for TransparencyConfig {
    fn default() -> TransparencyConfig {
        TransparencyConfig {
            enabled: false,
            url: "https://transparency.dsa.ec.europa.eu/api/v1".into(),
            token: Secret::default(),
            batch_size: MAX_BATCH,
            interval_secs: 10,
            timeout_secs: 30,
            retry_backoff_ms: 1000,
            max_backoff_secs: 300,
        }
    }
}

impl TransparencyConfig {
    /// Checks what would make every submission fail, so a mistake stops the start.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_BATCH).contains(&self.batch_size) {
            return Err(format!(
                "transparency.batch_size: 1 to {MAX_BATCH} (the database's limit)"
            ));
        }
        if !self.enabled {
            return Ok(());
        }
        // The token travels with every call: only over TLS, but to a local test server.
        let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|p| self.url.starts_with(p));
        if !(self.url.starts_with("https://") || local) {
            return Err(
                "transparency.url: an https URL of the database's API (http only on loopback)"
                    .into(),
            );
        }
        if self.token.is_empty() {
            return Err(
                "transparency.token: the platform's API token (or CORDON_TRANSPARENCY__TOKEN_FILE)"
                    .into(),
            );
        }
        if self.timeout_secs == 0 || self.interval_secs == 0 || self.retry_backoff_ms == 0 {
            return Err(
                "transparency: timeout_secs, interval_secs and retry_backoff_ms above 0".into(),
            );
        }
        Ok(())
    }
}
