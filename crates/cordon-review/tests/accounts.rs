//! Accounts and sessions against the real PostgreSQL.

use std::time::Duration;

use cordon_review::test_support::TestDb;
use cordon_review::{AccountChange, ReviewError, ReviewStore, Role};

const PASSWORD: &str = "correct horse battery staple";
const HOUR: Duration = Duration::from_secs(3600);

async fn store(db: &TestDb) -> ReviewStore {
    ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect and migrate")
}

#[tokio::test]
async fn sign_in_with_argon2_passwords_and_sessions() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let admin = store
        .add_account("cli", "root", Role::Admin, Some(PASSWORD.into()))
        .await
        .unwrap();
    assert!(admin.has_password && admin.role == Role::Admin);
    // Stored as an argon2id hash, never as the password.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM accounts")
        .fetch_one(&sqlx::PgPool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(PASSWORD));

    let new = store
        .login("root", PASSWORD, "127.0.0.1", HOUR)
        .await
        .unwrap();
    let session = store.session(&new.token).await.unwrap().expect("live");
    assert_eq!(session.account.username, "root");
    assert_eq!(session.csrf_token.len(), 64);
    assert_ne!(session.csrf_token, new.token);
    assert!(store.session("not-a-token").await.unwrap().is_none());

    // Wrong password and unknown user: the same refusal.
    for (user, password) in [("root", "wrong password!!"), ("nobody", PASSWORD)] {
        let err = store
            .login(user, password, "127.0.0.1", HOUR)
            .await
            .unwrap_err();
        assert!(matches!(err, ReviewError::Unauthorized(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "not signed in: wrong user name or password"
        );
    }
    // Duplicates, bad names and short passwords are refused.
    assert!(matches!(
        store
            .add_account("cli", "root", Role::Moderator, Some(PASSWORD.into()))
            .await,
        Err(ReviewError::Conflict(_))
    ));
    assert!(matches!(
        store
            .add_account("cli", "Bad Name", Role::Moderator, None)
            .await,
        Err(ReviewError::Invalid(_))
    ));
    assert!(matches!(
        store
            .add_account("cli", "eve", Role::Moderator, Some("short".into()))
            .await,
        Err(ReviewError::Invalid(_))
    ));

    store.logout(&new.token).await.unwrap();
    assert!(store.session(&new.token).await.unwrap().is_none());
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .add_account("cli", "mo", Role::Moderator, Some(PASSWORD.into()))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            store
                .login("mo", "not the password", "127.0.0.1", HOUR)
                .await,
            Err(ReviewError::Unauthorized(_))
        ));
    }
    // Even the right password is refused while locked.
    assert!(matches!(
        store.login("mo", PASSWORD, "127.0.0.1", HOUR).await,
        Err(ReviewError::RateLimited(_))
    ));
    // An admin's change (here a password reset) lifts the lock.
    store
        .update_account(
            "root",
            "mo",
            AccountChange {
                password: Some(format!("{PASSWORD}!")),
                ..AccountChange::default()
            },
        )
        .await
        .unwrap();
    store
        .login("mo", &format!("{PASSWORD}!"), "127.0.0.1", HOUR)
        .await
        .unwrap();
}

