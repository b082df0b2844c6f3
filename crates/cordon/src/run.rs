//! `cordon run`: the composition root. Builds each role's settings from the configuration,
//! connects the shared dependencies (brokers, review database), starts the roles the command
//! line names, and waits for them; a role that fails stops the others.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cordon_domain::DecodeLimits;
use cordon_index::SearchHandle;
use cordon_ops::{watch_signals, Metrics, Readiness};
use cordon_review::ReviewStore;
use cordon_stream::{check_connection, ensure_topics, KafkaSettings, Publisher, TopicSpec};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;

/// What a `cordon run` process does (`--role`, comma-separated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Every role below (the context role only when `context.enabled`).
    All,
    /// Classifies the content topic in the worker group.
    Worker,
    /// Maintains the search index from the content and verdicts topics.
    Indexer,
    /// Search, item and review endpoints, the console, the outbox relay, the report consumer.
    Api,
    /// Decides the items the worker sends the context stage.
    Context,
}

/// The topics of the classifying roles.
fn topics(config: &Config) -> cordon_worker::Topics {
    let k = &config.kafka;
    cordon_worker::Topics {
        content: k.content_topic.clone(),
        verdicts: k.verdicts_topic.clone(),
        dead_letter: k.dead_letter_topic.clone(),
        context: k.context_topic.clone(),
    }
}

fn worker_settings(config: &Config) -> Result<cordon_worker::WorkerSettings> {
    Ok(cordon_worker::WorkerSettings {
        worker: config.worker.clone(),
        topics: topics(config),
        group: config.kafka.worker_group.clone(),
        context_band: cordon_worker::band_low(&config.context)?,
    })
}

fn context_settings(config: &Config) -> cordon_worker::ContextSettings {
    cordon_worker::ContextSettings {
        context: config.context.clone(),
        topics: topics(config),
        group: config.kafka.context_group.clone(),
        retry_backoff: Duration::from_millis(config.worker.retry_backoff_ms),
        fence_after: Duration::from_millis(config.worker.fence_after_ms),
    }
}

fn indexer_settings(config: &Config) -> cordon_indexer::IndexerSettings {
    cordon_indexer::IndexerSettings {
        index: config.index.clone(),
        content_topic: config.kafka.content_topic.clone(),
        verdicts_topic: config.kafka.verdicts_topic.clone(),
        limits: DecodeLimits {
            max_message_bytes: config.worker.max_message_bytes,
            max_text_bytes: config.worker.max_text_bytes,
        },
    }
}

fn api_settings(config: &Config) -> cordon_api::ApiSettings {
    cordon_api::ApiSettings {
        api: config.api.clone(),
        auth: config.auth.clone(),
        reports: config.reports.clone(),
        console: config.console.clone(),
        media: config.media.clone(),
        verdicts_topic: config.kafka.verdicts_topic.clone(),
        reports_topic: config.kafka.reports_topic.clone(),
        outcomes_topic: config.kafka.outcomes_topic.clone(),
        reports_group: config.kafka.reports_group.clone(),
    }
}

fn listeners(config: &Config) -> cordon_api::Listeners {
    cordon_api::Listeners {
        ops: config.ops.listen.clone(),
        api: config.api.listen.clone(),
        limits: config.api.clone(),
        trusted_proxies: config.auth.trusted_proxies.clone(),
    }
}

/// Connects to the review database (and migrates it), waiting while it is unavailable.
async fn connect_store(config: &Config, shutdown: &CancellationToken) -> Result<ReviewStore> {
    let db = &config.database;
    loop {
        match ReviewStore::connect(
            &db.connect_url()?,
            db.max_connections,
            Duration::from_secs(db.acquire_timeout_secs),
        )
        .await
        {
            Ok(store) => return Ok(store),
            Err(e) if e.is_unavailable() => {
                warn!(error = %e, "review database unavailable; retrying in 2 s");
                tokio::select! {
                    _ = shutdown.cancelled() => bail!("shut down before the database was reachable"),
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "preparing the review database at {} (check database.url, its sslmode, \
                         and database.ca_file)",
                        db.url
                    )
                })
            }
        }
    }
}

async fn create_topics(config: &Config, kafka: &KafkaSettings) -> Result<()> {
    let k = &config.kafka;
    info!(brokers = %k.brokers, "creating missing topics");
    let spec = |name: &str, compacted| TopicSpec {
        name: name.to_string(),
        partitions: k.partitions,
        replication_factor: k.replication_factor,
        min_insync_replicas: k.min_insync_replicas,
        compacted,
    };
    ensure_topics(
        kafka,
        &[
            spec(&k.content_topic, k.compact_content),
            spec(&k.verdicts_topic, true),
            spec(&k.dead_letter_topic, false),
            spec(&k.reports_topic, false),
            spec(&k.outcomes_topic, false),
            spec(&k.context_topic, false),
        ],
    )
    .await
    .with_context(|| format!("creating topics on {}", k.brokers))
}

