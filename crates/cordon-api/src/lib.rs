//! The HTTP role: the public search and item endpoints, the review and account API, the
//! moderators' console, sign-in, the console's media proxy, plus its background tasks — the
//! outbox relay (moderators' decisions → verdicts topic) and the report consumer (reports topic
//! → review queue) — and the operations listener (metrics, health) every process serves.
//!
//! Code map: routes by area in `routes/` (`search.rs`, `review.rs`, `reports.rs`,
//! `accounts.rs`, `ops.rs`); `auth.rs` (sessions, SSO proxy, roles as extractors); `console.rs`
//! (pages); `media.rs` (the proxy); `limits.rs` (rate limits); `serve.rs` (connection limits,
//! graceful drain); `error.rs` (the one error type); `extract.rs` (extractors that answer the
//! JSON error shape); `outbox.rs`; `report_consumer.rs`; `settings.rs`.
//!
//! Architecture invariants:
//! - Every answer that is not a success is `{"error": ...}` with a fitting status, including
//!   rejections of malformed bodies, query strings and paths, unknown routes and methods
//!   (`error.rs`, `extract.rs`, [`with_limits`]).
//! - No handler reaches the store without an identity the auth middleware established, except
//!   the public search, item view and signed reports (`auth.rs`).
//! - Metrics stay on the operations listener, never the public one ([`serve`]).
//!
//! API boundary: [`start`] with an [`ApiSettings`] and its dependencies, then [`serve`]. HTTP
//! types never leave this crate.

mod auth;
mod console;
mod error;
mod extract;
mod limits;
mod media;
mod openapi;
mod outbox;
mod report_consumer;
mod routes;
mod serve;
mod settings;
mod signature;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use cordon_index::SearchHandle;
use cordon_ops::{spawn_kafka_metrics, KafkaClient, Metrics, Readiness};
use cordon_review::{DecisionAction, ReviewStore};
use cordon_stream::{GroupConsumer, KafkaSettings, Publisher};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::error::ApiError;
use crate::routes::ops;

pub use settings::{
    ApiConfig, ApiSettings, AuthConfig, AuthMode, ConsoleConfig, MediaConfig, ReportsConfig,
    TrustedFlagger, TrustedProxies,
};

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The role's settings.
    pub settings: Arc<ApiSettings>,
    /// Metrics.
    pub metrics: Metrics,
    /// The search index.
    pub search: SearchHandle,
    /// The review queue.
    pub store: ReviewStore,
    /// Per-client rate limits of the public routes.
    limits: Arc<limits::RateLimits>,
    /// The console's media proxy.
    media: Arc<media::MediaProxy>,
}

/// What the HTTP role is started with besides its settings.
pub struct ApiDeps {
    /// Metrics.
    pub metrics: Metrics,
    /// The review queue.
    pub store: ReviewStore,
    /// The search index.
    pub search: SearchHandle,
    /// The outbox relay's producer.
    pub publisher: Publisher,
    /// How to reach the brokers (for the report consumer).
    pub kafka: KafkaSettings,
    /// The process's readiness: the report consumer must reach a broker.
    pub readiness: Readiness,
}

/// Starts the HTTP role's background tasks — the outbox relay, the report consumer, the rate
/// limiters' clean-up — until `shutdown`, and returns the handlers' state for [`serve`].
pub fn start(
    settings: ApiSettings,
    deps: ApiDeps,
    shutdown: CancellationToken,
) -> Result<ApiState> {
    let settings = Arc::new(settings);
    spawn_kafka_metrics(
        &deps.metrics,
        "api",
        KafkaClient::Producer,
        deps.publisher.telemetry(),
        shutdown.clone(),
    );
    tokio::spawn(outbox::relay_outbox(
        deps.store.clone(),
        deps.publisher,
        Arc::clone(&settings),
        deps.metrics.clone(),
        shutdown.clone(),
    ));
    // Every report and decision series exists at 0 from the start (dashboards show a rate of 0,
    // alerts see the first one as an increase).
    for source in ["http", "kafka"] {
        for outcome in ["filed", "refused", "skipped"] {
            deps.metrics.reports.with_label_values(&[source, outcome]);
        }
    }
    for event in ["filed", "duplicate", "refused", "upheld", "reversed"] {
        deps.metrics.appeals.with_label_values(&[event]);
    }
    for action in [
        DecisionAction::Suppress,
        DecisionAction::Restore,
        DecisionAction::SuppressChannel,
        DecisionAction::RestoreChannel,
    ] {
        deps.metrics.decisions.with_label_values(&[action.as_str()]);
    }
    let limits = limits::RateLimits::new(&settings.api);
    limits.spawn_cleanup(shutdown.clone());
    let state = ApiState {
        media: media::MediaProxy::new(&settings.media)?,
        settings,
        metrics: deps.metrics,
        search: deps.search,
        store: deps.store,
        limits,
    };
    let reports = GroupConsumer::new(
        &deps.kafka,
        &state.settings.reports_group,
        &[&state.settings.reports_topic],
    )?;
    spawn_kafka_metrics(
        &state.metrics,
        "api",
        KafkaClient::Consumer,
        reports.telemetry(),
        shutdown.clone(),
    );
    deps.readiness.watch_kafka("api", reports.telemetry());
    tokio::spawn(report_consumer::consume_reports(
        state.clone(),
        reports,
        shutdown.clone(),
    ));
    Ok(state)
}

