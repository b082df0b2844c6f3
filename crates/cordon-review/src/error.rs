//! Why a review-store operation failed.

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
    /// Submitting statements to the Transparency Database failed; they stay queued.
    #[error("submitting statements failed: {0}")]
    Submit(String),
    /// A value could not be serialized for storage.
    #[error("serializing a value for the review database: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl ReviewError {
    /// Whether the error means the database is unreachable, overloaded or restarting (worth
    /// retrying later), as opposed to a bad request or a fault that retrying cannot mend.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ReviewError::Database(e) => match e {
                // A certificate that fails verification stays refused: not worth waiting for
                // (rustls reports it as a TLS or an I/O error, depending on the step).
                sqlx::Error::Tls(_) | sqlx::Error::Io(_) => !e.to_string().contains("certificate"),
                sqlx::Error::Protocol(_)
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
            ReviewError::Publish(_) | ReviewError::Submit(_) => true,
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
