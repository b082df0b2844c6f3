//! Who is asking: sessions, the single-sign-on proxy header, CSRF checks and roles.
//!
//! Invariants:
//! - Every console page and review endpoint needs a signed-in account; public search, user
//!   reports, metrics and health do not.
//! - The identity (user name and role) of every review action comes from the session, never
//!   from the request body, so the audit log names the account that acted.
//! - A state change needs the session's CSRF token in `x-csrf-token`, and a request whose
//!   `Origin` names another site is refused; the session cookie is also `SameSite=Strict` and
//!   `HttpOnly`.
//! - In `proxy` mode the user-name header counts only from `auth.trusted_proxies`; the account
//!   must exist and be enabled, and its role is Cordon's.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use cordon_review::{NewSession, Role, Session};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use crate::error::ApiError;
use crate::extract::Json;
use crate::ApiState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cordon_session";

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// User name: the actor in the audit log.
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// A signed-in account whose request carried its CSRF token: may change state.
#[derive(Debug, Clone)]
pub struct Actor(pub Viewer);

/// A signed-in admin whose request carried its CSRF token: may manage accounts.
#[derive(Debug, Clone)]
pub struct Admin(pub Viewer);

/// A refused request: a redirect to the login page for console pages, JSON otherwise.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    login_redirect: Option<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.login_redirect {
            Some(to) => Redirect::to(&to).into_response(),
            None => (self.status, Json(json!({ "error": self.message }))).into_response(),
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> Refusal {
    Refusal {
        status,
        message: message.to_string(),
        login_redirect: None,
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _: &ApiState) -> Result<Self, Self::Rejection> {
        if let Some(viewer) = parts.extensions.get::<Viewer>() {
            return Ok(viewer.clone());
        }
        let path = parts.uri.path();
        let login_redirect =
            (path.starts_with("/console") && parts.method == Method::GET).then(|| {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or(path, |p| p.as_str())
                    .to_string();
                format!("/console/login?next={}", url_escape(&next))
            });
        Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "sign in first (POST /v1/session)".into(),
            login_redirect,
        })
    }
}

impl FromRequestParts<ApiState> for Actor {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, s).await?;
        let sent = parts
            .headers
            .get("x-csrf-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(viewer.csrf_token.as_bytes())) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong x-csrf-token header (reload the console page)",
            ));
        }
        Ok(Actor(viewer))
    }
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Self::Rejection> {
        let Actor(viewer) = Actor::from_request_parts(parts, s).await?;
        if viewer.role != Role::Admin {
            return Err(refuse(StatusCode::FORBIDDEN, "only admins manage accounts"));
        }
        Ok(Admin(viewer))
    }
}

/// Percent-encodes a query value (for the login page's `next`).
pub fn url_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether the request's `Origin` (if any) is this server, by comparing it with `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a cross-site browser request
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// The session cookie for a new session (a browser-session cookie; the server ends the session
/// after `auth.session_hours` whatever the browser keeps).
pub fn session_cookie(s: &ApiState, new: &NewSession) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, new.token.clone()))
        .path("/")
        .http_only(true)
        .secure(s.settings.auth.secure_cookies)
        .same_site(SameSite::Strict)
        .build()
}

/// The session length.
pub fn session_ttl(s: &ApiState) -> Duration {
    Duration::from_secs(s.settings.auth.session_hours * 3600)
}

fn viewer_of(session: &Session) -> Viewer {
    Viewer {
        username: session.account.username.clone(),
        role: session.account.role,
        csrf_token: session.csrf_token.clone(),
    }
}

/// The client a request comes from, as rate limits and sign-in attempts count it: the peer, or —
/// when the peer is one of `auth.trusted_proxies` — the last `X-Forwarded-For` entry (the one
/// that proxy appended; those before it are the client's own words). Addresses are canonical
/// (`::ffff:10.0.0.5` is `10.0.0.5`), and an IPv6 client counts as its /64, the block one
/// subscriber usually holds (its network address, low 64 bits zero), so rotating addresses
/// inside it buys nothing.
pub fn client_ip(s: &ApiState, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    let mut client = peer;
    if s.settings.auth.trusted_proxies.contains(peer) {
        // Only the last entry is the proxy's own; an unreadable one counts as none.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            client = ip.to_canonical();
        }
    }
    match client {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
        v4 => v4,
    }
}

/// The user the trusted SSO proxy names, in `proxy` mode. A request that carries the header
/// more than once is refused: which one would the proxy have meant?
fn proxy_user(s: &ApiState, request: &Request) -> Result<Option<String>, Refusal> {
    if s.settings.auth.mode != crate::settings::AuthMode::Proxy {
        return Ok(None);
    }
    let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
    else {
        return Ok(None);
    };
    if !s.settings.auth.trusted_proxies.contains(peer) {
        return Ok(None);
    }
    let mut values = request
        .headers()
        .get_all(s.settings.auth.proxy_header.as_str())
        .iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the single-sign-on user header appears more than once",
        ));
    }
    Ok(first
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty()))
}

