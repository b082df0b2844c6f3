//! The one configuration struct: defaults, then the TOML file, then `CORDON_*` environment
//! variables (`CORDON_KAFKA__BROKERS=...`: sections and keys joined by a double underscore).
//! `deploy/cordon.toml` documents every option.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cordon_api::{ApiConfig, AuthConfig, ConsoleConfig, MediaConfig, ReportsConfig};
use cordon_indexer::IndexConfig;
use cordon_secret::{ConnectionUrl, Secret};
use cordon_stream::{KafkaSecurity, KafkaSettings, Properties};
use cordon_worker::{ContextConfig, ModelConfig, PolicyConfig, WorkerConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Brokers and topics.
    pub kafka: KafkaConfig,
    /// The review database.
    pub database: DatabaseConfig,
    /// The classifier model.
    pub model: ModelConfig,
    /// The context stage: the encoder and its head, for the items the fast model is unsure about.
    pub context: ContextConfig,
    /// Per-category thresholds overriding the model card's.
    pub policy: PolicyConfig,
    /// The worker role.
    pub worker: WorkerConfig,
    /// The indexer role and the search index.
    pub index: IndexConfig,
    /// The HTTP API role.
    pub api: ApiConfig,
    /// Sign-in to the console and the review API.
    pub auth: AuthConfig,
    /// User reports: who is vouched for, limits, holds.
    pub reports: ReportsConfig,
    /// The moderator console.
    pub console: ConsoleConfig,
    /// Stopping on SIGTERM / SIGINT.
    pub shutdown: ShutdownConfig,
    /// The console's media proxy.
    pub media: MediaConfig,
    /// Statements of reasons: the mapping to the Transparency Database's grounds.
    pub statements: cordon_statements::StatementsConfig,
    /// Appeals of restrictions: the window, who decides.
    pub appeals: cordon_review::AppealsConfig,
    /// Strikes against channels and the suspensions they cause.
    pub strikes: cordon_review::StrikesConfig,
    /// Submitting statements to the EU Transparency Database.
    pub transparency: cordon_transparency::TransparencyConfig,
    /// Metrics and health.
    pub ops: OpsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The operations listener every process serves: `/metrics`, `/healthz`, `/readyz`. Keep it off
/// the public network (metrics describe the queue and the model's behaviour).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// Listen address.
    pub listen: String,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

/// Kafka settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic of incoming content items.
    pub content_topic: String,
    /// Compacted topic of verdicts, keyed by item id.
    pub verdicts_topic: String,
    /// Topic that receives content messages that could not be decoded.
    pub dead_letter_topic: String,
    /// Topic of user reports (JSON `{item_id, reason, reporter, details?}`), filed by the API role.
    pub reports_topic: String,
    /// Topic of the notices reporters get (keyed by report id): an acknowledgement when a report
    /// is filed, its outcome when it is settled.
    pub outcomes_topic: String,
    /// Consumer group of the workers; give each installation sharing a cluster its own.
    pub worker_group: String,
    /// Consumer group of the API role's report consumers.
    pub reports_group: String,
    /// Topic of the items the worker sends the context stage (keyed by item id).
    pub context_topic: String,
    /// Consumer group of the context role.
    pub context_group: String,
    /// Create missing topics at start.
    pub create_topics: bool,
    /// Partitions of topics Cordon creates.
    pub partitions: i32,
    /// Copies of each partition of the topics Cordon creates.
    pub replication_factor: i32,
    /// `min.insync.replicas` of the topics Cordon creates: copies that must hold a record before
    /// it is acknowledged (Cordon's producers wait for all in-sync copies).
    pub min_insync_replicas: i32,
    /// Create the content topic compacted (the latest version of each item kept, by its key),
    /// so that a new index replica can be rebuilt from the topics; the platform must then key
    /// content by item id. Off: the brokers' retention deletes old content, and an index
    /// rebuilt later lacks every item older than that.
    pub compact_content: bool,
    /// Seconds a produced record may wait for acknowledgement before the batch is retried.
    pub delivery_timeout_secs: u64,
    /// Largest record Cordon produces, in bytes (librdkafka's `message.max.bytes`); keep it at
    /// most the broker's limit. A larger record is set aside, never retried.
    pub max_message_bytes: usize,
    /// Milliseconds a consumer's fetch may wait at the broker for new records (librdkafka's
    /// `fetch.wait.max.ms`). Kafka answers as soon as a record arrives, so the default costs no
    /// latency; a broker that holds fetches for the whole wait (the local tansu broker) needs a
    /// short one, paid for in idle polling.
    pub fetch_wait_max_ms: u64,
    /// Milliseconds a worker, context role or report consumer may go without a heartbeat before
    /// its group moves its partitions to the others (`session.timeout.ms`; between the brokers'
    /// group.min/max.session.timeout.ms, 6 s and 30 min on Kafka).
    pub session_timeout_ms: u64,
    /// Milliseconds between a group member's heartbeats (`heartbeat.interval.ms`).
    pub heartbeat_interval_ms: u64,
    /// Seconds to wait at start for the brokers to answer with these settings before failing
    /// with an error that names the setting to look at.
    pub connect_timeout_secs: u64,
    /// TLS and SASL of every client.
    pub security: KafkaSecurity,
    /// Extra librdkafka settings for every client; secret values print as `***`.
    pub client: Properties,
    /// Extra librdkafka settings for producers only, after `client`.
    pub producer: Properties,
    /// Extra librdkafka settings for consumers only, after `client`.
    pub consumer: Properties,
}

