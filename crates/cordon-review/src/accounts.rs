//! Accounts and login sessions of the people who work the queue.
//!
//! Invariants:
//! - Passwords are stored only as argon2id hashes (PHC strings); hashing and verifying run on
//!   the blocking thread pool.
//! - A session's cookie token is 256 random bits; only its SHA-256 is stored. Each session has
//!   its own CSRF token, which every state change must send back.
//! - A disabled account, or one whose role changed, loses its sessions at once.
//! - Every sign-in attempt is counted per user name and client address *before* its password is
//!   checked, so concurrent guesses cannot slip past the limit: after [`MAX_LOGIN_ATTEMPTS`]
//!   failures that client is refused for five minutes. Unknown user names are counted and
//!   answered exactly like known ones (no enumeration), and one client's guesses never lock the
//!   account for anyone else.
//! - Passwords are hashed on a few dedicated threads (`Hasher`; argon2 takes ~19 MiB each, and
//!   the allocator keeps that per thread): a burst of sign-ins queues (boundedly), then is
//!   refused, instead of exhausting memory.
//! - Changing an account's password, role or enabled state ends its sessions; an account keeps
//!   at most [`MAX_SESSIONS_PER_ACCOUNT`] sessions (the oldest end first).
//! - Every account change is written to the audit log with the admin who made it.

use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{ReviewError, ReviewStore, Role};

/// Failed sign-in attempts one client may make for one user name before it is refused for
/// [`LOCK_SECS`].
pub const MAX_LOGIN_ATTEMPTS: i32 = 5;
/// How long a locked-out client waits, in seconds.
const LOCK_SECS: f64 = 300.0;
/// Password hashes that run at once unless [`ReviewStore::with_concurrent_hashes`] says otherwise.
pub(crate) const DEFAULT_CONCURRENT_HASHES: usize = 2;
/// How long a sign-in waits for its hash before it is refused as busy.
pub const HASH_WAIT: Duration = Duration::from_secs(5);
/// Hashes that may wait for a hashing thread; more are refused at once.
const HASH_QUEUE: usize = 64;

type HashJob = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that hash passwords. Argon2 needs ~19 MiB per hash, and the allocator
/// keeps freed memory per thread: on the shared blocking pool a burst of sign-ins would leave
/// that much behind on every thread it touched. Here memory stays at `threads` × 19 MiB.
#[derive(Debug)]
pub(crate) struct Hasher {
    jobs: std::sync::mpsc::SyncSender<HashJob>,
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one); they end when the hasher is dropped.
    pub(crate) fn new(threads: usize) -> Hasher {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<HashJob>(HASH_QUEUE);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = std::sync::Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("cordon-hash-{n}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Hasher { jobs }
    }

    /// Runs `work` on a hashing thread; refused as busy when the queue is full or the answer
    /// takes longer than [`HASH_WAIT`].
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ReviewError> {
        let busy =
            || ReviewError::RateLimited("sign-in is busy; try again in a few seconds".into());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                // The caller gave up waiting (or went away): do not spend a hash on it.
                if !tx.is_closed() {
                    let _ = tx.send(work());
                }
            }))
            .map_err(|_| busy())?;
        tokio::time::timeout(HASH_WAIT, rx)
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }
}
/// Most live sessions one account keeps; opening another ends the oldest.
pub const MAX_SESSIONS_PER_ACCOUNT: i64 = 20;
/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An account (never its password hash).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Login name: lower-case letters, digits and `._@-`, up to 64 characters.
    pub username: String,
    /// What the account may do.
    pub role: Role,
    /// A disabled account cannot sign in.
    pub disabled: bool,
    /// Whether the account has a password (without one it signs in only through SSO).
    pub has_password: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// New role.
    pub role: Option<Role>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New password.
    pub password: Option<String>,
}

/// A session just opened: the cookie token is only ever known here.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The token for the session cookie.
    pub token: String,
    /// The session as later look-ups return it.
    pub session: Session,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose.
    pub account: Account,
    /// The token state changes must carry (`x-csrf-token` header).
    pub csrf_token: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Account columns; every query names the accounts table `a`.
const ACCOUNT_COLUMNS: &str =
    "a.username, a.role, a.disabled, a.password_hash IS NOT NULL AS has_password, a.created_at";

fn account_from_row(row: &sqlx::postgres::PgRow) -> Result<Account, ReviewError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        username: row.try_get("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| ReviewError::Invalid(format!("stored role `{role}`")))?,
        disabled: row.try_get("disabled")?,
        has_password: row.try_get("has_password")?,
        created_at: row.try_get("created_at")?,
    })
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn check_username(username: &str) -> Result<(), ReviewError> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b))
        && username
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ReviewError::Invalid(format!(
            "user name `{username}`: use 1 to 64 lower-case letters, digits and . _ @ -, starting with a letter or digit"
        )))
    }
}

