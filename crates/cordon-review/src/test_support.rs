//! Test support (feature `test-support`): a PostgreSQL database per test, for this crate's own
//! tests and the end-to-end harness.

use std::sync::atomic::{AtomicU32, Ordering};

/// The admin connection string for creating test databases (`CORDON_TEST_PG_URL`, else the
/// local server).
pub fn admin_url() -> String {
    std::env::var("CORDON_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database name no other test uses.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// A PostgreSQL database created for one test and dropped when this value is dropped.
pub struct TestDb {
    name: String,
    /// Connection string of the test database.
    pub url: String,
}

impl TestDb {
    /// Creates a fresh, empty database.
    pub async fn create() -> Result<TestDb, sqlx::Error> {
        let admin = admin_url();
        let name = unique_name("cordon_test");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Ok(TestDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        // Best effort: a database left behind is dropped by the next run's clean-up of the
        // server, never by a test failing.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            })
        })
        .join();
    }
}
