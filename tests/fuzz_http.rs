//! HTTP fuzzing of the whole API against a running `cordon` (every role, a real broker and
//! PostgreSQL): random and hostile methods, paths, query strings, headers and bodies on every
//! route, anonymously and signed in, for `CORDON_HTTP_FUZZ_SECS` seconds (default 20) from a
//! seed (`CORDON_HTTP_FUZZ_SEED`, printed). Asserts that no answer is a 5xx — bad input is the
//! client's fault — and that the process is alive and serving at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{eventually, signed_report, Deployment, Session, REVIEW_EVERYTHING};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// `api.max_body_bytes` by default.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route, with `{n}` for a number and `{s}` for a string segment.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/search"),
    ("POST", "/v1/reports"),
    ("POST", "/v1/session"),
    ("GET", "/v1/session"),
    ("GET", "/v1/accounts"),
    ("POST", "/v1/accounts"),
    ("PATCH", "/v1/accounts/{s}"),
    ("GET", "/v1/items/{s}"),
    ("GET", "/v1/cases"),
    ("GET", "/v1/cases/{n}"),
    ("POST", "/v1/cases/claim"),
    ("POST", "/v1/cases/bulk-decision"),
    ("POST", "/v1/cases/{n}/decision"),
    ("POST", "/v1/cases/{n}/escalate"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/stats"),
    ("POST", "/v1/channel-decisions"),
    ("POST", "/v1/decisions"),
    ("GET", "/console"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/cases/{n}"),
    ("GET", "/console/stats"),
    ("GET", "/console/audit"),
    ("GET", "/console/accounts"),
    ("GET", "/console/media/{n}/{s}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/{s}"),
];

/// Field names the API knows, so random bodies reach past "unknown field".
const FIELDS: &[&str] = &[
    "item_id",
    "item_version",
    "reason",
    "details",
    "reporter",
    "signature",
    "action",
    "note",
    "version",
    "no_requeue",
    "case_ids",
    "channel_id",
    "case_id",
    "username",
    "password",
    "role",
    "disabled",
    "q",
    "page",
    "per_page",
    "state",
    "category",
    "language",
    "source",
    "min_age_hours",
    "max_age_hours",
    "limit",
    "next",
];

fn hostile_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..14) {
        0 => String::new(),
        1 => "x".repeat(rng.random_range(1..100_000)),
        2 => "\u{0}\u{1}\u{7f}".into(),
        3 => "\u{202E}\u{200B}\u{FEFF}\u{2066}".into(),
        4 => "<script>alert(1)</script>".into(),
        5 => "'; DROP TABLE cases; --".into(),
        6 => "channel:shop".into(),
        7 => "((((((((((((((((((((a))))))))))))))))))))".repeat(rng.random_range(1..200)),
        8 => "score:[0 TO 1] AND category:drugs".into(),
        9 => "../../../../etc/passwd".into(),
        10 => "%00%ff%2e%2e%2f".into(),
        11 => [
            "suppress", "restore", "hold", "admin", "senior", "open", "drugs",
        ][rng.random_range(0..7)]
        .into(),
        12 => (0..rng.random_range(1..40))
            .map(|_| char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('?'))
            .collect(),
        _ => format!("post:{}", rng.random_range(0..6)),
    }
}

fn hostile_number(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(u64::MAX),
        4 => json!(1e300),
        5 => json!(-1e300),
        6 => json!(0.5),
        7 => Value::String("99999999999999999999999999".into()),
        _ => json!(rng.random_range(0..10)),
    }
}

fn hostile_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..8) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 | 3 => hostile_number(rng),
        4 | 5 => Value::String(hostile_string(rng)),
        6 if depth < 4 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| hostile_value(rng, depth + 1))
                .collect(),
        ),
        _ if depth < 4 => hostile_object(rng, depth + 1),
        _ => Value::Null,
    }
}

