//! The moderator console: server-rendered pages over the review API.
//!
//! Invariants:
//! - Content is hostile. Every value from an item, a channel, a report or a note reaches the page
//!   only through maud's escaping; links from content are rendered only when they are `http(s)`
//!   URLs, with `rel="noopener noreferrer nofollow"`; the page's Content-Security-Policy allows
//!   scripts and styles from this server only, so even a missed escape could not run script.
//! - Pages only read. Every state change goes through the JSON API from `console.js`, with the
//!   session's CSRF token.
//! - Media never load until a moderator asks, and then only through Cordon's media proxy
//!   (`media.rs`: no cookies or client headers passed on, size and type limits, no private
//!   addresses), blurred and grey until clicked again; the CSP allows images from Cordon only.
//! - Text from outside renders isolated (`<bdi>`) with invisible characters shown as code
//!   points, and wraps at any length, so it can neither pass for other text nor push the
//!   decision panel off the page.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use cordon_domain::{is_web_url, Category, ContentItem, MediaKind, Verdict};
use cordon_index::ItemState;
use cordon_review::{
    Appeal, AppealState, AuditEntry, Case, CaseFilter, CaseSource, CaseState, ChannelStrikes,
    Decision, Report, Role, Statement,
};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::auth::{self, Credentials, Viewer};
use crate::error::ApiError;
use crate::extract::{Form, Path, Query};
use crate::routes::review::Limit;
use crate::ApiState;

const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (`/console/...`).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console", get(queue))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_page).post(login_form))
        .route("/console/cases/{id}", get(case_page))
        .route("/console/stats", get(stats_page))
        .route("/console/audit", get(audit_page))
        .route("/console/transparency", get(transparency_page))
        .route("/console/appeals", get(appeals_page))
        .route("/console/appeals/{id}", get(appeal_page))
        .route("/console/accounts", get(accounts_page))
        .route("/console/media/{n}/{*id}", get(crate::media::media))
        .route("/console/static/console.js", get(script))
        .route("/console/static/console.css", get(style))
        .layer(axum::middleware::from_fn(protect))
}

/// Security headers on every console response, and the server time it took (`Server-Timing`).
async fn protect(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it browsers send `Origin: null` on same-site form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let timing = format!("app;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&timing) {
        h.insert("server-timing", v);
    }
    response
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        STYLE,
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = html! {
            main { h1 { "Error " (status.as_u16()) } p.error { (self.0.message()) } p { a href="/console" { "Back to the queue" } } }
        };
        self.0.respond(document("error", html! {}, body))
    }
}

/// An error shown as a page.
struct PageError(ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

type Page = Result<Markup, PageError>;

/// An HTML document with the console's style sheet; `head` adds to the head.
fn document(title: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Cordon — " (title) }
                link rel="stylesheet" href="/console/static/console.css";
                (head)
            }
            (body)
        }
    }
}

/// The frame of every signed-in page: navigation, the CSRF token for `console.js`, settings.
fn layout(s: &ApiState, me: &Viewer, title: &str, body: Markup) -> Markup {
    let head = html! {
        meta name="csrf-token" content=(me.csrf_token);
        meta name="undo-secs" content=(s.settings.console.undo_secs);
        script src="/console/static/console.js" defer {}
    };
    document(
        title,
        head,
        html! {
                body {
                    header.top {
                        nav {
                            a href="/console" { "Queue" }
                            a href="/console/stats" { "Stats" }
                            a href="/console/audit" { "Audit log" }
                            @if me.role >= s.store.appeal_deciders() { a href="/console/appeals" { "Appeals" } }
                            @if me.role.is_senior() { a href="/console/transparency" { "Transparency" } }
                            @if me.role == Role::Admin { a href="/console/accounts" { "Accounts" } }
                        }
                        span.who { (me.username) " · " (me.role.as_str()) }
                        button #logout type="button" { "Sign out" }
                    }
                    div #status role="status" aria-live="polite" {}
                    main { (body) }
                    footer { "Shortcuts: " kbd { "n" } " next case · " kbd { "s" } " suppress · " kbd { "r" } " restore · "
                        kbd { "e" } " escalate · " kbd { "u" } " undo (within " (s.settings.console.undo_secs) " s)" }
                }
        },
    )
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only a console path is a valid place to go after signing in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.contains("//") && !n.contains('\\') => n,
        _ => "/console",
    }
}

