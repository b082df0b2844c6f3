//! The one configuration struct: defaults, then the TOML file, then `CORDON_*` environment
//! variables (`CORDON_KAFKA__BROKERS=...`: sections and keys joined by a double underscore).
//! `deploy/cordon.toml` documents every option.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cordon_domain::{Category, Thresholds};
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
    /// Metrics and health.
    pub ops: OpsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The context stage (docs/model.md): the worker sends it the items whose fast scores are in the
/// band, the context role decides them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// Send in-band items to the context stage (and run the context role under `--role all`); off,
    /// the fast model decides every item. Turn it on only with a context role running: the worker
    /// queues no case for what it sends there.
    pub enabled: bool,
    /// Directory holding `head.onnx` and its card `context.json`.
    pub dir: PathBuf,
    /// The encoder directory; empty means `$CORDON_CACHE/encoder/multilingual-e5-small`.
    pub encoder: PathBuf,
    /// Lowest top fast score sent to the context stage; unset means the context card's.
    pub band_low: Option<f32>,
    /// Where the encoder and head run: `cpu` or `cuda`.
    pub device: cordon_context::Device,
    /// Parallel encoder sessions.
    pub sessions: usize,
    /// Intra-op threads per encoder session.
    pub threads: usize,
    /// Most items encoded together.
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill.
    pub batch_linger_ms: u64,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            enabled: false,
            dir: "models/cordon-context".into(),
            encoder: PathBuf::new(),
            band_low: None,
            device: cordon_context::Device::Cpu,
            sessions: 1,
            threads: 1,
            batch_size: 16,
            batch_linger_ms: 20,
        }
    }
}

impl ContextConfig {
    /// The encoder directory to load.
    pub fn encoder_dir(&self) -> PathBuf {
        if self.encoder.as_os_str().is_empty() {
            cache_dir().join("encoder/multilingual-e5-small")
        } else {
            self.encoder.clone()
        }
    }
}

/// The console's media proxy: images reach moderators only through Cordon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest image fetched, in bytes.
    pub max_bytes: usize,
    /// Seconds one fetch may take.
    pub timeout_secs: u64,
    /// Fetches that run at once.
    pub max_concurrent: usize,
    /// Fetch from private, loopback and link-local addresses too (only for test set-ups: on a
    /// production network it lets content reach internal services).
    pub allow_private_addresses: bool,
    /// Hosts (and their subdomains) never fetched from.
    pub deny_hosts: Vec<String>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_bytes: 5 * 1024 * 1024,
            timeout_secs: 10,
            max_concurrent: 8,
            allow_private_addresses: false,
            deny_hosts: Vec::new(),
        }
    }
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
    /// Consumer group of the workers.
    pub worker_group: String,
    /// Topic of the items the worker sends the context stage (keyed by item id).
    pub context_topic: String,
    /// Consumer group of the context role.
    pub context_group: String,
    /// Create missing topics at start.
    pub create_topics: bool,
    /// Partitions of topics Cordon creates.
    pub partitions: i32,
    /// Seconds a produced record may wait for acknowledgement before the batch is retried.
    pub delivery_timeout_secs: u64,
    /// Largest record Cordon produces, in bytes (librdkafka's `message.max.bytes`); keep it at
    /// most the broker's limit. A larger record is set aside, never retried.
    pub max_message_bytes: usize,
    /// Extra librdkafka settings for every client (e.g. `"security.protocol" = "SASL_SSL"`).
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            content_topic: "cordon.content".into(),
            verdicts_topic: "cordon.verdicts".into(),
            dead_letter_topic: "cordon.content.dlq".into(),
            reports_topic: "cordon.reports".into(),
            worker_group: "cordon-worker".into(),
            context_topic: "cordon.context".into(),
            context_group: "cordon-context".into(),
            create_topics: true,
            partitions: 4,
            delivery_timeout_secs: 30,
            max_message_bytes: 1_000_000,
            client: BTreeMap::new(),
        }
    }
}

/// Review database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL connection string.
    pub url: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// Seconds a request waits for a connection before it fails with a clear error.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "postgres://postgres@127.0.0.1:5432/cordon".into(),
            max_connections: 8,
            acquire_timeout_secs: 5,
        }
    }
}

/// Classifier settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Directory holding `model.onnx` and `model.json`.
    pub dir: PathBuf,
    /// Path of `libonnxruntime.so`; empty means `$ORT_DYLIB_PATH`, then the set-up script's cache.
    pub onnxruntime: PathBuf,
    /// Parallel inference sessions.
    pub sessions: usize,
    /// Intra-op threads per session.
    pub threads: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dir: "models/cordon-linear".into(),
            onnxruntime: PathBuf::new(),
            sessions: 1,
            threads: 1,
        }
    }
}

impl ModelConfig {
    /// The ONNX Runtime library to load.
    pub fn onnxruntime_path(&self) -> PathBuf {
        if !self.onnxruntime.as_os_str().is_empty() {
            return self.onnxruntime.clone();
        }
        if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
            return p.into();
        }
        cache_dir().join("lib/libonnxruntime.so")
    }
}