/// Runs the named roles until a signal (or a role's failure) stops them.
pub async fn run(config: Config, roles: &[Role]) -> Result<ExitCode> {
    let all = roles.contains(&Role::All);
    let has = |r: Role| all || roles.contains(&r);
    // The context role runs under `all` only when the context stage is on.
    let context_role = roles.contains(&Role::Context) || (all && config.context.enabled);
    let shutdown = CancellationToken::new();
    watch_signals(
        shutdown.clone(),
        Duration::from_secs(config.shutdown.deadline_secs),
    );
    let metrics = Metrics::new();
    let readiness = Readiness::default();
    let kafka = config.kafka.settings();
    check_connection(
        &kafka,
        Duration::from_secs(config.kafka.connect_timeout_secs),
    )
    .await?;
    info!(brokers = %kafka.brokers, protocol = ?kafka.security.protocol, "connected to Kafka");
    if config.kafka.create_topics {
        create_topics(&config, &kafka).await?;
    }
    let publisher = || {
        Publisher::new(
            &kafka,
            Duration::from_secs(config.kafka.delivery_timeout_secs),
            config.kafka.max_message_bytes,
        )
    };
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let mut search: Option<SearchHandle> = None;

    if has(Role::Indexer) {
        let (handle, indexer) = cordon_indexer::start(
            indexer_settings(&config),
            &kafka,
            metrics.clone(),
            &readiness,
            shutdown.clone(),
        )?;
        search = Some(handle);
        tasks.spawn(async move { indexer.await.context("indexer") });
        info!(dir = %config.index.dir.display(), "indexer role started");
    }

    let mut store = None;
    if has(Role::Worker) || has(Role::Api) || context_role {
        store = Some(
            connect_store(&config, &shutdown)
                .await?
                .with_concurrent_hashes(config.auth.max_concurrent_hashes)
                .with_statements(config.statements.clone())
                .with_appeals(config.appeals.clone())
                .with_strikes(config.strikes.clone()),
        );
    }
    let deps = |store: &Option<ReviewStore>| -> Result<cordon_worker::Deps> {
        Ok(cordon_worker::Deps {
            metrics: metrics.clone(),
            store: store.clone().context("the review store")?,
            kafka: kafka.clone(),
            publisher: publisher()?,
            readiness: readiness.clone(),
        })
    };

    if has(Role::Worker) {
        let worker = cordon_worker::start_worker(
            worker_settings(&config)?,
            config.model.clone(),
            config.policy.clone(),
            deps(&store)?,
            shutdown.clone(),
        )?;
        tasks.spawn(async move { worker.await.context("worker") });
    }

    if context_role {
        let role = cordon_worker::start_context(
            context_settings(&config),
            &config.model,
            deps(&store)?,
            shutdown.clone(),
        )?;
        tasks.spawn(async move { role.await.context("context role") });
    }

    let mut api = None;
    if has(Role::Api) {
        let search = match search {
            Some(s) => s,
            None => SearchHandle::open_shared(&config.index.dir)
                .context("opening the index (run the indexer role first)")?,
        };
        api = Some(cordon_api::start(
            api_settings(&config),
            cordon_api::ApiDeps {
                metrics: metrics.clone(),
                store: store.clone().context("the review store")?,
                search,
                publisher: publisher()?,
                kafka: kafka.clone(),
                readiness: readiness.clone(),
            },
            shutdown.clone(),
        )?);
        if config.transparency.enabled {
            let submitter = cordon_transparency::run(
                config.transparency.clone(),
                store.clone().context("the review store")?,
                metrics.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move { submitter.await.context("statement submitter") });
        }
    }
    // Every process serves metrics and health on ops.listen; the API role also serves the API,
    // the console and health on api.listen.
    let ops = cordon_api::OpsState {
        metrics: metrics.clone(),
        store,
        readiness,
    };
    for server in cordon_api::serve(&listeners(&config), ops, api, &shutdown).await? {
        tasks.spawn(async move {
            server.await;
            Ok(())
        });
    }

    let mut failed = false;
    while let Some(result) = tasks.join_next().await {
        let outcome = result.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            error!(error = format!("{e:#}"), "a role failed; stopping");
            failed = true;
            shutdown.cancel();
        }
    }
    info!("stopped");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