impl KafkaConfig {
    /// How the clients reach the brokers.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            fetch_wait_max_ms: self.fetch_wait_max_ms,
            session_timeout_ms: self.session_timeout_ms,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            security: self.security.clone(),
            client: self.client.clone(),
            producer: self.producer.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            content_topic: "cordon.content".into(),
            verdicts_topic: "cordon.verdicts".into(),
            dead_letter_topic: "cordon.content.dlq".into(),
            reports_topic: "cordon.reports".into(),
            outcomes_topic: "cordon.report-outcomes".into(),
            worker_group: "cordon-worker".into(),
            reports_group: "cordon-reports".into(),
            context_topic: "cordon.context".into(),
            context_group: "cordon-context".into(),
            create_topics: true,
            partitions: 4,
            replication_factor: 3,
            min_insync_replicas: 2,
            compact_content: true,
            delivery_timeout_secs: 30,
            max_message_bytes: 1_000_000,
            fetch_wait_max_ms: cordon_stream::DEFAULT_FETCH_WAIT_MAX_MS,
            session_timeout_ms: cordon_stream::DEFAULT_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms: cordon_stream::DEFAULT_HEARTBEAT_INTERVAL_MS,
            connect_timeout_secs: 10,
            security: KafkaSecurity::default(),
            client: Properties::default(),
            producer: Properties::default(),
            consumer: Properties::default(),
        }
    }
}

/// Review database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL connection string; a password in it prints as `***`.
    pub url: ConnectionUrl,
    /// The database password, if not in `url`; never printed. Or `password_file`.
    pub password: Secret,
    /// File holding the database password (a mounted secret), instead of `password`.
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA that signs the server's certificate, for `sslmode=verify-ca` or
    /// `verify-full` in `url` (unset: the system's CAs).
    pub ca_file: Option<PathBuf>,
    /// Connection pool size.
    pub max_connections: u32,
    /// Seconds a request waits for a connection before it fails with a clear error.
    pub acquire_timeout_secs: u64,
}