/// Where and how a process listens.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// The operations listener (metrics, health), served by every process.
    pub ops: String,
    /// The API listener, served when the HTTP role runs.
    pub api: String,
    /// Timeouts, body and connection limits of both.
    pub limits: ApiConfig,
    /// The trusted proxies (exempt from the per-client connection cap).
    pub trusted_proxies: TrustedProxies,
}

/// Binds the operations listener and, when `api` is given, the API listener (the search, item,
/// review and account routes, the console, health); returns one future per listener that serves
/// it until `shutdown` and then drains its connections.
pub async fn serve(
    listeners: &Listeners,
    ops: OpsState,
    api: Option<ApiState>,
    shutdown: &CancellationToken,
) -> Result<Vec<impl Future<Output = ()>>> {
    let limits = &listeners.limits;
    let server_limits = serve::ServerLimits {
        max_connections: limits.max_connections,
        max_per_client: limits.max_connections_per_client,
        exempt: listeners.trusted_proxies.clone(),
        header_timeout: Duration::from_secs(limits.header_timeout_secs),
    };
    let drain = Duration::from_secs(limits.request_timeout_secs);
    let mut routers = vec![(
        listeners.ops.clone(),
        with_limits(ops_router(ops.clone()), ops.clone(), limits),
    )];
    if let Some(state) = api {
        let app = router(state).merge(health(ops.clone()));
        routers.push((listeners.api.clone(), with_limits(app, ops.clone(), limits)));
    }
    let mut servers = Vec::new();
    for (address, router) in routers {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        info!(listen = %address, "http server started");
        servers.push(serve::serve(
            listener,
            router,
            server_limits.clone(),
            shutdown.clone(),
            drain,
        ));
    }
    Ok(servers)
}

/// Runs a blocking index read off the async worker threads.
pub(crate) async fn index_read<T, F>(read: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, cordon_index::IndexError> + Send + 'static,
{
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| ApiError::internal(format!("index read task: {e}")))?
        .map_err(ApiError::from)
}

/// The committed index state of one item.
pub(crate) async fn lookup(
    s: &ApiState,
    id: &str,
) -> Result<Option<cordon_index::ItemState>, ApiError> {
    let search = s.search.clone();
    let id = id.to_string();
    index_read(move || search.get(&id)).await
}

/// The public search, item, review and account routes and the console, behind sign-in.
fn router(state: ApiState) -> Router {
    let (api, _) = openapi::routes().split_for_parts();
    api.merge(console::routes())
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.api.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::rate_limit,
        ))
        .with_state(state)
}

/// What every process serves, whatever its roles: metrics and health.
#[derive(Clone)]
pub struct OpsState {
    /// Metrics.
    pub metrics: Metrics,
    /// The review database, when the process uses one (checked by `/readyz`).
    pub store: Option<ReviewStore>,
    /// The rest of what `/readyz` checks: brokers reachable, the index caught up.
    pub readiness: Readiness,
}

/// `/healthz` and `/readyz`.
fn health(ops: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .with_state(ops)
}

/// The operations listener of every process: `/metrics` and health.
fn ops_router(ops: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(ops.clone())
        .merge(health(ops))
}

/// `app` behind request metrics, a body-read timeout (408) and a whole-request timeout (503);
/// an unknown route or method answers the JSON error shape too.
fn with_limits(app: Router, ops: OpsState, api: &ApiConfig) -> Router {
    app.fallback(|| async { ApiError::Refused(StatusCode::NOT_FOUND, "no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::Refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(ops, observe))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(api.body_timeout_secs),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(api.request_timeout_secs),
        ))
}

/// Middleware: an error answer to a request that carried a body says `Connection: close`. The
/// body may not have been read (a rejection, 413, 401 before the handler), and then the server
/// closes the connection after answering; saying so keeps clients from sending their next
/// request into it.
async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || request
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    if has_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The `method` label of a request: one of the methods the routes take, else `other` — a
/// client may send any token as a method, and each new label value would be a new series kept
/// for ever.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

/// The tracing target of the HTTP access log: one line per request (`log.filter`
/// `info,cordon::access=off` turns it off).
pub const ACCESS_LOG: &str = "cordon::access";

/// Middleware: times every request by method, route and status, writes the access log, and logs
/// the cause of every failed one (what [`ApiError`] attached to the response) — the one place
/// HTTP failures are logged.
async fn observe(State(state): State<OpsState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .http_seconds
        .with_label_values(&[method_label(&method), &route, &status.to_string()])
        .observe(elapsed.as_secs_f64());
    // The access log names the matched route, never the path: a path or query can carry a
    // search text or an item id, which the log has no business keeping. Probes and scrapes,
    // which come every few seconds, are logged only at debug.
    let ms = elapsed.as_secs_f64() * 1000.0;
    if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
        debug!(target: ACCESS_LOG, %method, %route, status, ms, ?peer, "request");
    } else {
        info!(target: ACCESS_LOG, %method, %route, status, ms, ?peer, "request");
    }
    if let Some(failure) = response.extensions().get::<error::Failure>() {
        if failure.internal {
            error!(%route, %method, status, cause = %failure.cause, "request failed");
        } else {
            warn!(%route, %method, status, cause = %failure.cause, "request refused by a dependency");
        }
    }
    response
}
