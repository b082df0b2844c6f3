//! Cordon on secured connections.
//!
//! PostgreSQL: a second server started by the test serves TLS with a certificate from a test CA
//! and takes TCP connections only over TLS; Cordon connects with `sslmode=verify-full` and the
//! CA as `database.ca_file`, and refuses the server under a CA that did not sign it — without
//! printing the database password anywhere.
//!
//! Kafka: the pipeline end to end over TLS with a CA made by the test, and
//! with SCRAM authentication over TLS; a CA that did not sign the broker's certificate, or a
//! wrong password, stops a process at start with one error naming the setting — no hang, no
//! loop of log lines. The broker is the real tansu process serving TLS (`--cert`, `--key`) and
//! requiring SASL (`--authentication`; its PLAIN mechanism accepts any password, so the wrong
//! password is shown with SCRAM-SHA-512).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    cordon_bin, feed_versions, free_port, ids_with, repo_root, run_with_input, wait_applied,
    Broker, Deployment, TestCa, TlsPostgres,
};

/// The sample feed through a worker and an indexer on `d`; every item ends where
/// `cordon classify` says it should.
async fn sample_feed_flows(d: &Deployment) -> Result<()> {
    let feed = repo_root().join("examples/sample-feed.jsonl");
    d.spread_policy(&feed)?;
    let mut expected = d.expected_actions(&feed)?;
    expected.retain(|id, _| !id.ends_with("broken"));
    let mut versions = feed_versions(&feed)?;
    versions.retain(|id, _| expected.contains_key(id));
    let worker = d.start("worker")?;
    let indexer = d.start("indexer,api")?;
    d.wait_ready().await?;
    d.command(&["produce", "--no-validate", &feed.display().to_string()])?;
    wait_applied(d, &versions, Duration::from_secs(120))
        .await
        .with_context(|| format!("{}\n{}", worker.log(), indexer.log()))?;
    assert_eq!(
        d.visible_ids().await?,
        ids_with(&expected, &["allow", "review"])
    );
    Ok(())
}