/// Middleware: refuses cross-site state changes, resolves the session (or the SSO proxy's
/// user, opening a session for it) and leaves the [`Viewer`] in the request's extensions.
pub async fn authenticate(
    State(s): State<ApiState>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && !same_origin(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let proxied = match proxy_user(&s, &request) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let mut session = None;
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        match s.store.session(&token).await {
            Ok(found) => session = found,
            Err(e) => {
                warn!(error = %e, "session look-up failed");
                return ApiError::from(e).into_response();
            }
        }
    }
    // Behind the SSO proxy the proxy's word wins: a session of another user is not used.
    if let (Some(user), Some(found)) = (&proxied, &session) {
        if &found.account.username != user {
            session = None;
        }
    }
    let mut new_cookie = None;
    if session.is_none() {
        if let Some(user) = &proxied {
            match s.store.open_session(user, session_ttl(&s)).await {
                Ok(new) => {
                    new_cookie = Some(session_cookie(&s, &new));
                    session = Some(new.session);
                }
                Err(e) => warn!(user = %user, error = %e, "single sign-on refused"),
            }
        }
    }
    if let Some(found) = &session {
        request.extensions_mut().insert(viewer_of(found));
    }
    let response = next.run(request).await;
    match new_cookie {
        Some(cookie) => (jar.add(cookie), response).into_response(),
        None => response,
    }
}

/// Login credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Checks credentials from `client` (see [`client_ip`]) and opens a session: the cookie plus the
/// CSRF token to send back.
pub async fn sign_in(
    s: &ApiState,
    c: &Credentials,
    client: IpAddr,
) -> Result<(Cookie<'static>, Viewer), ApiError> {
    if s.settings.auth.mode != crate::settings::AuthMode::Password {
        return Err(ApiError::Refused(
            StatusCode::BAD_REQUEST,
            "passwords are off: sign in through the single-sign-on proxy".into(),
        ));
    }
    let username = c.username.trim().to_ascii_lowercase();
    match s
        .store
        .login(&username, &c.password, &client.to_string(), session_ttl(s))
        .await
    {
        Ok(new) => {
            info!(username = %username, "signed in");
            Ok((session_cookie(s, &new), viewer_of(&new.session)))
        }
        Err(e) => {
            warn!(username = %username, client = %client, error = %e, "sign-in refused");
            Err(e.into())
        }
    }
}

fn identity(v: &Viewer) -> Json<serde_json::Value> {
    Json(json!({ "username": v.username, "role": v.role, "csrf_token": v.csrf_token }))
}

/// `POST /v1/session` {username, password}: signs in; answers the user, role and CSRF token.
#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "session",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: `{username, role, csrf_token}` and the session cookie", body = serde_json::Value),
        (status = 400, description = "Passwords are off (auth.mode = proxy)", body = crate::error::ErrorBody),
        (status = 401, description = "Wrong credentials or unknown user (the same answer)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts, or too many passwords hashed at once", body = crate::error::ErrorBody),
        crate::error::BodyRefusals,
        crate::error::Unavailable,
    )
)]
pub async fn login(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Json(c): Json<Credentials>,
) -> Result<Response, ApiError> {
    let client = client_ip(&s, Some(peer), &headers);
    let (cookie, viewer) = sign_in(&s, &c, client).await?;
    Ok((jar.add(cookie), identity(&viewer)).into_response())
}

/// `GET /v1/session`: who is signed in, with the CSRF token.
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 200, description = "`{username, role, csrf_token}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        crate::error::Unavailable,
    )
)]
pub async fn whoami(me: Viewer) -> Json<serde_json::Value> {
    identity(&me)
}

/// `DELETE /v1/session`: signs out.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "session",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "`{signed_out: true}`", body = serde_json::Value),
        crate::error::NotSignedIn,
        (status = 403, description = "No or a wrong CSRF token", body = crate::error::ErrorBody),
        crate::error::Unavailable,
    )
)]
pub async fn logout(
    State(s): State<ApiState>,
    Actor(me): Actor,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        s.store.logout(&token).await?;
    }
    info!(username = %me.username, "signed out");
    let gone = Cookie::build((SESSION_COOKIE, "")).path("/").build();
    Ok((jar.remove(gone), Json(json!({ "signed_out": true }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!same_origin(&h));
    }

    #[test]
    fn next_is_escaped() {
        assert_eq!(
            url_escape("/console/cases/1?x=\"<>"),
            "/console/cases/1%3Fx%3D%22%3C%3E"
        );
    }
}