/// Where the set-up script caches downloads and builds.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("CORDON_CACHE") {
        return p.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/cordon")
}

/// Per-category threshold overrides; categories not named keep the model card's thresholds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Thresholds by category name (`drugs`, `weapons`, `counterfeit`, `stolen_data`, `hacking`,
    /// `other_illegal`).
    pub thresholds: BTreeMap<Category, Thresholds>,
}

/// Worker settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Most messages classified together.
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill once its first message arrived.
    pub batch_linger_ms: u64,
    /// Batches handed to the producer and not yet acknowledged while the next one is scored
    /// (their offsets are stored, in order, once acknowledged).
    pub batches_in_flight: usize,
    /// Largest accepted message in bytes; larger ones are dead-lettered.
    pub max_message_bytes: usize,
    /// Largest accepted `text` in bytes; longer ones are dead-lettered.
    pub max_text_bytes: usize,
    /// Most payload bytes a dead letter copies; a longer payload is cut (the original size and
    /// SHA-256 travel in headers).
    pub dead_letter_max_bytes: usize,
    /// Milliseconds between retries when the database or Kafka is unavailable.
    pub retry_backoff_ms: u64,
    /// A batch whose version snapshot is older than this many milliseconds when it is handed
    /// to the producer (the worker stalled: a pause, an outage) has its versions checked again,
    /// and verdicts a newer version overtook are dropped. Keep it below the group's
    /// `session.timeout.ms` (librdkafka's default is 45000).
    pub fence_after_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch_size: 256,
            batch_linger_ms: 20,
            batches_in_flight: 4,
            max_message_bytes: 256 * 1024,
            max_text_bytes: 64 * 1024,
            dead_letter_max_bytes: 256 * 1024,
            retry_backoff_ms: 500,
            fence_after_ms: 3000,
        }
    }
}

/// Indexer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Index directory.
    pub dir: PathBuf,
    /// Milliseconds between index commits while changes are pending (bounds suppression latency).
    pub commit_interval_ms: u64,
    /// Writer memory budget in MiB.
    pub writer_memory_mb: usize,
    /// Pre-moderation: hide new items until their verdict arrives, and review items until a
    /// person decides.
    pub premoderation: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dir: ".cordon/index".into(),
            commit_interval_ms: 100,
            writer_memory_mb: 64,
            premoderation: false,
        }
    }
}

/// HTTP API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: String,
    /// Largest page of search results or cases.
    pub max_page_size: usize,
    /// Deepest public search result a page may reach (`page × per_page`): a deeper page costs
    /// memory in proportion to its depth.
    pub max_search_depth: usize,
    /// Longest public search query (`q`), in bytes.
    pub max_query_bytes: usize,
    /// Largest request body, in bytes (larger ones get 413).
    pub max_body_bytes: usize,
    /// Milliseconds between outbox relay rounds.
    pub outbox_interval_ms: u64,
    /// Seconds a claimed case stays with its moderator before it returns to the queue.
    pub claim_lease_secs: u64,
    /// Sign-in attempts one client address may make per minute (more get 429).
    pub sign_ins_per_minute: u32,
    /// Public searches one client address may make per second (more get 429).
    pub searches_per_second: u32,
    /// Reports one client address may send per second (the platform's backend sends its users'
    /// reports from few addresses: size this for it).
    pub reports_per_second: u32,
    /// Connections open at once; past it new connections are closed at once.
    pub max_connections: usize,
    /// Connections one peer address may hold open at once (`auth.trusted_proxies` excepted:
    /// their connections carry many clients).
    pub max_connections_per_client: usize,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body (408 after).
    pub body_timeout_secs: u64,
    /// Seconds a request may take in all before it is answered 503.
    pub request_timeout_secs: u64,
}

/// A secret (a signing key): read from the configuration, never printed — `Debug` and
/// serialization (`cordon config`) show `<redacted>`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes, for the one place that uses them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// A trusted flagger (DSA Art. 22): its own signing key and the weight of its reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedFlagger {
    /// Its name, as moderators see it.
    pub name: String,
    /// The key it signs reports with.
    pub secret: Secret,
    /// The weight of one of its reports (a new signed reporter weighs 1).
    #[serde(default = "flagger_weight")]
    pub weight: f32,
}

fn flagger_weight() -> f32 {
    3.0
}