/// Runs `cordon --config CONFIG run --role ROLE` with `env` and expects it to exit with an
/// error within `within`; returns its stderr.
fn fails_at_start(
    config: &Path,
    role: &str,
    env: &[(&str, &str)],
    within: Duration,
) -> Result<String> {
    let started = Instant::now();
    let output = Command::new(cordon_bin())
        .arg("--config")
        .arg(config)
        .args(["run", "--role", role])
        .env("CORDON_API__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CORDON_OPS__LISTEN", format!("127.0.0.1:{}", free_port()))
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "it started: {stderr}");
    assert!(
        started.elapsed() < within,
        "took {:?} to fail: {stderr}",
        started.elapsed()
    );
    Ok(stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_runs_over_tls_and_a_foreign_ca_fails_at_start() -> Result<()> {
    let ca = TestCa::new("Cordon test CA")?;
    let mut broker = Broker::start()?;
    broker.tls = Some(ca.issue("127.0.0.1")?);
    broker.restart()?;
    let d = Deployment::on(
        broker,
        &format!(
            "[kafka.security]\nprotocol = \"ssl\"\nca_file = \"{}\"\n",
            ca.cert.display()
        ),
    )
    .await?;
    sample_feed_flows(&d).await?;

    let foreign = TestCa::new("Some other CA")?;
    let foreign_ca = foreign.cert.display().to_string();
    let stderr = fails_at_start(
        &d.config,
        "worker",
        &[
            ("CORDON_KAFKA__SECURITY__CA_FILE", &foreign_ca),
            ("CORDON_KAFKA__CONNECT_TIMEOUT_SECS", "5"),
        ],
        Duration::from_secs(20),
    )?;
    assert!(stderr.contains("kafka.security.ca_file"), "{stderr}");
    assert!(
        stderr.lines().count() < 20,
        "one error, not a loop of log lines: {stderr}"
    );

    // Plaintext against a TLS listener fails the same way, naming the protocol.
    let stderr = fails_at_start(
        &d.config,
        "worker",
        &[
            ("CORDON_KAFKA__SECURITY__PROTOCOL", "plaintext"),
            ("CORDON_KAFKA__SECURITY__CA_FILE", ""),
            ("CORDON_KAFKA__CONNECT_TIMEOUT_SECS", "5"),
        ],
        Duration::from_secs(20),
    )?;
    assert!(
        stderr.contains("cannot connect to the Kafka brokers"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_over_tls_authenticates_and_a_wrong_password_fails_at_start() -> Result<()> {
    let ca = TestCa::new("Cordon test CA")?;
    let password = "a kafka password that must not be printed";
    let mut broker = Broker::start()?;
    broker.add_scram_user("cordon", password)?;
    broker.tls = Some(ca.issue("127.0.0.1")?);
    broker.authentication = true;
    broker.restart()?;
    let secrets = tempfile::tempdir()?;
    let password_file = secrets.path().join("kafka-password");
    std::fs::write(&password_file, format!("{password}\n"))?;
    let d = Deployment::on(
        broker,
        &format!(
            "[kafka.security]\nprotocol = \"sasl_ssl\"\nca_file = \"{}\"\n\
             sasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"cordon\"\n\
             sasl_password_file = \"{}\"\n",
            ca.cert.display(),
            password_file.display()
        ),
    )
    .await?;
    sample_feed_flows(&d).await?;
    let printed = d.command(&["config"])?;
    assert!(!printed.contains(password), "{printed}");

    let wrong = secrets.path().join("wrong");
    std::fs::write(&wrong, "not the password")?;
    let wrong = wrong.display().to_string();
    let stderr = fails_at_start(
        &d.config,
        "worker",
        &[
            ("CORDON_KAFKA__SECURITY__SASL_PASSWORD_FILE", &wrong),
            ("CORDON_KAFKA__CONNECT_TIMEOUT_SECS", "5"),
        ],
        Duration::from_secs(20),
    )?;
    assert!(stderr.contains("kafka.security.sasl_"), "{stderr}");
    assert!(!stderr.contains("not the password"), "{stderr}");
    Ok(())
}

/// Runs `cordon --config CONFIG user ARGS` with `env` and `stdin`; returns (success, stdout +
/// stderr).
fn cordon_user(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Result<(bool, String)> {
    let output = run_with_input(
        Command::new(cordon_bin())
            .arg("--config")
            .arg(config)
            .arg("user")
            .args(args)
            .envs(env.iter().copied()),
        stdin,
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_verified_tls_and_a_foreign_ca_is_refused() -> Result<()> {
    let ca = TestCa::new("Cordon test CA")?;
    let pg = TlsPostgres::start(&ca.issue("127.0.0.1")?)?;
    let dir = tempfile::tempdir()?;
    // The server trusts every TLS connection; the password is there to show it never leaks.
    let password = "a database password that must not be printed";
    let password_file = dir.path().join("db-password");
    std::fs::write(&password_file, format!("{password}\n"))?;
    let config = dir.path().join("cordon.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full\"\n\
             ca_file = \"{}\"\npassword_file = \"{}\"\nacquire_timeout_secs = 5\n",
            pg.port,
            ca.cert.display(),
            password_file.display()
        ),
    )?;
    let (ok, out) = cordon_user(
        &config,
        &["add", "ada", "--role", "admin"],
        &[],
        "a long enough password\n",
    )?;
    assert!(ok, "{out}");
    let (ok, out) = cordon_user(&config, &["list"], &[], "")?;
    assert!(ok && out.contains("ada"), "{out}");

    // A CA that did not sign the server's certificate: refused at once, naming the setting.
    let foreign = TestCa::new("Some other CA")?;
    let foreign_ca = foreign.cert.display().to_string();
    let started = Instant::now();
    let (ok, out) = cordon_user(
        &config,
        &["list"],
        &[("CORDON_DATABASE__CA_FILE", &foreign_ca)],
        "",
    )?;
    assert!(!ok, "{out}");
    assert!(started.elapsed() < Duration::from_secs(20), "{out}");
    assert!(
        out.contains("certificate") && out.contains("database.ca_file"),
        "{out}"
    );
    assert!(!out.contains(password), "{out}");

    // Without TLS the server refuses the connection (hostssl only).
    let plain = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let (ok, out) = cordon_user(&config, &["list"], &[("CORDON_DATABASE__URL", &plain)], "")?;
    assert!(!ok && out.contains("no encryption"), "{out}");
    assert!(!out.contains(password), "{out}");

    // A service stops at once on the foreign CA instead of retrying.
    let broker = Broker::start()?;
    let stderr = fails_at_start(
        &config,
        "api",
        &[
            ("CORDON_KAFKA__BROKERS", &broker.addr()),
            ("CORDON_DATABASE__CA_FILE", &foreign_ca),
        ],
        Duration::from_secs(30),
    )?;
    assert!(stderr.contains("database.ca_file"), "{stderr}");
    assert!(!stderr.contains(password), "{stderr}");
    Ok(())
}