fn hostile_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.random_range(0..8) {
        let key = if rng.random_bool(0.9) {
            FIELDS[rng.random_range(0..FIELDS.len())].to_string()
        } else {
            hostile_string(rng)
        };
        map.insert(key, hostile_value(rng, depth));
    }
    Value::Object(map)
}

fn segment(rng: &mut StdRng, kind: &str) -> String {
    let raw = match kind {
        "{n}" => match rng.random_range(0..6) {
            0 => "-1".into(),
            1 => "18446744073709551616".into(),
            2 => "abc".into(),
            3 => "1e9".into(),
            _ => rng.random_range(0..20).to_string(),
        },
        _ => hostile_string(rng).chars().take(300).collect(),
    };
    url_encode(&raw)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query(rng: &mut StdRng) -> String {
    (0..rng.random_range(0..5))
        .map(|_| {
            let key = FIELDS[rng.random_range(0..FIELDS.len())];
            let value = match rng.random_range(0..3) {
                0 => hostile_number(rng).to_string(),
                _ => hostile_string(rng).chars().take(2000).collect(),
            };
            format!("{key}={}", url_encode(&value))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_survives_hostile_requests_and_answers_4xx_for_bad_input() -> Result<()> {
    let seconds: u64 = std::env::var("CORDON_HTTP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CORDON_HTTP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("[fuzz-http] seed {seed}, {seconds} s (CORDON_HTTP_FUZZ_SEED={seed} repeats it)");
    let d = Deployment::new(REVIEW_EVERYTHING).await?;
    let cordon = d.start_with_env(
        "all",
        &[
            ("CORDON_API__SEARCHES_PER_SECOND", "100000"),
            ("CORDON_API__SIGN_INS_PER_MINUTE", "100000"),
            ("CORDON_REPORTS__PER_REPORTER_PER_HOUR", "100000"),
        ],
    )?;
    d.wait_ready().await?;
    let feed = d.dir.path().join("feed.jsonl");
    let items: Vec<String> = (0..6)
        .map(|i| {
            json!({"id": format!("post:{i}"), "kind": "listing", "channel": {"id": "shop"},
                   "text": format!("item {i} for sale"), "published_at": "2026-11-01T10:00:00Z",
                   "indexed_at": "2026-11-01T10:00:01Z", "version": 1,
                   "media": [{"kind": "image", "url": "http://127.0.0.1:9/x.png"}]})
            .to_string()
        })
        .collect();
    std::fs::write(&feed, items.join("\n") + "\n")?;
    d.command(&["produce", &feed.display().to_string()])?;
    eventually(
        Duration::from_secs(60),
        "the feed to be searchable",
        || async { Ok((d.visible_ids().await?.len() == 6).then_some(())) },
    )
    .await?;
    d.add_user("zed", "moderator")?;
    let mut sessions: Vec<Session> = vec![
        d.admin().await?.clone(),
        d.session("mia", "moderator").await?,
    ];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // One connection per request: the server closes a connection whose body it answered
        // without reading, and a pooled client would then send the next request into it.
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let (method, template) = ROUTES[rng.random_range(0..ROUTES.len())];
        let mut path = String::new();
        for part in template.split('/').skip(1) {
            path.push('/');
            if part.starts_with('{') {
                path.push_str(&segment(&mut rng, part));
            } else {
                path.push_str(part);
            }
        }
        if rng.random_bool(0.5) {
            path.push('?');
            path.push_str(&query(&mut rng));
        }
        // The HTTP layer refuses request targets over 64 KiB before Cordon sees them (checked
        // once below); keep the fuzzed ones under it so every request reaches a handler.
        if path.len() > 60_000 {
            continue;
        }
        let method = if rng.random_bool(0.05) {
            ["PUT", "DELETE", "OPTIONS", "HEAD", "TRACE"][rng.random_range(0..5)]
        } else {
            method
        };
        if method == "DELETE" && path.starts_with("/v1/session") {
            continue; // signing the fuzzer's own sessions out teaches nothing
        }
        if path.starts_with("/v1/accounts/ann") || path.starts_with("/v1/accounts/mia") {
            continue; // nor does changing their passwords
        }
        let mut request = http.request(method.parse()?, format!("http://{}{path}", d.api));
        let who = rng.random_range(0..3);
        if who < 2 {
            let s = &sessions[who];
            request = request.header("cookie", s.cookie());
            if rng.random_bool(0.9) {
                request = request.header("x-csrf-token", &s.csrf);
            }
        }
        if rng.random_bool(0.1) {
            request = request.header("origin", "https://evil.example");
        }
        if rng.random_bool(0.1) {
            request = request.header(
                "x-forwarded-for",
                hostile_string(&mut rng)
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(100)
                    .collect::<String>(),
            );
        }
        let (content_type, body): (&str, Vec<u8>) = match rng.random_range(0..10) {
            0 => ("application/json", hostile_string(&mut rng).into_bytes()),
            1 => ("text/plain", b"hello".to_vec()),
            2 => (
                "application/json",
                format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            ),
            3 => (
                "application/json",
                signed_report(
                    &format!("post:{}", rng.random_range(0..6)),
                    &format!("r{}", rng.random_range(0..50)),
                    "drugs",
                )
                .to_string()
                .into_bytes(),
            ),
            4 => (
                "application/x-www-form-urlencoded",
                query(&mut rng).into_bytes(),
            ),
            _ => (
                "application/json",
                hostile_object(&mut rng, 0).to_string().into_bytes(),
            ),
        };
        let over_limit = body.len() > MAX_BODY_BYTES;
        request = request.header("content-type", content_type).body(body);
        let response = match request.send().await {
            Ok(r) => r,
            // A body over api.max_body_bytes gets 413 before it is all sent: the client may see
            // the connection close instead. That is the refusal; anything else unanswered fails.
            Err(_) if over_limit => {
                *statuses.entry(413).or_default() += 1;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("{method} {path}: no answer")),
        };
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        sent += 1;
        if status >= 500 {
            let body = response.text().await.unwrap_or_default();
            failures.push(format!(
                "{method} {} -> {status} {}",
                &path[..path.len().min(200)],
                &body[..body.len().min(300)]
            ));
        }
        if sent.is_multiple_of(300) {
            // Keep signed-in coverage: fuzzed account changes may end these sessions.
            sessions = vec![
                d.sign_in("ann", cordon_e2e::TEST_PASSWORD)
                    .await
                    .unwrap_or(sessions[0].clone()),
                d.session("mia", "moderator")
                    .await
                    .unwrap_or(sessions[1].clone()),
            ];
        }
    }
    eprintln!(
        "[fuzz-http] {sent} requests in {:.0} s: {statuses:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} answers were 5xx:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let health = reqwest::get(format!("http://{}/healthz", d.api)).await?;
    assert_eq!(health.status(), 200);
    // A client may invent methods; each must not become a series of its own.
    let client = reqwest::Client::new();
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes())?;
        let answer = client
            .request(method, format!("http://{}/v1/search?q=x", d.api))
            .send()
            .await?;
        assert_eq!(answer.status(), 405);
    }
    let metrics = reqwest::get(format!("http://{}/metrics", cordon.http()))
        .await?
        .text()
        .await?;
    let methods: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with(cordon_ops::names::HTTP_REQUEST_SECONDS))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        methods
            .iter()
            .all(|m| ["GET", "HEAD", "POST", "PATCH", "DELETE", "other"].contains(m)),
        "{methods:?}"
    );
    assert!(
        cordon_e2e::metric_sum(
            &cordon.http(),
            &format!("{}_count", cordon_ops::names::HTTP_REQUEST_SECONDS)
        )
        .await?
            > 0.0
    );
    Ok(())
}