/// Longest accepted password, in characters.
const MAX_PASSWORD_CHARS: usize = 1024;

/// Hashes a password with argon2id.
fn hash_password(password: &str) -> Result<String, ReviewError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ReviewError::Invalid(format!("hashing the password: {e}")))
}

/// Refuses a password that is too short or too long to be set.
fn check_password(password: &str) -> Result<(), ReviewError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ReviewError::Invalid(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Verifies a password against a stored hash; `None` (unknown user) spends the same time on a
/// throw-away hash and fails.
fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let argon = Argon2::default();
    match stored.map(PasswordHash::new) {
        Some(Ok(hash)) => argon.verify_password(password.as_bytes(), &hash).is_ok(),
        _ => {
            let salt = SaltString::generate(&mut OsRng);
            let _ = argon.hash_password(password.as_bytes(), &salt);
            false
        }
    }
}

impl ReviewStore {
    /// Hashes a new password on the hashing threads.
    async fn new_hash(&self, password: String) -> Result<String, ReviewError> {
        check_password(&password)?;
        self.hasher.run(move || hash_password(&password)).await?
    }

    /// Creates an account. `actor` is the admin (or `cli` for `cordon user add`).
    pub async fn add_account(
        &self,
        actor: &str,
        username: &str,
        role: Role,
        password: Option<String>,
    ) -> Result<Account, ReviewError> {
        check_username(username)?;
        let hash = match password {
            Some(p) => Some(self.new_hash(p).await?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO accounts AS a (username, role, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (username) DO NOTHING RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(username)
        .bind(role.as_str())
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ReviewError::Conflict(format!("account {username} exists")))?;
        let account = account_from_row(&row)?;
        audit_account(&mut tx, actor, "account:add", &account, None).await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Changes an account's role, enabled state or password. A role change or disabling ends
    /// the account's sessions.
    pub async fn update_account(
        &self,
        actor: &str,
        username: &str,
        change: AccountChange,
    ) -> Result<Account, ReviewError> {
        let hash = match change.password {
            Some(p) => Some(self.new_hash(p).await?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE accounts a SET role = COALESCE($2, role), disabled = COALESCE($3, disabled),
                    password_hash = COALESCE($4, password_hash), updated_at = now()
             WHERE username = $1 RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(username)
        .bind(change.role.map(Role::as_str))
        .bind(change.disabled)
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ReviewError::NotFound(format!("account {username}")))?;
        let account = account_from_row(&row)?;
        if change.role.is_some() || change.disabled == Some(true) || hash.is_some() {
            sqlx::query("DELETE FROM sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        if hash.is_some() {
            // A new password lifts every client's lock-out for the account.
            sqlx::query("DELETE FROM login_attempts WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        let mut what = Vec::new();
        if let Some(r) = change.role {
            what.push(format!("role={}", r.as_str()));
        }
        if let Some(d) = change.disabled {
            what.push(format!("disabled={d}"));
        }
        if hash.is_some() {
            what.push("password changed".into());
        }
        audit_account(
            &mut tx,
            actor,
            "account:update",
            &account,
            Some(&what.join(", ")),
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, ReviewError> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Checks a user name and password from `client` (its address) and opens a session of
    /// `ttl`. Wrong credentials and unknown users get the same [`ReviewError::Unauthorized`];
    /// a client past [`MAX_LOGIN_ATTEMPTS`] failures for the name, and a sign-in that finds
    /// every hashing slot busy, get [`ReviewError::RateLimited`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
        ttl: Duration,
    ) -> Result<NewSession, ReviewError> {
        let locked = || {
            ReviewError::RateLimited("too many failed sign-ins; try again in a few minutes".into())
        };
        // The attempt counts before the password is checked (a lock-out, once passed, starts a
        // fresh count), so parallel guesses cannot outrun the limit.
        let key: String = username.chars().take(64).collect();
        let row = sqlx::query(
            "INSERT INTO login_attempts AS l (username, client, attempts) VALUES ($1, $2, 1)
             ON CONFLICT (username, client) DO UPDATE SET
               attempts = CASE WHEN l.locked_until <= now() THEN 1 ELSE l.attempts + 1 END,
               locked_until = CASE WHEN l.locked_until <= now() THEN NULL
                                   WHEN l.locked_until IS NULL AND l.attempts + 1 > $3
                                       THEN now() + make_interval(secs => $4)
                                   ELSE l.locked_until END,
               updated_at = now()
             RETURNING attempts, locked_until > now() AS locked",
        )
        .bind(&key)
        .bind(client)
        .bind(MAX_LOGIN_ATTEMPTS)
        .bind(LOCK_SECS)
        .fetch_one(&self.pool)
        .await?;
        let attempts: i32 = row.try_get("attempts")?;
        if row.try_get::<Option<bool>, _>("locked")?.unwrap_or(false)
            || attempts > MAX_LOGIN_ATTEMPTS
        {
            return Err(locked());
        }
        let found = sqlx::query("SELECT password_hash, disabled FROM accounts WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let (stored, usable) = match &found {
            Some(r) => (
                r.try_get::<Option<String>, _>("password_hash")?,
                !r.try_get::<bool, _>("disabled")?,
            ),
            None => (None, false),
        };
        let verified = password.chars().count() <= MAX_PASSWORD_CHARS && {
            let password = password.to_string();
            self.hasher
                .run(move || verify_password(&password, stored.as_deref()))
                .await?
        };
        if verified && usable {
            sqlx::query("DELETE FROM login_attempts WHERE username = $1 AND client = $2")
                .bind(&key)
                .bind(client)
                .execute(&self.pool)
                .await?;
            return self.open_session(username, ttl).await;
        }
        sqlx::query(
            "UPDATE login_attempts SET locked_until = now() + make_interval(secs => $3)
             WHERE username = $1 AND client = $2 AND attempts >= $4 AND locked_until IS NULL",
        )
        .bind(&key)
        .bind(client)
        .bind(LOCK_SECS)
        .bind(MAX_LOGIN_ATTEMPTS)
        .execute(&self.pool)
        .await?;
        // Forget attempts nobody made for a day (they only fill the table).
        sqlx::query("DELETE FROM login_attempts WHERE updated_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await?;
        Err(ReviewError::Unauthorized(
            "wrong user name or password".into(),
        ))
    }

    /// Opens a session for an enabled account without a password: for a user the trusted
    /// single-sign-on proxy vouches for.
    pub async fn open_session(
        &self,
        username: &str,
        ttl: Duration,
    ) -> Result<NewSession, ReviewError> {
        let token = random_hex();
        let csrf_token = random_hex();
        let row = sqlx::query(&format!(
            "WITH s AS (
               INSERT INTO sessions (token_hash, username, csrf_token, expires_at)
               SELECT $1, username, $3, now() + make_interval(secs => $4)
               FROM accounts WHERE username = $2 AND NOT disabled
               RETURNING expires_at)
             SELECT {ACCOUNT_COLUMNS}, s.expires_at FROM accounts a, s WHERE a.username = $2"
        ))
        .bind(token_hash(&token))
        .bind(username)
        .bind(&csrf_token)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| ReviewError::Unauthorized(format!("{username} has no enabled account")))?;
        // Bounded per account: the oldest sessions beyond the cap end (and expired ones go).
        sqlx::query(
            "DELETE FROM sessions WHERE username = $1 AND (expires_at < now() OR token_hash IN (
               SELECT token_hash FROM sessions WHERE username = $1
               ORDER BY created_at DESC OFFSET $2))",
        )
        .bind(username)
        .bind(MAX_SESSIONS_PER_ACCOUNT)
        .execute(&self.pool)
        .await?;
        Ok(NewSession {
            token,
            session: Session {
                account: account_from_row(&row)?,
                csrf_token,
                expires_at: row.try_get("expires_at")?,
            },
        })
    }

    /// The live session a cookie token names, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, ReviewError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, s.csrf_token, s.expires_at
             FROM sessions s JOIN accounts a ON a.username = s.username
             WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT a.disabled"
        ))
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                account: account_from_row(&r)?,
                csrf_token: r.try_get("csrf_token")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session (and clears expired ones).
    pub async fn logout(&self, token: &str) -> Result<(), ReviewError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at < now()")
            .bind(token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn audit_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &str,
    action: &str,
    account: &Account,
    note: Option<&str>,
) -> Result<(), ReviewError> {
    sqlx::query("INSERT INTO audit_log (actor, action, after, note) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(action)
        .bind(serde_json::to_value(account)?)
        .bind(note)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in ["ana", "a.b-c_d@example.org", "7"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Ana", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn passwords_hash_and_verify_on_the_hashing_threads() {
        let hasher = Hasher::new(1);
        let hash = hasher
            .run(|| hash_password("correct horse battery"))
            .await
            .unwrap()
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
        assert!(check_password("short").is_err());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
