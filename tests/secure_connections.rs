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
//!
//! Secrets: one of each kind is planted, each from another source (the file, the environment,
//! a file named by the environment), and every output of a running deployment — its log at
//! debug level, `cordon config`, command output and errors, metrics, health and API answers —
//! is read for them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    cordon_bin, eventually, feed_versions, free_port, ids_with, repo_root, report_signature,
    run_with_input, wait_applied, Broker, Deployment, TestCa, TlsPostgres,
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

/// Runs `cordon --config CONFIG ARGS` with `env`, a password on stdin; returns its stdout and
/// stderr together.
fn cordon_output(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let output = run_with_input(
        Command::new(cordon_bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(repo_root()),
        "a moderator's password\n",
    )?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_secrets_appear_in_no_output() -> Result<()> {
    let kafka_password = "planted-kafka-password-7f3a9";
    let oauth_secret = "planted-oauth-client-secret-55e1c";
    let database_password = "planted-database-password-91c2d";
    let platform_key = "planted-platform-key-0123456789abcdef0123456789";
    let flagger_secret = "planted-flagger-secret-0123456789abcdef01234567";
    let wrong_password = "planted-wrong-kafka-password-d00d";
    let planted = [
        kafka_password,
        oauth_secret,
        database_password,
        platform_key,
        flagger_secret,
        wrong_password,
    ];

    let mut broker = Broker::start()?;
    broker.add_scram_user("cordon", kafka_password)?;
    broker.authentication = true;
    broker.restart()?;
    // In the configuration file: the Kafka password, a librdkafka secret property, a flagger's
    // secret.
    let d = Deployment::on(
        broker,
        &format!(
            "[kafka.security]\nprotocol = \"sasl_plaintext\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
             sasl_username = \"cordon\"\nsasl_password = \"{kafka_password}\"\n\
             [kafka.client]\n\"sasl.oauthbearer.client.secret\" = \"{oauth_secret}\"\n\
             [reports.trusted_flaggers.hotline]\nname = \"Hotline\"\nsecret = \"{flagger_secret}\"\n"
        ),
    )
    .await?;
    // In the environment: the database password (the test server trusts local connections, so
    // it is sent and ignored); in a file the environment names: a platform key.
    let secrets = tempfile::tempdir()?;
    let key_file = secrets.path().join("platform-key");
    std::fs::write(&key_file, format!("{platform_key}\n"))?;
    let key_file = key_file.display().to_string();
    let env = [
        ("CORDON_DATABASE__PASSWORD", database_password),
        (
            "CORDON_REPORTS__PLATFORM_KEYS__PLANTED_FILE",
            key_file.as_str(),
        ),
        ("CORDON_LOG__FILTER", "debug"),
    ];
    let mut outputs: Vec<(String, String)> = Vec::new();

    let printed = cordon_output(&d.config, &["config"], &env)?;
    assert!(printed.contains("***"), "{printed}");
    outputs.push(("cordon config".into(), printed));
    let mut cordon = d.start_with_env("all", &env)?;
    d.wait_ready()
        .await
        .with_context(|| tail(&cordon.log(), 30))?;
    let feed = repo_root().join("examples/sample-feed.jsonl");
    outputs.push((
        "cordon produce".into(),
        cordon_output(
            &d.config,
            &["produce", "--no-validate", &feed.display().to_string()],
            &env,
        )?,
    ));
    outputs.push((
        "cordon user add".into(),
        cordon_output(
            &d.config,
            &["user", "add", "moderator-1", "--role", "moderator"],
            &env,
        )?,
    ));

    // A report signed with the planted key is filed; one with a wrong signature is refused.
    let http = reqwest::Client::new();
    let item = "tg:channel/101/post/1";
    eventually(
        Duration::from_secs(30),
        "the item to be indexed",
        || async {
            let (status, _) = d.get(&format!("/v1/items/{item}")).await?;
            Ok((status == 200).then_some(()))
        },
    )
    .await?;
    for signature in [
        report_signature("planted", platform_key, item, "reporter-1"),
        report_signature(
            "planted",
            "not the key, but long enough to sign",
            item,
            "reporter-2",
        ),
    ] {
        let answer = http
            .post(format!("http://{}/v1/reports", d.api))
            .json(&serde_json::json!({"item_id": item, "reason": "drugs",
                "reporter": "reporter-1", "signature": signature}))
            .send()
            .await?;
        outputs.push((
            format!("POST /v1/reports: {}", answer.status()),
            answer.text().await?,
        ));
    }
    let ops = cordon.http();
    for url in [
        format!("http://{ops}/metrics"),
        format!("http://{ops}/readyz"),
        format!("http://{}/v1/search?q=delivery", d.api),
        format!("http://{}/v1/cases", d.api),
        format!("http://{}/v1/no-such-route", d.api),
        format!("http://{}/console", d.api),
    ] {
        let answer = http.get(&url).send().await?;
        outputs.push((
            format!("GET {url}: {}", answer.status()),
            answer.text().await?,
        ));
    }
    // A process refused by the broker prints its error, not the password it tried.
    outputs.push((
        "a worker with a wrong Kafka password".into(),
        fails_at_start(
            &d.config,
            "worker",
            &[
                ("CORDON_KAFKA__SECURITY__SASL_PASSWORD", wrong_password),
                ("CORDON_KAFKA__CONNECT_TIMEOUT_SECS", "5"),
                ("CORDON_LOG__FILTER", "debug"),
            ],
            Duration::from_secs(20),
        )?,
    ));
    cordon.terminate(Duration::from_secs(30))?;
    let log = cordon.log();
    assert!(
        log.contains("report received"),
        "no report in the log:\n{log}"
    );
    outputs.push(("the log of cordon run --role all".into(), log));

    for (what, text) in &outputs {
        for secret in planted {
            assert!(
                !text.contains(secret),
                "{what} shows the planted secret {secret}:\n{text}"
            );
        }
    }
    eprintln!(
        "[secrets] {} outputs, {} bytes read for {} planted secrets",
        outputs.len(),
        outputs.iter().map(|(_, t)| t.len()).sum::<usize>(),
        planted.len()
    );
    Ok(())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
