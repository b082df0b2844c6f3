//! The commands behind the command line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cordon_classifier::init_runtime;
use cordon_domain::{ContentItem, DecodeLimits};
use cordon_index::{ContentIndex, IndexSettings, SearchHandle};
use cordon_review::ReviewStore;
use cordon_stream::rdkafka::consumer::StreamConsumer;
use cordon_stream::{ensure_topics, group_consumer, KafkaSettings, Publisher, Record, TopicSpec};
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, ApiState, OpsState};
use crate::config::{Config, REFERENCE};
use crate::indexer::Indexer;
use crate::metrics::Metrics;
use crate::model::ModelSlot;
use crate::worker::Worker;
use crate::{Cli, Command, UserCommand};

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config)?;
    match cli.command {
        Command::Run { role } => runtime()?.block_on(run(config, &role)),
        Command::Classify { input } => classify(&config, &input),
        Command::Produce {
            file,
            topic,
            no_validate,
        } => runtime()?.block_on(produce(&config, &file, topic, no_validate)),
        Command::Train {
            corpus,
            out,
            per_template,
            seed,
            epochs,
            learning_rate,
            l2,
            validation,
            eval,
        } => train(
            &config,
            corpus,
            out,
            per_template,
            cordon_train::SgdConfig {
                epochs,
                learning_rate,
                l2,
                seed,
            },
            validation,
            eval,
        ),
        Command::TrainContext {
            corpus,
            out,
            encoder,
            per_template,
            seed,
            train_texts,
            calibration_texts,
            test_texts,
            band_low,
            validation,
            eval,
            threads,
        } => train_context(
            &config,
            cordon_train::context::ContextOptions {
                corpus_dir: corpus,
                out_dir: out,
                fast_model: config.model.dir.clone(),
                encoder: encoder.unwrap_or_else(|| {
                    crate::config::cache_dir().join("encoder/multilingual-e5-small")
                }),
                per_template,
                seed,
                train_texts,
                calibration_texts,
                test_texts,
                band_low,
                targets: cordon_train::calibrate::Targets::default(),
                validation_file: validation.is_file().then_some(validation),
                eval_files: eval.into_iter().filter(|p| p.is_file()).collect(),
                cache_dir: crate::config::cache_dir().join("embeddings"),
                threads,
            },
        ),
        Command::Eval {
            data,
            context,
            encoder,
            json,
        } => eval(&config, &data, context.as_deref(), encoder, json),
        Command::User { action } => runtime()?.block_on(user(&config, action)),
        Command::Config { reference } => {
            if reference {
                print!("{REFERENCE}");
            } else {
                print!("{}", toml::to_string_pretty(&config)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `cordon user add|list`: account management from the command line (the first admin).
async fn user(config: &Config, action: UserCommand) -> Result<ExitCode> {
    let db = &config.database;
    let store = ReviewStore::connect(&db.url, 1, Duration::from_secs(db.acquire_timeout_secs))
        .await
        .with_context(|| format!("connecting to the review database at {}", db.url))?;
    match action {
        UserCommand::Add {
            username,
            role,
            sso,
        } => {
            let role = cordon_review::Role::parse(&role).with_context(|| {
                format!("role must be moderator, senior or admin, not `{role}`")
            })?;
            let password = if sso {
                None
            } else {
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    eprint!("password for {username} (input is shown; pipe it in to hide it): ");
                }
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                anyhow::ensure!(
                    !line.is_empty(),
                    "no password on standard input (use --sso for a single-sign-on account)"
                );
                Some(line)
            };
            let account = store.add_account("cli", &username, role, password).await?;
            println!("{}", serde_json::to_string(&account)?);
            info!(username = %account.username, role = role.as_str(), "account created");
        }
        UserCommand::List => {
            for account in store.accounts().await? {
                println!("{}", serde_json::to_string(&account)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logging(config: &Config) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.filter))
        .context("invalid log.filter")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == crate::config::LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

fn kafka_settings(config: &Config) -> KafkaSettings {
    KafkaSettings {
        brokers: config.kafka.brokers.clone(),
        client: config.kafka.client.clone(),
    }
}

async fn connect_store(config: &Config, shutdown: &CancellationToken) -> Result<ReviewStore> {
    let db = &config.database;
    loop {
        match ReviewStore::connect(
            &db.url,
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
            Err(e) => return Err(e).context("preparing the review database"),
        }
    }
}

/// Stops on SIGINT or SIGTERM; a second signal exits at once, and so does passing `deadline`.
fn watch_signals(shutdown: CancellationToken, deadline: Duration) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        info!(
            deadline_secs = deadline.as_secs(),
            "shutdown requested: finishing in-flight work (signal again to exit at once)"
        );
        shutdown.cancel();
        tokio::select! {
            _ = term.recv() => warn!("second signal: exiting at once"),
            _ = int.recv() => warn!("second signal: exiting at once"),
            _ = tokio::time::sleep(deadline) => {
                error!("shutdown deadline passed: exiting before in-flight work finished (it will be redelivered)");
                std::process::exit(1);
            }
        }
        std::process::exit(130);
    });
}

fn spawn_lag_gauge(
    metrics: Metrics,
    role: &'static str,
    consumer: Arc<StreamConsumer>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let c = Arc::clone(&consumer);
            if let Ok(Ok(lag)) =
                tokio::task::spawn_blocking(move || cordon_stream::lag(&c, Duration::from_secs(2)))
                    .await
            {
                metrics.consumer_lag.with_label_values(&[role]).set(lag);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
}

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

/// A member of `group` on `topic`, with the lag gauge of `role` kept up to date.
fn role_consumer(
    kafka: &KafkaSettings,
    group: &str,
    topic: &str,
    role: &'static str,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Arc<StreamConsumer>> {
    let consumer = Arc::new(group_consumer(kafka, group, &[topic])?);
    spawn_lag_gauge(
        metrics.clone(),
        role,
        Arc::clone(&consumer),
        shutdown.clone(),
    );
    Ok(consumer)
}

async fn run(config: Config, roles: &[Role]) -> Result<ExitCode> {
    let all = roles.contains(&Role::All);
    let has = |r: Role| all || roles.contains(&r);
    let shutdown = CancellationToken::new();
    watch_signals(
        shutdown.clone(),
        Duration::from_secs(config.shutdown.deadline_secs),
    );
    let metrics = Metrics::new();
    let kafka = kafka_settings(&config);
    let delivery_timeout = Duration::from_secs(config.kafka.delivery_timeout_secs);
    if config.kafka.create_topics {
        let k = &config.kafka;
        info!(brokers = %k.brokers, "creating missing topics");
        let spec = |name: &str, compacted| TopicSpec {
            name: name.to_string(),
            partitions: k.partitions,
            compacted,
        };
        ensure_topics(
            &kafka,
            &[
                spec(&k.content_topic, false),
                spec(&k.verdicts_topic, true),
                spec(&k.dead_letter_topic, false),
                spec(&k.reports_topic, false),
                spec(&k.context_topic, false),
            ],
        )
        .await
        .with_context(|| format!("creating topics on {}", k.brokers))?;
    }
    let config = Arc::new(config);
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let mut search: Option<SearchHandle> = None;

    if has(Role::Indexer) {
        let (index, handle) = ContentIndex::open(&IndexSettings {
            dir: config.index.dir.clone(),
            writer_memory_bytes: config.index.writer_memory_mb * 1024 * 1024,
            premoderation: config.index.premoderation,
        })?;
        search = Some(handle);
        let indexer = Indexer::new((*config).clone(), metrics.clone(), index, &kafka)?;
        spawn_lag_gauge(
            metrics.clone(),
            "indexer",
            indexer.consumer(),
            shutdown.clone(),
        );
        let token = shutdown.clone();
        tasks.spawn(async move { indexer.run(token).await.context("indexer") });
        info!(dir = %config.index.dir.display(), "indexer role started");
    }

    // The context role runs under `all` only when the context stage is on.
    let context_role = roles.contains(&Role::Context) || (all && config.context.enabled);
    let mut store = None;
    if has(Role::Worker) || has(Role::Api) || context_role {
        store = Some(
            connect_store(&config, &shutdown)
                .await?
                .with_concurrent_hashes(config.auth.max_concurrent_hashes),
        );
    }

    if has(Role::Worker) {
        let model = Arc::new(ModelSlot::from_pointee(crate::model::load(&config)?));
        tokio::spawn(crate::model::watch(
            Arc::clone(&config),
            Arc::clone(&model),
            metrics.clone(),
            shutdown.clone(),
        ));
        let consumer = role_consumer(
            &kafka,
            &config.kafka.worker_group,
            &config.kafka.content_topic,
            "worker",
            &metrics,
            &shutdown,
        )?;
        let worker = Worker {
            config: (*config).clone(),
            metrics: metrics.clone(),
            model,
            store: store.clone().context("worker store")?,
            publisher: Publisher::new(&kafka, delivery_timeout, config.kafka.max_message_bytes)?,
            consumer,
            context_band: crate::context::band_low(&config)?,
        };
        let token = shutdown.clone();
        tasks.spawn(async move { worker.run(token).await.context("worker") });
    }

    if context_role {
        let encoder = crate::context::load_encoder(&config)?;
        let loaded = crate::context::load(&config, &encoder)?;
        let slot = Arc::new(crate::context::ContextSlot::from_pointee(loaded));
        let (dir, cfg) = (config.context.dir.clone(), Arc::clone(&config));
        tokio::spawn(crate::model::watch_slot(
            Arc::clone(&slot),
            crate::model::Reload {
                what: "context model",
                on_disk: Box::new(move || {
                    cordon_context::ContextCard::read(&dir)
                        .map(|c| c.version)
                        .map_err(|e| e.to_string())
                }),
                version: |m: &crate::context::LoadedContext| m.model.card().version.clone(),
                load: Arc::new(move || crate::context::load(&cfg, &encoder)),
                info: metrics.context_model_info.clone(),
                reloads: metrics.context_model_reloads.clone(),
            },
            shutdown.clone(),
        ));
        let consumer = role_consumer(
            &kafka,
            &config.kafka.context_group,
            &config.kafka.context_topic,
            "context",
            &metrics,
            &shutdown,
        )?;
        let role = crate::context::ContextWorker {
            config: (*config).clone(),
            metrics: metrics.clone(),
            model: slot,
            store: store.clone().context("context store")?,
            publisher: Publisher::new(&kafka, delivery_timeout, config.kafka.max_message_bytes)?,
            consumer,
        };
        let token = shutdown.clone();
        tasks.spawn(async move { role.run(token).await.context("context role") });
    }

    let mut app = None;
    if has(Role::Api) {
        let store = store.clone().context("api store")?;
        let search = match search {
            Some(s) => s,
            None => SearchHandle::open_shared(&config.index.dir)
                .context("opening the index (run the indexer role first)")?,
        };
        let publisher = Publisher::new(&kafka, delivery_timeout, config.kafka.max_message_bytes)?;
        tokio::spawn(api::relay_outbox(
            store.clone(),
            publisher,
            Arc::clone(&config),
            metrics.clone(),
            shutdown.clone(),
        ));
        let limits = crate::limits::RateLimits::new(&config.api);
        limits.spawn_cleanup(shutdown.clone());
        let state = ApiState {
            config: Arc::clone(&config),
            metrics: metrics.clone(),
            search,
            store,
            limits,
            media: crate::media::MediaProxy::new(&config.media)?,
        };
        let reports = group_consumer(&kafka, "cordon-reports", &[&config.kafka.reports_topic])?;
        tokio::spawn(api::consume_reports(
            state.clone(),
            reports,
            shutdown.clone(),
        ));
        app = Some(api::router(state));
    }
    let ops = OpsState {
        metrics: metrics.clone(),
        store,
    };
    let server_limits = crate::serve::ServerLimits {
        max_connections: config.api.max_connections,
        max_per_client: config.api.max_connections_per_client,
        exempt: config
            .auth
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect(),
        header_timeout: Duration::from_secs(config.api.header_timeout_secs),
    };
    let drain = Duration::from_secs(config.api.request_timeout_secs);
    // Every process serves metrics and health on ops.listen; the API role also serves the API,
    // the console and health on api.listen.
    let mut listeners = vec![(
        config.ops.listen.clone(),
        api::with_limits(api::ops_router(ops.clone()), ops.clone(), &config.api),
    )];
    if let Some(app) = app {
        let app = app.merge(api::health(ops.clone()));
        listeners.push((
            config.api.listen.clone(),
            api::with_limits(app, ops.clone(), &config.api),
        ));
    }
    for (address, router) in listeners {
        let limits = server_limits.clone();
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        info!(listen = %address, "http server started");
        let token = shutdown.clone();
        tasks.spawn(async move {
            crate::serve::serve(listener, router, limits, token, drain).await;
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

#[derive(Deserialize)]
struct ClassifyLine {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    title: Option<String>,
}

fn classify(config: &Config, input: &Path) -> Result<ExitCode> {
    let crate::model::LoadedModel { classifier, policy } = crate::model::load(config)?;
    let reader: Box<dyn BufRead> = if input == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    let mut total = 0usize;
    let mut pending: Vec<(usize, Result<ClassifyLine, String>)> = Vec::new();
    let flush = |pending: &mut Vec<(usize, Result<ClassifyLine, String>)>,
                 out: &mut dyn Write|
     -> Result<()> {
        let texts: Vec<String> = pending
            .iter()
            .filter_map(|(_, l)| l.as_ref().ok())
            .map(|l| match &l.title {
                Some(t) => format!("{t}\n{}", l.text),
                None => l.text.clone(),
            })
            .collect();
        let mut scores = classifier.score(&texts)?.into_iter();
        let mut texts = texts.iter();
        for (line_no, line) in pending.drain(..) {
            let value = match line {
                Ok(l) => {
                    let s = scores.next().context("one score per text")?;
                    let text = texts.next().context("one text per score")?;
                    let d = policy.decide(&s);
                    let (top, top_score) = s.top();
                    let explanation =
                        classifier.explain(text, top, crate::worker::EXPLAIN_FEATURES);
                    json!({
                        "id": l.id, "scores": s, "top_category": top, "top_score": top_score,
                        "action": d.action, "category": d.category, "reason": d.reason,
                        "explanation": explanation,
                    })
                }
                Err(e) => json!({ "line": line_no, "error": e }),
            };
            writeln!(out, "{value}")?;
        }
        Ok(())
    };
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                failures += 1;
                pending.push((line_no, Err(format!("unreadable line: {e}"))));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        total += 1;
        let parsed = serde_json::from_str::<ClassifyLine>(&line).map_err(|e| e.to_string());
        if let Err(e) = &parsed {
            failures += 1;
            warn!(line = line_no, error = %e, "invalid input line");
        }
        pending.push((line_no, parsed));
        if pending.len() >= 256 {
            flush(&mut pending, &mut out)?;
        }
    }
    flush(&mut pending, &mut out)?;
    out.flush()?;
    if failures > 0 {
        eprintln!("{failures} of {total} lines could not be classified (see their `error` lines)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn produce(
    config: &Config,
    file: &Path,
    topic: Option<String>,
    raw: bool,
) -> Result<ExitCode> {
    let topic = topic.unwrap_or_else(|| config.kafka.content_topic.clone());
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let kafka = kafka_settings(config);
    let publisher = Publisher::new(
        &kafka,
        Duration::from_secs(config.kafka.delivery_timeout_secs),
        config.kafka.max_message_bytes,
    )?;
    let limits = DecodeLimits {
        max_message_bytes: config.worker.max_message_bytes,
        max_text_bytes: config.worker.max_text_bytes,
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    let mut rejected = 0;
    for (line_no, line) in &lines {
        let key = match ContentItem::decode(Some(line.as_bytes()), &limits) {
            Ok(item) => Some(item.id),
            Err(e) if raw => {
                info!(line = line_no, reason = %e, "sending an invalid item as asked");
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
            }
            Err(e) => {
                error!(line = line_no, reason = %e, "not a valid content item; not sent");
                rejected += 1;
                continue;
            }
        };
        records.push(Record {
            topic: topic.clone(),
            key,
            payload: line.as_bytes().to_vec(),
            headers: Vec::new(),
        });
    }
    let started = Instant::now();
    let mut sent = 0;
    for chunk in records.chunks(1000) {
        let refused = publisher.publish_all(chunk).await?;
        for r in &refused {
            error!(error = %r.error, bytes = chunk[r.index].payload.len(), "the broker or the client refused a line; not sent");
        }
        rejected += refused.len();
        sent += chunk.len() - refused.len();
        info!(sent, of = records.len(), topic = %topic, "producing");
    }
    info!(
        sent,
        rejected,
        seconds = started.elapsed().as_secs_f64(),
        "done"
    );
    Ok(if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn train(
    config: &Config,
    corpus: std::path::PathBuf,
    out: Option<std::path::PathBuf>,
    per_template: usize,
    sgd: cordon_train::SgdConfig,
    validation: std::path::PathBuf,
    eval: Vec<std::path::PathBuf>,
) -> Result<ExitCode> {
    init_runtime(&config.model.onnxruntime_path())?;
    let out_dir = out.unwrap_or_else(|| config.model.dir.clone());
    let started = Instant::now();
    info!(corpus = %corpus.display(), out = %out_dir.display(), "training");
    let report = cordon_train::train(&cordon_train::TrainOptions {
        corpus_dir: corpus,
        out_dir: out_dir.clone(),
        per_template,
        seed: sgd.seed,
        sgd,
        targets: cordon_train::calibrate::Targets::default(),
        validation_file: validation.is_file().then_some(validation),
        eval_files: eval.into_iter().filter(|p| p.is_file()).collect(),
    })?;
    info!(
        version = %report.version,
        train = report.train_examples,
        validation = report.validation_examples,
        test = report.test_examples,
        seconds = started.elapsed().as_secs_f64(),
        "model written to {}",
        out_dir.display()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn train_context(config: &Config, opts: cordon_train::context::ContextOptions) -> Result<ExitCode> {
    init_runtime(&config.model.onnxruntime_path())?;
    let started = Instant::now();
    info!(encoder = %opts.encoder.display(), fast = %opts.fast_model.display(), out = %opts.out_dir.display(), "training the context stage");
    let report = cordon_train::context::train_context(&opts)?;
    info!(
        version = %report.version,
        train = report.train_texts,
        calibration = report.calibration_texts,
        seconds = started.elapsed().as_secs_f64(),
        "context model written to {}",
        opts.out_dir.display()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// The cascade on labelled `items`: the fast model's scores for all, the context model's for
/// those in its band.
fn cascade(
    classifier: &cordon_classifier::Classifier,
    policy: &cordon_domain::Policy,
    dir: &Path,
    encoder: Option<std::path::PathBuf>,
    items: &[cordon_train::LabelledText],
    set: &Path,
) -> Result<cordon_train::context::CascadeReport> {
    use cordon_context::{ContextModel, Device, Encoder};
    let encoder =
        encoder.unwrap_or_else(|| crate::config::cache_dir().join("encoder/multilingual-e5-small"));
    let encoder = Arc::new(Encoder::load(&encoder, 1, 2, Device::Cpu)?);
    let context = ContextModel::load(dir, encoder, 1, 2, Device::Cpu)?;
    let rule = cordon_train::context::Cascade {
        fast_policy: policy,
        context_policy: &context.card().policy,
        band_low: context.card().band_low,
    };
    let mut rows = Vec::with_capacity(items.len());
    for chunk in items.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
        let fast = classifier.score(&texts)?;
        let sent: Vec<usize> = (0..chunk.len()).filter(|&k| rule.sends(&fast[k])).collect();
        let sent_texts: Vec<&str> = sent.iter().map(|&k| texts[k]).collect();
        let sent_fast: Vec<cordon_domain::Scores> = sent.iter().map(|&k| fast[k]).collect();
        let mut scored = context.score(&sent_texts, &sent_fast)?.into_iter();
        for (k, (item, fast)) in chunk.iter().zip(fast).enumerate() {
            rows.push(cordon_train::context::CascadeItem {
                label: (item.label == 1).then(|| item.category.unwrap_or(fast.top().0)),
                group: item.group.clone(),
                lang: item.lang.clone(),
                fast,
                context: if sent.contains(&k) {
                    scored.next()
                } else {
                    None
                },
            });
        }
    }
    Ok(rule.report(set.display().to_string(), false, &rows))
}

/// Prints a report: flagged and suppressed, per category, per language, per negative kind.
fn print_report(report: &cordon_train::Report) {
    let row = |name: &str, r: &cordon_train::Rates| {
        println!(
            "{name:<20} precision {:.3}  recall {:.3}  F1 {:.3}  false-positive rate {:.3}  ({} positives, {} negatives)",
            r.precision, r.recall, r.f1, r.false_positive_rate, r.positives, r.negatives
        )
    };
    println!("\nflagged = review or suppress; suppressed = hidden without a person");
    row("flagged", &report.overall);
    row("suppressed", &report.suppressed);
    println!("\nper category (flagged under it)");
    for (category, rates) in &report.per_category {
        row(category.as_str(), rates);
    }
    println!("\nper language (flagged)");
    for (lang, rates) in &report.per_language {
        row(lang, rates);
    }
    println!("\nper negative kind");
    for (group, rates) in &report.hard_negatives {
        let suppressed = report
            .hard_negatives_suppressed
            .get(group)
            .map_or(0.0, |r| r.false_positive_rate);
        println!(
            "{group:<20} flagged {:.3}  suppressed {:.3}  ({} texts)",
            rates.false_positive_rate, suppressed, rates.negatives
        );
    }
}

fn eval(
    config: &Config,
    data: &Path,
    context: Option<&Path>,
    encoder: Option<std::path::PathBuf>,
    as_json: bool,
) -> Result<ExitCode> {
    let crate::model::LoadedModel { classifier, policy } = crate::model::load(config)?;
    let items = cordon_train::read_labelled(data)?;
    let score = |texts: &[&str]| classifier.score(texts).map_err(Into::into);
    let report = cordon_train::evaluate(&policy, &items, score)?;
    let cascade = context
        .map(|dir| cascade(&classifier, &policy, dir, encoder, &items, data))
        .transpose()?;
    let offers: Vec<&str> = items
        .iter()
        .filter(|i| i.label == 1)
        .map(|i| i.text.as_str())
        .collect();
    let legitimate: Vec<&str> = items
        .iter()
        .filter(|i| i.label == 0)
        .map(|i| i.text.as_str())
        .collect();
    let adversarial =
        cordon_train::adversarial::evaluate(&policy, &offers, &legitimate, |texts| {
            classifier.score(texts)
        })?;
    if as_json {
        let json =
            serde_json::json!({"report": report, "adversarial": adversarial, "cascade": cascade});
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "model {} on {} ({} texts)",
        classifier.card().version,
        data.display(),
        items.len()
    );
    print_report(&report);
    if let Some(c) = &cascade {
        println!(
            "\ncascade: the context stage decides {:.1} % of the texts ({:.1} % of the legitimate ones: fast top score in its band); the fast model the rest",
            100.0 * c.context_share,
            100.0 * c.context_share_legitimate
        );
        print_report(&c.cascade);
    }
    println!(
        "\nadversarial variants of the {} offers (score change in the bare offer's top category; margin {})",
        offers.len(),
        cordon_train::adversarial::MARGIN
    );
    for (variant, r) in &adversarial {
        println!(
            "{:<20} mean change {:+.3}  max drop {:.3}  within margin {:.3}  still flagged {:.3}  still suppressed {:.3}  legitimate newly flagged {:.3}",
            serde_json::to_value(variant)?.as_str().unwrap_or_default(),
            r.mean_change,
            r.max_drop,
            r.within_margin,
            r.still_flagged,
            r.still_suppressed,
            r.legitimate_newly_flagged
        );
    }
    Ok(ExitCode::SUCCESS)
}