#[tokio::test]
async fn disabling_or_changing_a_role_ends_sessions_and_is_audited() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .add_account("root", "mo", Role::Moderator, Some(PASSWORD.into()))
        .await
        .unwrap();
    let first = store
        .login("mo", PASSWORD, "127.0.0.1", HOUR)
        .await
        .unwrap();
    let promoted = store
        .update_account(
            "root",
            "mo",
            AccountChange {
                role: Some(Role::Senior),
                ..AccountChange::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Senior);
    assert!(store.session(&first.token).await.unwrap().is_none());
    let second = store
        .login("mo", PASSWORD, "127.0.0.1", HOUR)
        .await
        .unwrap();
    assert_eq!(second.session.account.role, Role::Senior);
    store
        .update_account(
            "root",
            "mo",
            AccountChange {
                disabled: Some(true),
                ..AccountChange::default()
            },
        )
        .await
        .unwrap();
    assert!(store.session(&second.token).await.unwrap().is_none());
    assert!(matches!(
        store.login("mo", PASSWORD, "127.0.0.1", HOUR).await,
        Err(ReviewError::Unauthorized(_))
    ));
    // A single-sign-on account has no password and cannot use one.
    store
        .add_account("root", "sso.user", Role::Moderator, None)
        .await
        .unwrap();
    assert!(store
        .login("sso.user", "", "127.0.0.1", HOUR)
        .await
        .is_err());
    let sso = store.open_session("sso.user", HOUR).await.unwrap();
    assert!(store.session(&sso.token).await.unwrap().is_some());
    assert!(matches!(
        store.open_session("mo", HOUR).await,
        Err(ReviewError::Unauthorized(_))
    ));

    let log = store.audit_log(None, 10, Role::Admin).await.unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert!(actions.contains(&("root", "account:add")));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == ("root", "account:update"))
            .count(),
        2
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_limit_and_locks_are_per_client() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await.with_concurrent_hashes(4);
    store
        .add_account("cli", "admin", Role::Admin, Some(PASSWORD.into()))
        .await
        .unwrap();
    // 19 wrong passwords and the right one, all at once, from one client.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        let password = if i == 19 {
            PASSWORD.to_string()
        } else {
            format!("wrong password {i}")
        };
        tasks.push(tokio::spawn(async move {
            store.login("admin", &password, "203.0.113.7", HOUR).await
        }));
    }
    let mut verified = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) | Err(ReviewError::Unauthorized(_)) => verified += 1,
            Err(ReviewError::RateLimited(_)) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        verified <= cordon_review::MAX_LOGIN_ATTEMPTS,
        "{verified} passwords were checked"
    );
    assert_eq!(verified + limited, 20);
    // That client is locked out now, even with the right password ...
    assert!(matches!(
        store.login("admin", PASSWORD, "203.0.113.7", HOUR).await,
        Err(ReviewError::RateLimited(_))
    ));
    // ... but nobody else is: a stranger's guesses do not lock the admin out.
    store
        .login("admin", PASSWORD, "198.51.100.1", HOUR)
        .await
        .unwrap();
    // Unknown names are counted and answered exactly like known ones (no enumeration).
    for _ in 0..cordon_review::MAX_LOGIN_ATTEMPTS {
        assert!(matches!(
            store.login("nobody", PASSWORD, "203.0.113.7", HOUR).await,
            Err(ReviewError::Unauthorized(_))
        ));
    }
    assert!(matches!(
        store.login("nobody", PASSWORD, "203.0.113.7", HOUR).await,
        Err(ReviewError::RateLimited(_))
    ));
}

#[tokio::test]
async fn a_password_reset_ends_the_accounts_sessions() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .add_account("cli", "mo", Role::Moderator, Some(PASSWORD.into()))
        .await
        .unwrap();
    let session = store
        .login("mo", PASSWORD, "127.0.0.1", HOUR)
        .await
        .unwrap();
    store
        .update_account(
            "root",
            "mo",
            AccountChange {
                password: Some(format!("{PASSWORD} 2")),
                ..AccountChange::default()
            },
        )
        .await
        .unwrap();
    assert!(store.session(&session.token).await.unwrap().is_none());
    // An account keeps a bounded number of sessions: the oldest end first.
    let mut tokens = Vec::new();
    for _ in 0..cordon_review::MAX_SESSIONS_PER_ACCOUNT + 3 {
        tokens.push(store.open_session("mo", HOUR).await.unwrap().token);
    }
    assert!(store.session(&tokens[0]).await.unwrap().is_none());
    assert!(store
        .session(tokens.last().unwrap())
        .await
        .unwrap()
        .is_some());
}
