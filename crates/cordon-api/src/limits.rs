//! Per-client rate limits on the routes anyone can call: sign-in, public search, reports and
//! appeals.
//! A client over its limit gets 429 with `Retry-After` before any work is done (no database
//! query, no password hash, no index read). Clients are told apart by address
//! ([`crate::auth::client_ip`]: the peer, or the address a trusted proxy forwarded).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::settings::ApiConfig;
use crate::ApiState;

/// The rate limiters, one per kind of public request.
pub struct RateLimits {
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    search: DefaultKeyedRateLimiter<IpAddr>,
    reports: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(per_period: u32, period: fn(NonZeroU32) -> Quota) -> Quota {
    period(NonZeroU32::new(per_period.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limits from the API settings (each allows a burst of one period's worth).
    pub fn new(api: &ApiConfig) -> Arc<RateLimits> {
        Arc::new(RateLimits {
            sign_in: DefaultKeyedRateLimiter::keyed(quota(
                api.sign_ins_per_minute,
                Quota::per_minute,
            )),
            search: DefaultKeyedRateLimiter::keyed(quota(
                api.searches_per_second,
                Quota::per_second,
            )),
            reports: DefaultKeyedRateLimiter::keyed(quota(
                api.reports_per_second,
                Quota::per_second,
            )),
            clock: DefaultClock::default(),
        })
    }

    fn limiter(&self, method: &Method, path: &str) -> Option<&DefaultKeyedRateLimiter<IpAddr>> {
        match (method, path) {
            (&Method::POST, "/v1/session" | "/console/login") => Some(&self.sign_in),
            // axum answers HEAD with the GET handler: it costs the same search.
            (&Method::GET | &Method::HEAD, "/v1/search") => Some(&self.search),
            (&Method::POST, "/v1/reports" | "/v1/appeals") => Some(&self.reports),
            _ => None,
        }
    }

    /// Forgets clients that have been quiet for a full period, every minute until `shutdown`,
    /// so the limiters' memory follows the clients active now.
    pub fn spawn_cleanup(self: &Arc<Self>, shutdown: CancellationToken) {
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                for limiter in [&limits.sign_in, &limits.search, &limits.reports] {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            }
        });
    }
}

/// Middleware: refuses a public request over its client's limit with 429 and `Retry-After`.
pub async fn rate_limit(State(s): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(limiter) = s.limits.limiter(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = crate::auth::client_ip(&s, peer, request.headers());
    match limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(s.limits.clock.now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::Refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {client}; retry in {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}