/// User reports (`POST /v1/reports` and the reports topic).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Reports one reporter may file per hour (more get 429).
    pub per_reporter_per_hour: i64,
    /// Reports one item may receive per hour in each lane from everyone together (more get 429).
    pub per_item_per_hour: i64,
    /// Vouched weight that holds an item until a moderator decides (a new signed reporter
    /// weighs 1; rejected reports make a reporter weigh less).
    pub hold_at: f32,
    /// Accept reports without a signature (lane `unverified`): recorded and queued, but they
    /// hold nothing and raise no priority.
    pub accept_unsigned: bool,
    /// Keys the platform's backend signs reporter identities with, by key id. Several at once
    /// let a key be rotated: add the new one, switch the backend, remove the old one.
    pub platform_keys: BTreeMap<String, Secret>,
    /// Trusted flaggers by key id.
    pub trusted_flaggers: BTreeMap<String, TrustedFlagger>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            per_reporter_per_hour: 20,
            per_item_per_hour: 100,
            hold_at: 3.0,
            accept_unsigned: false,
            platform_keys: BTreeMap::new(),
            trusted_flaggers: BTreeMap::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".into(),
            max_page_size: 100,
            max_search_depth: 10_000,
            max_query_bytes: 512,
            max_body_bytes: 64 * 1024,
            outbox_interval_ms: 200,
            claim_lease_secs: 300,
            sign_ins_per_minute: 10,
            searches_per_second: 20,
            reports_per_second: 200,
            max_connections: 1024,
            max_connections_per_client: 64,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            request_timeout_secs: 10,
        }
    }
}

/// How moderators prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Argon2 passwords and session cookies.
    Password,
    /// A trusted single-sign-on proxy names the user.
    Proxy,
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

/// How moderators sign in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `password` (argon2 passwords, session cookies) or `proxy` (a trusted reverse proxy names
    /// the user in `proxy_header`; the account must exist and its role comes from Cordon).
    pub mode: AuthMode,
    /// The header the single-sign-on proxy sets to the signed-in user name (`proxy` mode).
    pub proxy_header: String,
    /// Peer addresses allowed to set `proxy_header`; the header is ignored from anyone else.
    pub trusted_proxies: Vec<String>,
    /// Hours a session lasts.
    pub session_hours: u64,
    /// Password hashes (sign-ins, password changes) that run at once; each takes ~19 MiB for
    /// a moment. More wait up to 5 s, then get 429.
    pub max_concurrent_hashes: usize,
    /// Mark the session cookie `Secure` (sent only over HTTPS; browsers also allow it on
    /// http://localhost). Turn off only for plain-HTTP test set-ups on other hosts.
    pub secure_cookies: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Password,
            proxy_header: "x-forwarded-user".into(),
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            session_hours: 12,
            max_concurrent_hashes: 2,
            secure_cookies: true,
        }
    }
}

/// The moderator console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Seconds a keyboard decision waits before it is sent, so `u` can undo it.
    pub undo_secs: u64,
    /// Cases shown on the queue page.
    pub page_size: i64,
    /// Other items of the channel shown beside a case.
    pub channel_items: usize,
    /// Policy reason codes a moderator picks from when deciding.
    pub reasons: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            undo_secs: 5,
            page_size: 50,
            channel_items: 10,
            reasons: [
                "illegal_drugs",
                "illegal_weapons",
                "counterfeit",
                "stolen_data",
                "hacking_services",
                "other_illegal_trade",
                "not_illegal",
                "news_or_education",
                "legal_business",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
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
        let config: Config = figment
            .merge(
                Env::prefixed("CORDON_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .context("invalid configuration")?;
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
            .client
            .get("session.timeout.ms")
            .map(|v| v.parse())
            .transpose()
            .context("kafka.client.\"session.timeout.ms\" must be a number")?
            .unwrap_or(45_000);
        anyhow::ensure!(
            config.worker.fence_after_ms < session_ms,
            "worker.fence_after_ms ({}) must be below the group session timeout ({session_ms} ms)",
            config.worker.fence_after_ms
        );
        anyhow::ensure!(
            config.worker.dead_letter_max_bytes + 32 * 1024 <= config.kafka.max_message_bytes,
            "worker.dead_letter_max_bytes must leave 32 KiB for headers under kafka.max_message_bytes"
        );
        Ok(config)
    }
}

/// The documented reference configuration, printed by `cordon config --reference`.
pub const REFERENCE: &str = include_str!("../../../deploy/cordon.toml");

#[cfg(test)]
mod tests {
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
            Ok(())
        });
        std::fs::write(&path, "[kafka]\nbrokerz = \"typo\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        assert!(err.contains("brokerz"), "{err}");
    }

    #[test]
    fn secrets_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let secret = "a platform key that must never be printed";
        std::fs::write(
            &path,
            format!("[reports.platform_keys]\nk1 = \"{secret}\"\n[reports.trusted_flaggers.hotline]\nname = \"Hotline\"\nsecret = \"{secret}\"\n"),
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(
            config.reports.platform_keys["k1"].expose(),
            secret.as_bytes()
        );
        let printed = toml::to_string_pretty(&config).unwrap();
        assert!(
            !printed.contains(secret) && printed.contains("<redacted>"),
            "{printed}"
        );
        assert!(!format!("{config:?}").contains(secret));
        std::fs::write(&path, "[reports.platform_keys]\nk1 = \"short\"\n").unwrap();
        assert!(Config::load(Some(&path)).is_err(), "a short key is refused");
    }

    #[test]
    fn no_batches_in_flight_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[worker]\nbatches_in_flight = 0\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("worker.batches_in_flight must be > 0"),
            "{err}"
        );
    }
}