fn login_markup(next: &str, error: Option<&str>, proxy: bool) -> Markup {
    document(
        "sign in",
        html! {},
        html! {
                body.login {
                    main {
                        h1 { "Cordon moderation console" }
                        @if proxy {
                            p { "Sign in through your organisation's single sign-on." }
                        } @else {
                            form method="post" action="/console/login" {
                                @if let Some(e) = error { p.error role="alert" { (e) } }
                                input type="hidden" name="next" value=(next);
                                label { "User name" input #username name="username" autocomplete="username" required autofocus; }
                                label { "Password" input #password name="password" type="password" autocomplete="current-password" required; }
                                button #sign-in type="submit" { "Sign in" }
                            }
                        }
                    }
                }
        },
    )
}

async fn login_page(State(s): State<ApiState>, Query(q): Query<LoginQuery>) -> Markup {
    login_markup(
        safe_next(q.next.as_deref()),
        None,
        s.settings.auth.mode == crate::settings::AuthMode::Proxy,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login_form(
    State(s): State<ApiState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    let credentials = Credentials {
        username: f.username,
        password: f.password,
    };
    let client = auth::client_ip(&s, Some(peer), &headers);
    match auth::sign_in(&s, &credentials, client).await {
        Ok((cookie, _)) => (jar.add(cookie), Redirect::to(&next)).into_response(),
        Err(e) => {
            let page = login_markup(
                &next,
                Some(e.message()),
                s.settings.auth.mode == crate::settings::AuthMode::Proxy,
            );
            e.respond(page)
        }
    }
}

fn age(since: DateTime<Utc>) -> String {
    let secs = (Utc::now() - since).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

fn facet_select(name: &str, current: Option<&str>, facets: &[cordon_review::Facet]) -> Markup {
    html! {
        select name=(name) {
            option value="" { "any" }
            @for f in facets {
                option value=(f.value) selected[current == Some(f.value.as_str())] { (f.value) " (" (f.cases) ")" }
            }
        }
    }
}

fn reason_select(s: &ApiState) -> Markup {
    html! {
        select #reason name="reason" {
            @for r in &s.settings.console.reasons { option value=(r) { (r) } }
        }
    }
}

async fn queue(
    State(s): State<ApiState>,
    me: Viewer,
    Query(filter): Query<CaseFilter>,
    Query(page): Query<Limit>,
) -> Page {
    let limit = page
        .limit
        .unwrap_or(s.settings.console.page_size)
        .clamp(1, 500);
    let (cases, counts) = tokio::try_join!(
        s.store.list_cases(&filter, me.role, limit),
        s.store.queue_counts(me.role)
    )?;
    let state = filter.state;
    let body = html! {
        h1 { "Review queue " span.count #queue-total { (counts.total) " unresolved" } }
        form.filters method="get" action="/console" {
            label { "Category " (facet_select("category", filter.category.as_deref(), &counts.category)) }
            label { "Language " (facet_select("language", filter.language.as_deref(), &counts.language)) }
            label { "Source " (facet_select("source", filter.source.map(CaseSource::as_str), &counts.source)) }
            label { "State "
                select name="state" {
                    option value="" { "unresolved" }
                    @for st in CaseState::ALL {
                        option value=(st) selected[state == Some(st)] { (st) }
                    }
                }
            }
            label { "Older than (h) " input type="number" name="min_age_hours" min="0" step="any" value=[filter.min_age_hours]; }
            label { "Newer than (h) " input type="number" name="max_age_hours" min="0" step="any" value=[filter.max_age_hours]; }
            button type="submit" { "Filter" }
            a href="/console" { "Clear" }
        }
        p { button #claim-next type="button" { "Claim next case (n)" } }
        form #bulk.bulk {
            "With the selected cases: "
            select name="action" { option value="suppress" { "suppress" } option value="restore" { "restore" } }
            " reason " (reason_select(&s))
            input name="note" placeholder="note (optional)";
            button type="submit" { "Apply" }
        }
        table.cases {
            thead { tr {
                th { input #select-all type="checkbox" aria-label="select all"; }
                th { "Case" } th { "Category" } th { "Score" } th { "Source" } th { "Lang" }
                th { "Reports" } th { "Reach" } th { "State" } th { "Age" }
            } }
            tbody {
                @for c in &cases {
                    tr.escalated[c.escalated] {
                        td { input.pick type="checkbox" value=(c.id) aria-label="select"; }
                        td { a href={ "/console/cases/" (c.id) } { "#" (c.id) } }
                        td { (c.category) }
                        td { (format!("{:.2}", c.score)) }
                        td { (c.source) }
                        td { (c.language.as_deref().unwrap_or("?")) }
                        td { (c.reason.strip_prefix("reported: ").map_or("", |_| "yes")) }
                        td { (c.reach.map_or("?".to_string(), |r| r.to_string())) }
                        td { (c.state) @if let Some(by) = &c.claimed_by { " (" (by) ")" } }
                        td { (age(c.created_at)) }
                    }
                }
            }
        }
        @if cases.is_empty() { p.empty { "Nothing here." } }
    };
    Ok(layout(&s, &me, "queue", body))
}

/// The parts of a case page, read in parallel.
struct CaseView {
    case: Case,
    item: Option<ItemState>,
    history: Vec<Decision>,
    reports: Vec<Report>,
    channel_items: Vec<ItemState>,
    channel_decisions: Vec<Decision>,
    channel_suppressed: bool,
    audit: Vec<AuditEntry>,
    statements: Vec<Statement>,
    appeals: Vec<Appeal>,
    strikes: Option<ChannelStrikes>,
}

async fn load_case(s: &ApiState, me: &Viewer, id: i64) -> Result<CaseView, ApiError> {
    let case = s.store.case_for(id, me.role).await?;
    let search = s.search.clone();
    let item_id = case.item_id.clone();
    let limit = s.settings.console.channel_items;
    let index = tokio::task::spawn_blocking(move || {
        let item = search.get(&item_id)?;
        let channel = item
            .as_ref()
            .and_then(|i| i.content.as_ref())
            .map(|c| c.channel.id.clone());
        let (others, suppressed) = match &channel {
            Some(ch) => (
                search.channel_items(ch, limit + 1)?,
                search.channel_blocked(ch)?,
            ),
            None => (Vec::new(), false),
        };
        Ok::<_, cordon_index::IndexError>((item, channel, others, suppressed))
    });
    let ((item, channel, others, channel_suppressed), (_, history), reports, audit) = tokio::try_join!(
        async {
            index
                .await
                .map_err(|e| ApiError::internal(format!("case view index task: {e}")))?
                .map_err(ApiError::from)
        },
        async {
            s.store
                .history(&case.item_id, me.role)
                .await
                .map_err(ApiError::from)
        },
        async {
            s.store
                .reports(&case.item_id, 50)
                .await
                .map_err(ApiError::from)
        },
        async {
            s.store
                .audit_log(Some(id), 50, me.role)
                .await
                .map_err(ApiError::from)
        },
    )?;
    let channel_items: Vec<ItemState> = others
        .into_iter()
        .filter(|o| o.id != case.item_id && o.content.is_some())
        .take(limit)
        .collect();
    let mut keys: Vec<String> = channel_items.iter().map(|o| o.id.clone()).collect();
    if let Some(ch) = &channel {
        keys.push(Verdict::channel_key(ch));
    }
    let channel_decisions = s.store.decisions_about(&keys, 20, me.role).await?;
    let mut subjects = vec![case.item_id.clone()];
    subjects.extend(channel.as_deref().map(Verdict::channel_key));
    let statements = s.store.statements_about(&subjects, me.role).await?;
    let ids: Vec<i64> = statements.iter().map(|st| st.id).collect();
    let appeals = s.store.appeals_of(&ids, me.role).await?;
    let strikes = match &channel {
        Some(ch) => Some(s.store.channel_strikes(ch).await?),
        None => None,
    };
    Ok(CaseView {
        case,
        item,
        history,
        reports,
        channel_items,
        channel_decisions,
        channel_suppressed,
        audit,
        statements,
        appeals,
        strikes,
    })
}

/// Text from outside (content, channel, reports, notes, ids) as it may be shown: isolated in a
/// `<bdi>` so bidi overrides cannot reorder the page around it, with every invisible character
/// ([`cordon_domain::is_invisible`], except line breaks and tabs) shown as its code point, so
/// one value cannot pass for another. Escaped by maud like everything else.
fn shown(text: &str) -> Markup {
    let mut parts: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        let invisible = cordon_domain::is_invisible(c) && !matches!(c, '\n' | '\t');
        let piece = if invisible {
            format!("\u{27E8}U+{:04X}\u{27E9}", c as u32)
        } else {
            c.to_string()
        };
        match parts.last_mut() {
            Some((was_invisible, s)) if *was_invisible == invisible && !invisible => {
                s.push_str(&piece)
            }
            _ => parts.push((invisible, piece)),
        }
    }
    html! {
        bdi.user {
            @for (invisible, piece) in &parts {
                @if *invisible { span.invisible title="an invisible character" { (piece) } } @else { (piece) }
            }
        }
    }
}

/// An optional text from outside, or `fallback`.
fn shown_or(text: Option<&str>, fallback: &str) -> Markup {
    match text {
        Some(t) => shown(t),
        None => html! { (fallback) },
    }
}

fn content_markup(c: &ContentItem) -> Markup {
    html! {
        div.content {
            p.meta {
                (c.kind.as_str()) " · " (shown_or(c.lang.as_deref(), "language unknown"))
                " · published " (c.published_at.format("%Y-%m-%d %H:%M UTC")) " · version " (c.version)
            }
            p.channel {
                "Channel: " strong { (shown_or(c.channel.title.as_deref(), "(no title)")) }
                @if let Some(u) = &c.channel.username { " @" (shown(u)) }
                " · " code { (shown(&c.channel.id)) }
                @if let Some(n) = c.channel.subscribers { " · " (n) " subscribers" }
            }
            @if let Some(t) = &c.title { h2.item-title { (shown(t)) } }
            @if let Some(p) = c.price { p.price { "Price: " (p) " " (shown_or(c.currency.as_deref(), "")) } }
            pre.text { (shown(&c.text)) }
            @if let Some(u) = &c.url {
                p.link { "Link: "
                    @if is_web_url(u) { a href=(u) rel="noopener noreferrer nofollow" target="_blank" { (shown(u)) } }
                    @else { code { (shown(u)) } " (not a web link; not clickable)" }
                }
            }
            @if !c.media.is_empty() {
                div.media {
                    @for (n, m) in c.media.iter().enumerate() {
                        @match m.kind {
                            MediaKind::Image => {
                                // Nothing loads until the moderator asks; then only through
                                // Cordon's media proxy (console.js sets the src).
                                button.load-media type="button"
                                    data-src={ "/console/media/" (n) "/" (crate::auth::url_escape(&c.id)) } {
                                    "Load image " (n + 1) " (through Cordon, blurred)"
                                }
                            }
                            MediaKind::Video => {
                                p.video { "Video (not loaded): " code { (shown(&m.url)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn decision_rows(decisions: &[Decision]) -> Markup {
    html! {
        table {
            thead { tr { th { "When" } th { "Item" } th { "Action" } th { "By" } th { "Reason" } th { "Note" } } }
            tbody {
                @for d in decisions {
                    tr {
                        td { (d.decided_at.format("%Y-%m-%d %H:%M")) }
                        td { code { (shown(&d.item_id)) } " v" (d.item_version) }
                        td { (d.action) @if d.no_requeue { " (final)" } }
                        td { (d.moderator) }
                        td { (d.reason) }
                        td { (shown_or(d.note.as_deref(), "")) }
                    }
                }
            }
        }
    }
}

fn audit_rows(entries: &[AuditEntry]) -> Markup {
    html! {
        table.audit {
            thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Case" } th { "Item" } th { "State" } th { "Note" } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td.actor { (e.actor) }
                        td.action { (e.action) }
                        td { @if let Some(c) = e.case_id { a href={ "/console/cases/" (c) } { "#" (c) } } }
                        td { code { (shown_or(e.item_id.as_deref(), "")) } }
                        td { (state_change(e)) }
                        td { (shown_or(e.note.as_deref(), "")) }
                    }
                }
            }
        }
    }
}

fn state_change(e: &AuditEntry) -> String {
    let state = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| v["state"].as_str())
            .unwrap_or("—")
            .to_string()
    };
    format!("{} → {}", state(&e.before), state(&e.after))
}

async fn case_page(State(s): State<ApiState>, me: Viewer, Path(id): Path<i64>) -> Page {
    let v = load_case(&s, &me, id).await?;
    let c = &v.case;
    let verdict = v.item.as_ref().and_then(|i| i.verdict()).cloned();
    let held_by_other = c.state == CaseState::Claimed
        && c.claimed_by.as_deref().is_some_and(|by| by != me.username)
        && c.lease_until.is_some_and(|t| t > Utc::now());
    let channel_id = v
        .item
        .as_ref()
        .and_then(|i| i.content.as_ref())
        .map(|c| c.channel.id.clone());
    let body = html! {
        div #case data-case-id=(c.id) data-version=(c.version) data-state=(c.state)
            data-channel-id=[channel_id.as_deref()] {
            h1 { "Case #" (c.id) " " span.state { (c.state) } @if c.escalated { " " span.badge { "escalated" } } }
            p.meta {
                (c.source) " · " (c.category) " " (format!("{:.2}", c.score)) " · queued " (age(c.created_at)) " ago"
                @if let Some(by) = &c.claimed_by { " · claimed by " (by) }
                " · " (c.reason)
            }
            @if held_by_other { p.warning { "Another moderator holds this case; your decision will be refused until the lease ends." } }
            div.columns {
                section.item {
                    h2 { "Item " code { (shown(&c.item_id)) } }
                    @match v.item.as_ref().and_then(|i| i.content.as_ref()) {
                        Some(content) => (content_markup(content)),
                        None => p.empty { "The item's content is not in the index (yet)." },
                    }
                    @if let Some(i) = &v.item { p { "Public search: " strong #visibility { (i.visibility.as_str()) }
                        @if v.channel_suppressed { " · the whole channel is suppressed" } } }
                }
                section.decide {
                    h2 { "Decision" }
                    @if c.state == CaseState::Resolved {
                        p { "This case is resolved. A new decision on the item still overrides the last one." }
                    }
                    label { "Reason " (reason_select(&s)) }
                    label { "Note " textarea #note rows="2" maxlength="2000" {} }
                    label.inline { input #no-requeue type="checkbox"; " with restore: do not queue this version again" }
                    div.buttons {
                        button.suppress data-action="suppress" type="button" { "Suppress (s)" }
                        button.restore data-action="restore" type="button" { "Restore (r)" }
                        button data-action="escalate" type="button" disabled[c.escalated] { "Escalate (e)" }
                        @if channel_id.is_some() && me.role.is_senior() {
                            button.suppress data-action="suppress_channel" type="button" { "Suppress whole channel" }
                            button data-action="restore_channel" type="button" { "Restore channel" }
                        }
                        button #next data-action="next" type="button" { "Next case (n)" }
                    }
                }
            }
            section.scores {
                h2 { "Model" }
                @if let Some(vd) = &verdict {
                    p { "Verdict in force: " strong { (vd.action.as_str()) } " by "
                        @match &vd.decided_by { cordon_domain::DecidedBy::Model { model_version, stage } => { "model " (model_version) " (" span.stage { (stage.as_str()) } " stage)" }
                                                cordon_domain::DecidedBy::Human { moderator, .. } => { (moderator) } } }
                }
                @let fast = verdict.as_ref().and_then(|v| v.fast_scores);
                table { thead { tr { th { "Category" } th { "Score" } @if fast.is_some() { th { "Fast model" } } } } tbody {
                    @for cat in Category::ALL {
                        tr.top[cat.as_str() == c.category] {
                            td { (cat.as_str()) }
                            td { meter min="0" max="1" value=(c.scores.get(cat)) {} " " (format!("{:.3}", c.scores.get(cat))) }
                            @if let Some(f) = fast { td.fast { (format!("{:.3}", f.get(cat))) } }
                        }
                    }
                } }
                @if let Some(vd) = &verdict { @if !vd.explanation.is_empty() {
                    h3 { "Why (strongest features)" }
                    ul.explanation { @for x in &vd.explanation { li { code { (x.feature) } " " (format!("{:+.2}", x.weight)) } } }
                } }
            }
            section.reports {
                h2 { "Reports (" (v.reports.len()) ")" }
                @if v.reports.is_empty() { p.empty { "No user reports." } }
                ul { @for r in &v.reports {
                    li { strong { (r.reason) } " — " (shown_or(r.details.as_deref(), "")) " · " (shown(&r.reporter))
                         " (" (r.lane) ", weight " (format!("{:.2}", r.weight)) ")" @if let Some(o) = &r.outcome { " · " (o) } }
                } }
            }
            section.history {
                h2 { "This item's decisions" }
                @if v.history.is_empty() { p.empty { "None yet." } } @else { (decision_rows(&v.history)) }
            }
            section.statements {
                h2 { "Statements of reasons" }
                @if v.statements.is_empty() { p.empty { "No restriction of this item or its channel." } }
                ul { @for st in &v.statements {
                    li data-statement=(st.id) {
                        strong { (st.restriction.as_str()) } " · " (st.category.as_str())
                        " · " (automation(&st.tdb.automated_decision)) " · " (st.applied_at.format("%Y-%m-%d %H:%M"))
                        " · " code { (st.puid) }
                        @if let Some(c) = st.corrects { " · corrects statement " (c) }
                        @for a in v.appeals.iter().filter(|a| a.statement_id == st.id) {
                            " · " a href={ "/console/appeals/" (a.id) } { "appeal #" (a.id) " " (a.state) }
                        }
                        p.statement-text lang=(st.text_language) { (shown(&st.text)) }
                    }
                } }
            }
            section.channel {
                h2 { "The channel's other items" }
                @if v.channel_items.is_empty() { p.empty { "No other items of this channel are indexed." } }
                ul { @for o in &v.channel_items { @if let Some(oc) = &o.content {
                    li { code { (shown(&o.id)) } " · " (o.visibility.as_str()) " · " (shown(&snippet(&oc.text))) }
                } } }
                @if let Some(st) = &v.strikes { (strikes_markup(st)) }
                h3 { "Past decisions about the channel and its items" }
                @if v.channel_decisions.is_empty() { p.empty { "None." } } @else { (decision_rows(&v.channel_decisions)) }
            }
            section.audit-trail {
                h2 { "Audit trail" }
                (audit_rows(&v.audit))
            }
        }
    };
    Ok(layout(&s, &me, &format!("case {id}"), body))
}

/// A channel's strikes and suspensions, newest first.
fn strikes_markup(st: &ChannelStrikes) -> Markup {
    html! {
        h3 { "Strikes" }
        p #strikes-live { "Live weight " strong { (format!("{:.1}", st.live_weight)) } " — suspended at "
            (format!("{:.1}", st.suspend_at)) ", for good at " (format!("{:.1}", st.ban_at)) }
        @if st.strikes.is_empty() { p.empty { "No strikes." } } @else {
            table.strikes { thead { tr { th { "Given" } th { "Item" } th { "Category" } th { "Weight" } th { "Counts until" } th { "Removed" } } } tbody {
                @for k in &st.strikes {
                    tr.live[k.live()] {
                        td { (k.created_at.format("%Y-%m-%d %H:%M")) } td { code { (shown(&k.subject)) } } td { (k.category) }
                        td { (format!("{:.1}", k.weight)) } td { (k.expires_at.format("%Y-%m-%d")) }
                        td { @if let Some(at) = k.removed_at { (at.format("%Y-%m-%d")) " by " (shown_or(k.removed_by.as_deref(), ""))
                                 @if let Some(a) = k.appeal_id { " on " a href={ "/console/appeals/" (a) } { "appeal #" (a) } } } }
                    }
                }
            } }
        }
        @if !st.suspensions.is_empty() {
            table.suspensions { thead { tr { th { "Suspended" } th { "Until" } th { "Strike weight" } th { "Lifted" } } } tbody {
                @for p in &st.suspensions {
                    tr { td { (p.created_at.format("%Y-%m-%d %H:%M")) }
                         td { @match p.until { Some(u) => { (u.format("%Y-%m-%d %H:%M")) } None => { "for good" } } }
                         td { (format!("{:.1}", p.strikes)) }
                         td { @if let Some(at) = p.lifted_at { (at.format("%Y-%m-%d %H:%M")) " by " (shown_or(p.lifted_by.as_deref(), "")) } } }
                }
            } }
        }
    }
}

fn snippet(text: &str) -> String {
    let mut out: String = text.chars().take(140).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

async fn stats_page(State(s): State<ApiState>, me: Viewer) -> Page {
    let r = s.store.queue_report().await?;
    let busiest = r
        .decisions_per_hour
        .iter()
        .map(|h| h.decisions)
        .max()
        .unwrap_or(1)
        .max(1);
    let body = html! {
        h1 { "Queue statistics" }
        dl.figures {
            dt { "Open cases" } dd #open-cases { (r.open_cases) }
            dt { "Escalated" } dd { (r.escalated_cases) }
            dt { "Oldest open case" } dd { (format!("{:.0} min", r.oldest_open_age_seconds / 60.0)) }
        }
        h2 { "Decisions per hour (last 24 h)" }
        table { thead { tr { th { "Hour" } th { "Decisions" } } } tbody {
            @for h in &r.decisions_per_hour {
                tr { td { (h.hour.format("%Y-%m-%d %H:00")) } td { meter min="0" max=(busiest) value=(h.decisions) {} " " (h.decisions) } }
            }
        } }
        h2 { "Moderators' agreement with the model" }
        table { thead { tr { th { "Category" } th { "Upheld" } th { "Overturned" } th { "Agreement" } } } tbody {
            @for a in &r.agreement {
                tr { td { (a.category) } td { (a.upheld) } td { (a.overturned) } td { (format!("{:.0} %", a.agreement * 100.0)) } }
            }
        } }
    };
    Ok(layout(&s, &me, "stats", body))
}

/// How far a statement's decision was automated, in words.
fn automation(a: &cordon_statements::AutomatedDecision) -> &'static str {
    use cordon_statements::AutomatedDecision::*;
    match a {
        Fully => "fully automated",
        Partially => "partially automated",
        NotAutomated => "not automated",
    }
}

/// How the statements' submission to the Transparency Database stands, and every rejection
/// with the database's reason (seniors and admins).
async fn transparency_page(
    State(s): State<ApiState>,
    me: Viewer,
    Query(q): Query<PeriodQuery>,
) -> Page {
    crate::routes::statements::seniors_only(&me, "the transparency report")?;
    let counts = s.store.submission_counts().await?;
    let rejected = s.store.rejected_statements(200).await?;
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - chrono::Days::new(29));
    if from > to || (to - from).num_days() >= crate::routes::statements::MAX_REPORT_DAYS {
        return Err(ApiError::bad_request("choose a period of at most 400 days").into());
    }
    let (start, end) = cordon_review::days(from, to).map_err(ApiError::bad_request)?;
    let report = s.store.transparency_report(start, end).await?;
    let query = format!("from={from}&to={to}");
    let body = html! {
        h1 { "Transparency report" }
        form.period method="get" action="/console/transparency" {
            label { "From " input type="date" name="from" value=(from); }
            label { "To " input type="date" name="to" value=(to); }
            button type="submit" { "Show" }
            " · " a href={ "/v1/transparency?" (query) } { "JSON" }
            " · " a #report-csv href={ "/v1/transparency?" (query) "&format=csv" } { "CSV" }
        }
        h2 { "Restrictions" }
        @if report.restrictions.is_empty() { p.empty { "None in this period." } }
        table.restrictions { thead { tr { th { "What" } th { "Category" } th { "Source" } th { "Automation" } th { "Count" } } } tbody {
            @for c in &report.restrictions {
                tr { td { (c.restriction) } td { (c.category) } td { (c.source) } td { (c.automation) } td { (c.count) } }
            }
        } }
        h2 { "User reports" }
        dl.figures {
            dt { "Filed" } dd #reports-filed { (report.reports.filed) }
            dt { "Upheld" } dd { (report.reports.upheld) }
            dt { "Rejected" } dd { (report.reports.rejected) }
            dt { "No action" } dd { (report.reports.no_action) }
            dt { "Not decided yet" } dd { (report.reports.pending) }
            dt { "Median time to a decision" } dd #median-decision { (minutes(report.reports.median_seconds_to_decision)) }
        }
        h2 { "Appeals" }
        dl.figures {
            dt { "Filed" } dd #appeals-filed { (report.appeals.filed) }
            dt { "Upheld" } dd { (report.appeals.upheld) }
            dt { "Reversed" } dd #appeals-reversed { (report.appeals.reversed) }
            dt { "Not decided yet" } dd { (report.appeals.pending) }
            dt { "Reversal rate" } dd { @match report.appeals.reversal_rate { Some(r) => { (format!("{:.0} %", r * 100.0)) } None => { "—" } } }
            dt { "Median time to a decision" } dd { (minutes(report.appeals.median_seconds_to_decision)) }
        }
        h2 { "Statements of reasons in the Transparency Database" }
        p { "This period: " (report.statements.total) " statements, " (report.statements.submitted)
            " submitted, " (report.statements.pending) " waiting, " (report.statements.rejected) " rejected. All time:" }
        dl.figures {
            dt { "Waiting to be submitted" } dd #statements-queued { (counts.queued) }
            dt { "Accepted" } dd #statements-accepted { (counts.accepted) }
            dt { "Already known (an answer lost)" } dd { (counts.known) }
            dt { "Rejected" } dd #statements-rejected { (counts.rejected) }
        }
        h2 { "Rejected statements" }
        p { "The database refused these; each stays as written (statements are never edited). Correct the mapping in [statements] and later statements follow it." }
        @if rejected.is_empty() { p.empty { "None." } }
        table.rejected { thead { tr { th { "Statement" } th { "What" } th { "Item" } th { "The database's reason" } th { "When" } } } tbody {
            @for r in &rejected {
                tr { td { code { (r.puid) } } td { (r.restriction.as_str()) } td { code { (shown(&r.subject)) } }
                     td { code { (shown(&r.reason.to_string())) } } td { (r.at.format("%Y-%m-%d %H:%M")) } }
            }
        } }
    };
    Ok(layout(&s, &me, "transparency", body))
}

#[derive(Deserialize)]
struct AppealsQuery {
    state: Option<AppealState>,
}

/// The appeals queue (oldest first) or the decided ones (newest first), for the deciders.
async fn appeals_page(
    State(s): State<ApiState>,
    me: Viewer,
    Query(q): Query<AppealsQuery>,
) -> Page {
    let state = q.state.unwrap_or(AppealState::Open);
    let appeals = s
        .store
        .appeals(state, me.role, s.settings.console.page_size.clamp(1, 500))
        .await?;
    let body = html! {
        h1 { "Appeals " span.count #appeals-total { (appeals.len()) " " (state) } }
        p { "A person who did not take the original decision decides each appeal. "
            @for st in AppealState::ALL { a href={ "/console/appeals?state=" (st) } { (st) } " " } }
        @if appeals.is_empty() { p.empty { "None." } }
        table.appeals { thead { tr { th { "Appeal" } th { "Filed" } th { "Restricted" } th { "Channel" } th { "Grounds" }
                                     @if state != AppealState::Open { th { "Decided by" } th { "Reason" } } } } tbody {
            @for a in &appeals {
                tr data-appeal=(a.id) {
                    td { a href={ "/console/appeals/" (a.id) } { "#" (a.id) } }
                    td { (age(a.created_at)) " ago" }
                    td { code { (shown(&a.subject)) } }
                    td { code { (shown(&a.channel_id)) } }
                    td { (shown(&snippet(&a.grounds))) }
                    @if state != AppealState::Open {
                        td { (shown_or(a.decided_by.as_deref(), "")) } td { (shown_or(a.decision_reason.as_deref(), "")) }
                    }
                }
            }
        } }
    };
    Ok(layout(&s, &me, "appeals", body))
}

/// One appeal with what it is about: the appellant's words, the statement of the restriction,
/// the original decision, the item and the item's decisions; the decision panel for deciders
/// other than the original decider.
async fn appeal_page(State(s): State<ApiState>, me: Viewer, Path(id): Path<i64>) -> Page {
    let appeal = s.store.appeal(id, me.role).await?;
    let statement = s.store.statement(appeal.statement_id, me.role).await?;
    let correction = match appeal.correction_id {
        Some(c) => Some(s.store.statement(c, me.role).await?),
        None => None,
    };
    let (_, history) = s.store.history(&appeal.subject, me.role).await?;
    let original = statement
        .decision_id
        .and_then(|d| history.iter().find(|h| h.id == d));
    let item = if appeal.subject.starts_with(Verdict::CHANNEL_KEY_PREFIX) {
        None
    } else {
        crate::lookup(&s, &appeal.subject).await?
    };
    let own = s.store.took_part(&statement, &me.username).await?;
    let body = html! {
        div #appeal data-appeal-id=(appeal.id) data-state=(appeal.state) {
            h1 { "Appeal #" (appeal.id) " " span.state { (appeal.state) } }
            p.meta { "Filed " (age(appeal.created_at)) " ago by " code { (shown(&appeal.appellant)) }
                     " for channel " code { (shown(&appeal.channel_id)) } " (key " code { (shown(&appeal.key_id)) } ")" }
            div.columns {
                section.grounds {
                    h2 { "The appellant's grounds" }
                    p.appeal-grounds { (shown(&appeal.grounds)) }
                    h2 { "The restriction appealed" }
                    p { strong { (statement.restriction.as_str()) } " · " (statement.category.as_str())
                        " · " (automation(&statement.tdb.automated_decision)) " · " (statement.applied_at.format("%Y-%m-%d %H:%M"))
                        " · " code { (statement.puid) } }
                    p.statement-text lang=(statement.text_language) { (shown(&statement.text)) }
                    h3 { "The original decision" }
                    @match original {
                        Some(o) => p #original-decision { (o.action.as_str()) " by " strong { (shown(&o.moderator)) } " · " (shown(&o.reason))
                            @if let Some(n) = &o.note { " · " (shown(n)) } " · " (o.decided_at.format("%Y-%m-%d %H:%M")) },
                        None => p #original-decision { "The model decided (no person took this decision)." },
                    }
                }
                section.decide {
                    h2 { "Decision" }
                    @if appeal.state != AppealState::Open {
                        p #appeal-outcome { (appeal.state) " by " (shown_or(appeal.decided_by.as_deref(), "")) " · " (shown_or(appeal.decision_reason.as_deref(), ""))
                            @if let Some(n) = &appeal.decision_note { " · " (shown(n)) }
                            @if let Some(at) = appeal.decided_at { " · " (at.format("%Y-%m-%d %H:%M")) } }
                        @if let Some(c) = &correction {
                            p { "Correcting statement " code { (c.puid) } ":" }
                            p.statement-text lang=(c.text_language) { (shown(&c.text)) }
                        }
                    } @else if own {
                        p.warning #own-decision { "You took the decision appealed (or one it rests on): another person decides this appeal." }
                    } @else {
                        p { "Reversing lifts the restriction (a restore decision) and tells the channel with a statement correcting the original; upholding keeps it. The appellant is told the outcome and the reason." }
                        label { "Reason " (reason_select(&s)) }
                        label { "Note (not sent) " textarea #note rows="2" maxlength="2000" {} }
                        div.buttons {
                            button.restore data-appeal="reverse" type="button" { "Reverse: lift the restriction" }
                            button.suppress data-appeal="uphold" type="button" { "Uphold: keep it" }
                        }
                    }
                }
            }
            section.item {
                h2 { "What was restricted " code { (shown(&appeal.subject)) } }
                @match item.as_ref().and_then(|i| i.content.as_ref()) {
                    Some(content) => (content_markup(content)),
                    None => p.empty { "Its content is not in the index." },
                }
                @if let Some(i) = &item { p { "Public search: " strong #visibility { (i.visibility.as_str()) } } }
            }
            section.history {
                h2 { "Its decisions" }
                @if history.is_empty() { p.empty { "None." } } @else { (decision_rows(&history)) }
            }
        }
    };
    Ok(layout(&s, &me, &format!("appeal {id}"), body))
}

/// A duration in seconds as whole minutes, or a dash.
fn minutes(seconds: Option<f64>) -> String {
    seconds.map_or("—".into(), |m| format!("{:.0} min", m / 60.0))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
}

#[derive(Deserialize)]
struct AuditQuery {
    case_id: Option<i64>,
}

async fn audit_page(State(s): State<ApiState>, me: Viewer, Query(q): Query<AuditQuery>) -> Page {
    let entries = s.store.audit_log(q.case_id, 200, me.role).await?;
    let body = html! {
        h1 { "Audit log" @if let Some(c) = q.case_id { " of case #" (c) } }
        p { "Every action, append-only: nobody can edit or delete an entry." }
        (audit_rows(&entries))
    };
    Ok(layout(&s, &me, "audit log", body))
}

async fn accounts_page(State(s): State<ApiState>, me: Viewer) -> Page {
    if me.role != Role::Admin {
        return Err(
            ApiError::Refused(StatusCode::FORBIDDEN, "only admins manage accounts".into()).into(),
        );
    }
    let accounts = s.store.accounts().await?;
    let roles = ["moderator", "senior", "admin"];
    let body = html! {
        h1 { "Accounts" }
        table.accounts {
            thead { tr { th { "User" } th { "Role" } th { "Sign-in" } th { "State" } th {} } }
            tbody { @for a in &accounts {
                tr data-username=(a.username) {
                    td { (a.username) }
                    td { select.role-select disabled[a.username == me.username] {
                        @for r in roles { option value=(r) selected[a.role.as_str() == r] { (r) } }
                    } }
                    td { @if a.has_password { "password" } @else { "single sign-on" } }
                    td { @if a.disabled { "disabled" } @else { "active" } }
                    td { @if a.username != me.username {
                        button.toggle-disabled type="button" data-disabled=(a.disabled) { @if a.disabled { "Enable" } @else { "Disable" } }
                    } }
                }
            } }
        }
        h2 { "Add an account" }
        form #add-account {
            label { "User name " input name="username" required pattern="[a-z0-9][a-z0-9._@-]{0,63}"; }
            label { "Role " select name="role" { @for r in roles { option value=(r) { (r) } } } }
            label { "Password (empty: single sign-on only) " input name="password" type="password" minlength=(cordon_review::MIN_PASSWORD_CHARS) autocomplete="new-password"; }
            button type="submit" { "Add" }
        }
    };
    Ok(layout(&s, &me, "accounts", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_domain::{Channel, ContentKind, Media};

    const PAYLOADS: [&str; 6] = [
        "<script>window.__xss=1</script>",
        "<img src=x onerror=\"window.__xss=1\">",
        "\"><svg onload=window.__xss=1>",
        "javascript:window.__xss=1",
        "</pre><iframe srcdoc='<script>parent.__xss=1</script>'>",
        "{{constructor.constructor('window.__xss=1')()}}",
    ];

    fn hostile() -> ContentItem {
        ContentItem {
            id: "x:1".into(),
            kind: ContentKind::Listing,
            channel: Channel {
                id: "x:c".into(),
                username: Some(PAYLOADS[1].into()),
                title: Some(PAYLOADS[2].into()),
                subscribers: Some(1),
            },
            text: PAYLOADS.join("\n"),
            title: Some(PAYLOADS[0].into()),
            price: None,
            currency: None,
            lang: Some(PAYLOADS[4].into()),
            url: Some(PAYLOADS[3].into()),
            media: vec![Media {
                kind: MediaKind::Image,
                url: "https://x.example/a.jpg\" onload=\"window.__xss=1".into(),
            }],
            published_at: Utc::now(),
            indexed_at: Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn hostile_content_is_escaped() {
        let html = content_markup(&hostile()).into_string();
        for tag in ["<script", "<img src=x", "<svg", "<iframe"] {
            assert!(!html.contains(tag), "unescaped {tag} in {html}");
        }
        assert!(html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"));
        assert!(!html.contains("href=\"javascript:"), "{html}");
        assert!(!html.contains("\" onload=\""), "{html}");
        // Media: a button that loads the image through Cordon's proxy, never the author's URL.
        assert!(html.contains("class=\"load-media\""), "{html}");
        assert!(
            !html.contains("<img") && !html.contains("x.example"),
            "{html}"
        );
    }

    #[test]
    fn outside_text_is_isolated_and_shows_invisible_characters() {
        let html = shown("paypal\u{202E}moc.evil\u{200B}").into_string();
        assert!(html.starts_with("<bdi class=\"user\">"), "{html}");
        assert!(
            html.contains("\u{27E8}U+202E\u{27E9}") && html.contains("\u{27E8}U+200B\u{27E9}"),
            "{html}"
        );
        assert!(
            !html.contains('\u{202E}') && !html.contains('\u{200B}'),
            "{html}"
        );
        assert_eq!(
            shown("line\nbreak").into_string(),
            "<bdi class=\"user\">line\nbreak</bdi>"
        );
    }

    #[test]
    fn login_redirects_stay_in_the_console() {
        assert_eq!(safe_next(Some("/console/cases/3")), "/console/cases/3");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/console//evil",
            "/\\evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