impl DatabaseConfig {
    /// The URL to connect with: `url`, with `password` and `ca_file` (as `sslrootcert`) put
    /// in when they are set.
    pub fn connect_url(&self) -> Result<String> {
        let ca_file = self.ca_file.as_ref().filter(|p| !p.as_os_str().is_empty());
        if self.password.is_empty() && ca_file.is_none() {
            return Ok(self.url.expose().to_string());
        }
        let mut url = url::Url::parse(self.url.expose())
            .with_context(|| format!("database.url {} is not a URL", self.url))?;
        if !self.password.is_empty() {
            url.set_password(Some(self.password.expose()))
                .map_err(|()| {
                    anyhow::anyhow!("database.url {} cannot carry a password", self.url)
                })?;
        }
        if let Some(ca) = ca_file {
            url.query_pairs_mut()
                .append_pair("sslrootcert", &ca.display().to_string());
        }
        Ok(url.to_string())
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: ConnectionUrl::new("postgres://postgres@127.0.0.1:5432/cordon"),
            password: Secret::default(),
            password_file: None,
            ca_file: None,
            max_connections: 8,
            acquire_timeout_secs: 5,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Stopping on SIGTERM or SIGINT.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds the process may take to finish in-flight batches and commit the index and offsets
    /// after the first signal; then it exits with status 1 (state stays consistent: unfinished
    /// work is redelivered). A second signal exits at once.
    pub deadline_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { deadline_secs: 30 }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info,cordon=debug`; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Config {
    /// Loads defaults, then `file` if given, then `CORDON_*` environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
            figment = figment.merge(Toml::file(path));
        }
        let from_files = file_overrides()?;
        let handled: Vec<String> = from_files.iter().map(|f| f.variable.clone()).collect();
        figment = figment.merge(
            Env::prefixed("CORDON_")
                .filter(move |key| {
                    key.as_str().contains("__")
                        && !handled.iter().any(|h| key.as_str().eq_ignore_ascii_case(h))
                })
                .split("__"),
        );
        for f in from_files {
            figment = figment.merge((f.option, f.content));
        }
        let mut config: Config = figment.extract().context("invalid configuration")?;
        config.kafka.security = std::mem::take(&mut config.kafka.security).resolve()?;
        let db = &mut config.database;
        db.password = std::mem::take(&mut db.password)
            .or_file("database.password", db.password_file.as_deref())?;
        db.password_file = None;
        anyhow::ensure!(
            config
                .context
                .band_low
                .is_none_or(|b| (0.0..1.0).contains(&b)),
            "context.band_low must be in [0, 1)"
        );
        anyhow::ensure!(
            config.context.batch_size >= 1 && config.context.sessions >= 1,
            "context.batch_size and context.sessions must be at least 1"
        );
        anyhow::ensure!(
            !config.console.reasons.is_empty(),
            "console.reasons must name at least one reason code"
        );
        anyhow::ensure!(
            config.api.listen != config.ops.listen,
            "api.listen and ops.listen must differ (metrics stay off the public listener)"
        );
        anyhow::ensure!(
            config.kafka.partitions >= 1
                && (1..=config.kafka.replication_factor)
                    .contains(&config.kafka.min_insync_replicas),
            "kafka.partitions must be at least 1, and kafka.min_insync_replicas between 1 and \
             kafka.replication_factor"
        );
        anyhow::ensure!(
            config.worker.batch_size > 0,
            "worker.batch_size must be > 0"
        );
        anyhow::ensure!(
            config.worker.batches_in_flight > 0,
            "worker.batches_in_flight must be > 0"
        );
        let r = &config.reports;
        for (id, secret) in r
            .platform_keys
            .iter()
            .chain(r.trusted_flaggers.iter().map(|(id, f)| (id, &f.secret)))
        {
            anyhow::ensure!(
                (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "reports: key id `{id}` must be 1 to 64 letters, digits and - _ ."
            );
            anyhow::ensure!(
                secret.expose().len() >= 32,
                "reports: the secret of key `{id}` must have at least 32 characters"
            );
        }
        anyhow::ensure!(
            r.platform_keys
                .keys()
                .all(|id| !r.trusted_flaggers.contains_key(id)),
            "reports: a key id names both a platform key and a trusted flagger"
        );
        anyhow::ensure!(
            r.hold_at > 0.0 && r.trusted_flaggers.values().all(|f| f.weight > 0.0),
            "reports: hold_at and flagger weights must be > 0"
        );
        let session_ms: u64 = config
            .kafka
            .consumer
            .get("session.timeout.ms")
            .or_else(|| config.kafka.client.get("session.timeout.ms"))
            .map(|v| v.parse())
            .transpose()
            .context("kafka.consumer.\"session.timeout.ms\" must be a number")?
            .unwrap_or(config.kafka.session_timeout_ms);
        anyhow::ensure!(
            config.kafka.heartbeat_interval_ms < config.kafka.session_timeout_ms,
            "kafka.heartbeat_interval_ms must be below kafka.session_timeout_ms"
        );
        anyhow::ensure!(
            config.worker.fence_after_ms < session_ms,
            "worker.fence_after_ms ({}) must be below the group session timeout ({session_ms} ms)",
            config.worker.fence_after_ms
        );
        config
            .statements
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config
            .appeals
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config
            .strikes
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config
            .transparency
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        anyhow::ensure!(
            config.worker.dead_letter_max_bytes + 32 * 1024 <= config.kafka.max_message_bytes,
            "worker.dead_letter_max_bytes must leave 32 KiB for headers under kafka.max_message_bytes"
        );
        Ok(config)
    }
}

/// An option set from a file by the `_FILE` convention.
struct FromFile {
    /// The environment variable, without `CORDON_`.
    variable: String,
    /// The option's dotted path.
    option: String,
    /// The file's content.
    content: String,
}

/// The `_FILE` convention: `CORDON_<SECTION>__<KEY>_FILE=/path` sets the option to the file's
/// content (one trailing newline removed), so that every secret — a platform key, a flagger's
/// secret, a password — can come from a mounted file, as Kubernetes secrets are. Where
/// `<key>_file` is an option of its own (`database.password_file`), the variable sets that
/// option instead, which reads the file the same way.
fn file_overrides() -> Result<Vec<FromFile>> {
    let mut overrides = Vec::new();
    for (name, file) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let Some(variable) = name.strip_prefix("CORDON_") else {
            continue;
        };
        let Some(option) = variable.strip_suffix("_FILE").filter(|n| n.contains("__")) else {
            continue;
        };
        let path = option.to_lowercase().replace("__", ".");
        // `<key>_file` is an option of its own when the defaults take it but not just any other
        // name there (a table of free-form entries, like reports.platform_keys, takes any).
        // Asked of the defaults alone, so that a mistake elsewhere in the operator's file cannot
        // change the answer.
        let takes = |key: String| {
            Figment::from(Serialized::defaults(Config::default()))
                .merge((key, "/"))
                .extract::<Config>()
                .is_ok()
        };
        if takes(format!("{path}_file")) && !takes(format!("{path}_file_not_an_option")) {
            continue;
        }
        let content = std::fs::read_to_string(&file)
            .with_context(|| format!("{name}: reading {}", Path::new(&file).display()))?;
        let content = content
            .strip_suffix('\n')
            .map(|c| c.strip_suffix('\r').unwrap_or(c))
            .unwrap_or(&content);
        overrides.push(FromFile {
            variable: variable.to_string(),
            option: path,
            content: content.to_string(),
        });
    }
    Ok(overrides)
}

/// The documented reference configuration, printed by `cordon config --reference`.
pub const REFERENCE: &str = include_str!("../../../deploy/cordon.toml");

#[cfg(test)]
mod tests {
    use cordon_domain::Category;

    use super::*;

    fn keys(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if matches!(v, toml::Value::Table(_)) && !v.as_table().is_some_and(|t| t.is_empty())
                {
                    keys(&path, v, out);
                } else {
                    out.push(path);
                }
            }
        }
    }

    #[test]
    fn reference_documents_every_option_and_parses() {
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        let mut all = Vec::new();
        keys("", &defaults, &mut all);
        let reference = REFERENCE.to_string();
        for key in all {
            if reference.contains(&format!("[{key}]")) {
                continue; // a table of free-form entries, documented as a section
            }
            let (section, name) = key.rsplit_once('.').unwrap_or(("", &key));
            assert!(
                reference.contains(&format!("[{section}]")),
                "deploy/cordon.toml lacks section [{section}]"
            );
            assert!(
                reference.contains(&format!("\n{name} =")),
                "deploy/cordon.toml does not document `{key}`"
            );
        }
        let parsed: Config = toml::from_str(REFERENCE).expect("reference parses");
        assert_eq!(parsed.kafka.brokers, Config::default().kafka.brokers);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail dictates the closure type.
    fn file_and_env_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"b:1\"\n[policy.thresholds.drugs]\nreview_at = 0.4\nsuppress_at = 0.8\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("CORDON_WORKER__BATCH_SIZE", "7");
            let c = Config::load(Some(&path)).expect("loads");
            assert_eq!(c.kafka.brokers, "b:1");
            assert_eq!(c.worker.batch_size, 7);
            assert_eq!(c.policy.thresholds[&Category::Drugs].review_at, 0.4);
            std::fs::write(&path, "[kafka]\nbrokerz = \"typo\"\n").unwrap();
            // A mistake in the file is reported as itself, whatever _FILE variables are set.
            jail.set_env("CORDON_DATABASE__CA_FILE", "/no/such/ca.pem");
            let err = format!("{:#}", Config::load(Some(&path)).unwrap_err());
            assert!(err.contains("brokerz"), "{err}");
            Ok(())
        });
    }

    /// `Config::load` of `path` with no environment variables at all, in a jail of its own:
    /// other tests set `CORDON_*` variables in theirs, which must not leak into this one.
    #[allow(clippy::result_large_err)] // figment::Jail dictates the closure type.
    fn isolated(path: &Path) -> Result<Config> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            loaded = Some(Config::load(Some(path)));
            Ok(())
        });
        loaded.expect("the jail ran")
    }

    #[test]
    fn a_statements_mapping_the_database_would_refuse_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[statements.categories.hacking]\nground = \"DECISION_GROUND_ILLEGAL_CONTENT\"\n\
             legal_ground = \"x\"\nexplanation = \"y\"\n\
             category = \"STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY\"\n\
             keywords = [\"KEYWORD_MADE_UP\"]\n",
        )
        .unwrap();
        let error = format!("{:#}", isolated(&path).unwrap_err());
        assert!(error.contains("KEYWORD_MADE_UP"), "{error}");
        std::fs::write(&path, "[statements]\nterritorial_scope = [\"US\"]\n").unwrap();
        let error = format!("{:#}", isolated(&path).unwrap_err());
        assert!(error.contains("statements.territorial_scope"), "{error}");
        // The other categories keep their defaults when one is set.
        std::fs::write(
            &path,
            "[statements.categories.hacking]\nground = \"DECISION_GROUND_INCOMPATIBLE_CONTENT\"\n\
             legal_ground = \"Terms 4.2\"\nexplanation = \"y\"\n\
             category = \"STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY\"\n",
        )
        .unwrap();
        let config = isolated(&path).unwrap();
        assert_eq!(
            config.statements.categories.hacking.legal_ground,
            "Terms 4.2"
        );
        assert_eq!(
            config.statements.categories.drugs,
            cordon_statements::CategoryGrounds::default().drugs
        );
    }

    #[test]
    fn secrets_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let secret = "a platform key that must never be printed";
        std::fs::write(
            &path,
            format!("[kafka.security]\nprotocol = \"sasl_ssl\"\nsasl_username = \"u\"\nsasl_password = \"{secret}\"\n\
                     [kafka.client]\n\"sasl.oauthbearer.client.secret\" = \"{secret}\"\n\
                     [kafka.producer]\n\"ssl.key.password\" = \"{secret}\"\n\
                     [database]\nurl = \"postgres://cordon:{secret}@db/cordon?password={secret}\"\n\
                     [reports.platform_keys]\nk1 = \"{secret}\"\n[reports.trusted_flaggers.hotline]\nname = \"Hotline\"\nsecret = \"{secret}\"\n"),
        )
        .unwrap();
        let config = isolated(&path).unwrap();
        assert_eq!(config.reports.platform_keys["k1"].expose(), secret);
        let printed = toml::to_string_pretty(&config).unwrap();
        assert!(
            !printed.contains(secret) && printed.contains(cordon_secret::REDACTED),
            "{printed}"
        );
        assert!(!format!("{config:?}").contains(secret));
        assert_eq!(config.kafka.security.sasl_password.expose(), secret);
        assert!(!format!("{:?}", config.kafka.settings()).contains(secret));
        let password_file = dir.path().join("pw");
        std::fs::write(&password_file, "p@ss word\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "[database]\nurl = \"postgres://cordon@db:5432/cordon\"\npassword_file = \"{}\"\n",
                password_file.display()
            ),
        )
        .unwrap();
        let config = isolated(&path).unwrap();
        assert_eq!(
            config.database.connect_url().unwrap(),
            "postgres://cordon:p%40ss%20word@db:5432/cordon"
        );
        assert!(!toml::to_string_pretty(&config).unwrap().contains("p@ss"));
        std::fs::write(&path, "[reports.platform_keys]\nk1 = \"short\"\n").unwrap();
        assert!(isolated(&path).is_err(), "a short key is refused");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail dictates the closure type.
    fn any_option_can_come_from_a_file_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("platform-key");
        std::fs::write(&key, "k".repeat(40) + "\n").unwrap();
        let password = dir.path().join("db-password");
        std::fs::write(&password, "from the mounted secret\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("CORDON_REPORTS__PLATFORM_KEYS__K1_FILE", key.display());
            // database.password_file is an option of its own: it takes the path.
            jail.set_env("CORDON_DATABASE__PASSWORD_FILE", password.display());
            jail.set_env("CORDON_DATABASE__CA_FILE", "/etc/cordon/ca.pem");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.reports.platform_keys["k1"].expose(), "k".repeat(40));
            assert_eq!(c.reports.platform_keys.len(), 1, "no key named k1_file");
            assert_eq!(c.database.password.expose(), "from the mounted secret");
            assert_eq!(
                c.database.ca_file.as_deref(),
                Some(Path::new("/etc/cordon/ca.pem"))
            );
            jail.set_env(
                "CORDON_KAFKA__SECURITY__SASL_PASSWORD_FILE",
                "/no/such/file",
            );
            let err = format!("{:#}", Config::load(None).unwrap_err());
            assert!(err.contains("sasl_password_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn no_batches_in_flight_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[worker]\nbatches_in_flight = 0\n").unwrap();
        let err = format!("{:#}", isolated(&path).unwrap_err());
        assert!(
            err.contains("worker.batches_in_flight must be > 0"),
            "{err}"
        );
    }
}
