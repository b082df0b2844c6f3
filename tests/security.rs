//! Attacks on the running service (issue 11), each against real processes, a real broker and the
//! real PostgreSQL: the anonymous public, a rogue reporter, a content author and a moderator
//! above their role. Every test here failed on the code before the defence it names.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cordon_e2e::{
    eventually, report_signature, signed_report, CordonProcess, Deployment, REVIEW_EVERYTHING,
    TEST_REPORT_KEY, TEST_REPORT_KEY_ID,
};
use cordon_ops::names;
use serde_json::{json, Value};

/// A content item of the test feed.
fn item(id: &str, channel: &str, text: &str) -> Value {
    json!({
        "id": id,
        "kind": "channel_post",
        "channel": {"id": channel, "title": "A channel"},
        "text": text,
        "lang": "en",
        "published_at": "2026-11-01T10:00:00Z",
        "indexed_at": "2026-11-01T10:00:01Z",
        "version": 1
    })
}

/// `n` items `post:0`.. of one channel, each with the text `text(i)`.
fn posts(n: usize, text: impl Fn(usize) -> String) -> Vec<Value> {
    (0..n)
        .map(|i| item(&format!("post:{i}"), "chan:1", &text(i)))
        .collect()
}

/// Starts every role in one process (every item queued for review and visible), sends
/// `items`, and waits until search shows them all.
async fn deployment_with(
    extra: &str,
    env: &[(&str, &str)],
    items: &[Value],
) -> Result<(Deployment, CordonProcess)> {
    let d = Deployment::new(&format!("{REVIEW_EVERYTHING}{extra}")).await?;
    let cordon = d.start_with_env("all", env)?;
    d.wait_ready().await?;
    let feed = d.dir.path().join("feed.jsonl");
    let lines: Vec<String> = items.iter().map(Value::to_string).collect();
    std::fs::write(&feed, lines.join("\n") + "\n")?;
    d.command(&["produce", &feed.display().to_string()])?;
    let want = items.len();
    eventually(
        Duration::from_secs(60),
        "the feed to be searchable",
        || async { Ok((d.visible_ids().await?.len() == want).then_some(())) },
    )
    .await?;
    Ok((d, cordon))
}

/// Status, headers and body of a request.
async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(u16, reqwest::header::HeaderMap, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

/// Asserts the answer is a client error in the API's JSON shape.
fn assert_json_4xx(what: &str, status: u16, body: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {body}");
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert!(
        v["error"].is_string(),
        "{what}: not the JSON error shape: {body}"
    );
}

async fn alive(d: &Deployment) -> Result<()> {
    let response = reqwest::get(format!("http://{}/healthz", d.api))
        .await
        .context("the process is gone")?;
    anyhow::ensure!(
        response.status() == 200,
        "healthz answered {}",
        response.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_cannot_crash_probe_or_steer_search() -> Result<()> {
    let items = posts(5, |i| {
        format!(
            "fresh apples batch {}",
            ["alpha", "beta", "gamma", "delta", "epsilon"][i]
        )
    });
    let (d, cordon) =
        deployment_with("", &[("CORDON_API__MAX_SEARCH_DEPTH", "10000")], &items).await?;
    let http = cordon_e2e::http_client();
    let base = format!("http://{}", d.api);

    // A page deep enough to make Tantivy reserve terabytes: refused before any work.
    for query in [
        "page=1000000000&per_page=100",
        "page=18446744073709551615",
        "page=99999999999999999999999",
        "page=101&per_page=100",
        "per_page=1000000",
        "page=-1",
        "page=abc",
    ] {
        let (status, _, body) = send(http.get(format!("{base}/v1/search?{query}"))).await?;
        assert_json_4xx(query, status, &body);
    }
    // Thousands of nested parentheses: over the query length bound, or just words.
    let deep = format!("{}apples{}", "(".repeat(5000), ")".repeat(5000));
    let (status, _, body) =
        send(http.get(format!("{base}/v1/search")).query(&[("q", &deep)])).await?;
    assert_json_4xx("deep query", status, &body);
    let nested = format!("{}apples{}", "(".repeat(200), ")".repeat(200));
    let (status, _, body) = send(
        http.get(format!("{base}/v1/search"))
            .query(&[("q", &nested)]),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    alive(&d).await?;

    // Only words and phrases: the moderation fields cannot be queried to bisect the model.
    for probe in [
        "score:[0 TO 1]",
        "category:drugs",
        "visibility:visible",
        "id:post\\:1",
        "*",
    ] {
        let (status, _, body) =
            send(http.get(format!("{base}/v1/search")).query(&[("q", probe)])).await?;
        assert_eq!(status, 200, "{probe}: {body}");
        let v: Value = serde_json::from_str(&body)?;
        assert_eq!(v["total"], 0, "{probe} matched: {body}");
    }
    let (_, _, body) = send(
        http.get(format!("{base}/v1/search"))
            .query(&[("q", "\"fresh apples\"")]),
    )
    .await?;
    assert_eq!(serde_json::from_str::<Value>(&body)?["total"], 5);

    // Malformed bodies answer the JSON error shape, never plain text or 5xx.
    let report_url = format!("{base}/v1/reports");
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "not json",
            http.post(&report_url)
                .header("content-type", "application/json")
                .body("{not json"),
        ),
        (
            "wrong type",
            http.post(&report_url)
                .json(&json!({"item_id": 1, "reason": "x", "reporter": "r"})),
        ),
        (
            "unknown field",
            http.post(&report_url).json(
                &json!({"item_id": "a", "reason": "x", "reporter": "r", "moderator": "admin"}),
            ),
        ),
        ("no content type", http.post(&report_url).body("{}")),
        (
            "too large",
            http.post(&report_url)
                .header("content-type", "application/json")
                .body(format!("{{\"details\": \"{}\"}}", "x".repeat(70_000))),
        ),
    ];
    for (what, request) in cases {
        let (status, _, body) = send(request).await?;
        assert_json_4xx(what, status, &body);
    }

    // Reports need the platform's signature: no invented reporter can hold anything.
    let (status, _, body) = send(
        http.post(&report_url)
            .json(&json!({"item_id": "post:0", "reason": "drugs", "reporter": "anyone"})),
    )
    .await?;
    assert_eq!(status, 401, "{body}");
    let mut forged = signed_report("post:0", "mallory", "drugs");
    forged["signature"] = json!(report_signature(
        TEST_REPORT_KEY_ID,
        "not the key, but long enough to be one",
        "post:0",
        "mallory"
    ));
    let (status, _, body) = send(http.post(&report_url).json(&forged)).await?;
    assert_eq!(status, 401, "{body}");
    // A real signature vouches for one reporter and one item only.
    let mut replayed = signed_report("post:0", "alice", "drugs");
    replayed["item_id"] = json!("post:1");
    let (status, _, _) = send(http.post(&report_url).json(&replayed)).await?;
    assert_eq!(status, 401, "a signature replayed for another item");
    let mut lent = signed_report("post:0", "alice", "drugs");
    lent["reporter"] = json!("bob");
    let (status, _, _) = send(http.post(&report_url).json(&lent)).await?;
    assert_eq!(status, 401, "a signature lent to another reporter");

    // A hidden item answers exactly like one that never existed.
    let admin = d.admin().await?;
    let (status, body) = admin
        .post(
            "/v1/decisions",
            &json!({"item_id": "post:4", "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(20),
        "post:4 to leave search",
        || async { Ok((!d.visible_ids().await?.contains("post:4")).then_some(())) },
    )
    .await?;
    let (s1, _, hidden) = send(
        http.post(&report_url)
            .json(&signed_report("post:4", "carol", "drugs")),
    )
    .await?;
    let (s2, _, unknown) = send(http.post(&report_url).json(&signed_report(
        "post:nope",
        "carol",
        "drugs",
    )))
    .await?;
    assert_eq!(
        (s1, &hidden),
        (s2, &unknown),
        "hidden and unknown items differ"
    );
    assert_eq!(s1, 404);

    // A NUL byte in a report is a bad request (not an outage); a NUL report on the reports
    // topic is skipped and the next one is filed.
    let mut nul = signed_report("post:0", "dave", "drugs");
    nul["details"] = json!("a\u{0}b");
    let (status, _, body) = send(http.post(&report_url).json(&nul)).await?;
    assert_json_4xx("NUL in details", status, &body);
    let topic_file = d.dir.path().join("reports.jsonl");
    std::fs::write(
        &topic_file,
        format!("{nul}\n{}\n", signed_report("post:1", "erin", "drugs")),
    )?;
    d.command(&[
        "produce",
        "--no-validate",
        "--topic",
        "cordon.reports",
        &topic_file.display().to_string(),
    ])?;
    let http_ops = cordon.http();
    eventually(
        Duration::from_secs(20),
        "the report after the NUL one to be filed",
        || async {
            let count = |outcome: &str| {
                let prefix = format!(
                    "{}{{outcome=\"{outcome}\",source=\"kafka\"}}",
                    names::REPORTS_TOTAL
                );
                let http = http_ops.clone();
                async move { cordon_e2e::metric_sum(&http, &prefix).await }
            };
            Ok((count("skipped").await? == 1.0 && count("filed").await? == 1.0).then_some(()))
        },
    )
    .await?;
    let (status, body) = d.get("/readyz").await?;
    assert_eq!(status, 200, "{body}");

    // Metrics are not on the public listener; they are on the operations one.
    let (status, _, body) = send(http.get(format!("{base}/metrics"))).await?;
    assert_eq!(status, 404);
    assert_json_4xx("unknown route", status, &body);
    let (status, _, body) = send(http.delete(format!("{base}/v1/search"))).await?;
    assert_eq!(status, 405);
    assert_json_4xx("wrong method", status, &body);
    let (status, _, _) = send(http.get(format!("http://{}/metrics", cordon.http()))).await?;
    assert_eq!(status, 200);

    // A content message nesting deeper than 128 levels inside an unknown field is refused.
    let mut deep_item = item("post:deep", "chan:1", "deep");
    deep_item["extra"] = json!("PLACEHOLDER");
    let deep_line = deep_item.to_string().replace(
        "\"PLACEHOLDER\"",
        &format!("{}1{}", "[".repeat(300), "]".repeat(300)),
    );
    let deep_file = d.dir.path().join("deep.jsonl");
    std::fs::write(&deep_file, deep_line + "\n")?;
    d.command(&["produce", "--no-validate", &deep_file.display().to_string()])?;
    eventually(
        Duration::from_secs(20),
        "the deep message to be dead-lettered",
        || async {
            let dead = cordon_e2e::metric_sum(
                &cordon.http(),
                &format!("{}{{reason=\"too_deep\"}}", names::DEAD_LETTERED_TOTAL),
            )
            .await?;
            Ok((dead == 1.0).then_some(()))
        },
    )
    .await?;
    alive(&d).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invented_reporters_hold_nothing_and_vouched_ones_do() -> Result<()> {
    let flagger_key = "the hotline's own key, long enough to sign";
    let extra = format!(
        "[reports]\naccept_unsigned = true\nper_reporter_per_hour = 100\n\
         [reports.trusted_flaggers.hotline]\nname = \"Hotline\"\nsecret = \"{flagger_key}\"\nweight = 3.0\n"
    );
    let items = posts(4, |i| format!("ordinary post {i}"));
    // A second platform key, as during a key rotation.
    let (d, _cordon) = deployment_with(
        &extra,
        &[(
            "CORDON_REPORTS__PLATFORM_KEYS__NEXT",
            "the next platform key, long enough",
        )],
        &items,
    )
    .await?;
    let http = cordon_e2e::http_client();
    let url = format!("http://{}/v1/reports", d.api);

    // 45 invented names: recorded, and the item stays in search.
    for i in 0..45 {
        let (status, _, body) = send(http.post(&url).json(
            &json!({"item_id": "post:0", "reason": "drugs", "reporter": format!("fake{i}")}),
        ))
        .await?;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body)?;
        assert_eq!(v["held"], false, "{body}");
        assert_eq!(v["lane"], "unverified");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        d.visible_ids().await?.contains("post:0"),
        "invented reporters emptied search"
    );
    let (_, case) = d.get("/v1/cases?state=open&limit=100").await?;
    let case = case["cases"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["item_id"] == "post:0"))
        .cloned()
        .context("the reported item's case")?;
    assert!(
        case["priority"].as_f64() < Some(1.5),
        "fake reports raised priority: {case}"
    );

    // Three signed reporters hold an item, whichever of the rotated keys signed them.
    for (key_id, secret, who) in [
        (TEST_REPORT_KEY_ID, TEST_REPORT_KEY, "alice"),
        ("next", "the next platform key, long enough", "bob"),
        (TEST_REPORT_KEY_ID, TEST_REPORT_KEY, "carol"),
    ] {
        let body = json!({"item_id": "post:1", "reason": "drugs", "reporter": who,
                          "signature": report_signature(key_id, secret, "post:1", who)});
        let (status, _, answer) = send(http.post(&url).json(&body)).await?;
        assert_eq!(status, 200, "{answer}");
    }
    eventually(Duration::from_secs(20), "post:1 to be held", || async {
        Ok((!d.visible_ids().await?.contains("post:1")).then_some(()))
    })
    .await?;
    // A trusted flagger's one report weighs three.
    let body = json!({"item_id": "post:2", "reason": "weapons", "reporter": "analyst-7",
                      "signature": report_signature("hotline", flagger_key, "post:2", "analyst-7")});
    let (_, _, answer) = send(http.post(&url).json(&body)).await?;
    let answer: Value = serde_json::from_str(&answer)?;
    assert_eq!(
        (answer["lane"].as_str(), answer["held"].as_bool()),
        (Some("trusted_flagger"), Some(true)),
        "{answer}"
    );

    // Reporter strings never become audit actors.
    let sneaky = json!({"item_id": "post:3", "reason": "drugs", "reporter": "admin"});
    send(http.post(&url).json(&sneaky)).await?;
    let (_, audit) = d.get("/v1/audit?limit=100").await?;
    let actors: Vec<&str> = audit["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        actors
            .iter()
            .all(|a| ["system:reports", "ann", "cli"].contains(a)),
        "{actors:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_route_obeys_the_case_rules() -> Result<()> {
    let items = posts(10, |i| format!("ordinary post {i}"));
    let (d, _cordon) = deployment_with("", &[], &items).await?;
    eventually(Duration::from_secs(30), "ten open cases", || async {
        let (_, body) = d.get("/v1/cases?state=open&limit=100").await?;
        Ok((body["cases"].as_array().map_or(0, Vec::len) == 10).then_some(()))
    })
    .await?;
    let mia = d.session("mia", "moderator").await?;
    let bob = d.session("bob", "moderator").await?;
    let sue = d.session("sue", "senior").await?;

    // bob escalates the case he claimed, with a note only seniors may read.
    let (_, claimed) = bob.post("/v1/cases/claim", &json!({})).await?;
    let escalated = claimed["case"].clone();
    let (status, body) = bob
        .post(
            &format!("/v1/cases/{}/escalate", escalated["id"]),
            &json!({"version": escalated["version"], "note": "senior eyes only: informant"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let escalated_item = escalated["item_id"].as_str().context("item")?;
    // mia cannot decide it through the item route, nor read its note anywhere.
    let (status, body) = mia
        .post(
            "/v1/decisions",
            &json!({"item_id": escalated_item, "action": "restore", "reason": "not_illegal"}),
        )
        .await?;
    assert_eq!(status, 403, "{body}");
    let (_, item) = mia.get(&format!("/v1/items/{escalated_item}")).await?;
    assert!(!item.to_string().contains("informant"), "{item}");
    let (_, audit) = mia.get("/v1/audit?limit=100").await?;
    assert!(!audit.to_string().contains("informant"), "{audit}");
    let (_, audit) = sue.get("/v1/audit?limit=100").await?;
    assert!(audit.to_string().contains("informant"));
    // The audit entry of a senior's decision shows the case was escalated.
    let (status, _) = sue
        .post(
            "/v1/decisions",
            &json!({"item_id": escalated_item, "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (_, audit) = sue
        .get(&format!("/v1/audit?case_id={}", escalated["id"]))
        .await?;
    let decided = audit["entries"][0].clone();
    assert_eq!(decided["action"], "decide:suppress", "{decided}");
    assert_eq!(decided["before"]["escalated"], true, "{decided}");

    // A case bob holds cannot be decided by mia through any route.
    let (_, claimed) = bob.post("/v1/cases/claim", &json!({})).await?;
    let held = claimed["case"].clone();
    let held_item = held["item_id"].as_str().context("item")?;
    // Items neither bob's claim nor the escalated case touch, for the checks below.
    let free: Vec<String> = (0..10)
        .map(|i| format!("post:{i}"))
        .filter(|id| id != escalated_item && id != held_item)
        .collect();
    let (status, _) = mia
        .post(
            "/v1/decisions",
            &json!({"item_id": held_item, "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 409);
    let (status, body) = mia
        .post(
            "/v1/cases/bulk-decision",
            &json!({"case_ids": [held["id"]], "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200);
    assert!(body["results"][0]["error"].is_string(), "{body}");

    // Whole-channel decisions are the seniors': a moderator cannot lift (or set) a block, and the
    // case a channel decision resolves must be about that channel.
    let (status, body) = mia
        .post(
            "/v1/channel-decisions",
            &json!({"channel_id": "chan:1", "action": "restore", "reason": "not_illegal"}),
        )
        .await?;
    assert_eq!(status, 403, "{body}");
    let (status, body) = sue
        .post(
            "/v1/channel-decisions",
            &json!({"channel_id": "chan:other", "action": "suppress", "reason": "illegal_drugs", "case_id": held["id"]}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    // No decision waits for a version the worker has not seen.
    let (status, body) = mia
        .post("/v1/decisions", &json!({"item_id": free[2], "item_version": 2, "action": "restore", "reason": "not_illegal"}))
        .await?;
    assert_eq!(status, 400, "{body}");

    // A channel block is not lifted through the item route; odd inputs are client errors.
    for (what, body) in [
        (
            "channel key",
            json!({"item_id": format!("{}chan:1", cordon_domain::Verdict::CHANNEL_KEY_PREFIX), "action": "restore", "reason": "not_illegal", "item_version": 0}),
        ),
        (
            "huge version",
            json!({"item_id": free[0], "item_version": 18446744073709551615u64, "action": "suppress", "reason": "x"}),
        ),
        (
            "bad reason",
            json!({"item_id": free[0], "action": "suppress", "reason": "<b>"}),
        ),
        (
            "long note",
            json!({"item_id": free[0], "action": "suppress", "reason": "x", "note": "n".repeat(2001)}),
        ),
        (
            "unknown action",
            json!({"item_id": free[0], "action": "hold", "reason": "x"}),
        ),
    ] {
        let (status, answer) = mia.post("/v1/decisions", &body).await?;
        assert!(
            (400..500).contains(&status) && answer["error"].is_string(),
            "{what}: {status} {answer}"
        );
    }
    let (status, answer) = mia
        .post(
            "/v1/cases/bulk-decision",
            &json!({"case_ids": [1, 1], "action": "suppress", "reason": "x"}),
        )
        .await?;
    assert_eq!(status, 400, "{answer}");
    // A 2 MB note is refused at the door (413, or the connection is closed before the client has
    // written it all); nothing is recorded and the outbox keeps flowing.
    match mia
        .post("/v1/decisions", &json!({"item_id": free[0], "action": "suppress", "reason": "x", "note": "n".repeat(2_000_000)}))
        .await
    {
        Ok((status, _)) => assert_eq!(status, 413),
        Err(e) => assert!(format!("{e:#}").contains("connection"), "{e:#}"),
    }
    let (_, item) = mia.get(&format!("/v1/items/{}", free[0])).await?;
    assert_eq!(item["decisions"], json!([]), "{item}");
    let (status, body) = mia
        .post("/v1/decisions", &json!({"item_id": free[1], "action": "suppress", "reason": "illegal_drugs", "note": "n".repeat(2000)}))
        .await?;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(20),
        "the decision to reach search",
        || async { Ok((!d.visible_ids().await?.contains(&free[1])).then_some(())) },
    )
    .await?;

    // One moderator cannot claim the whole queue.
    let mut refused = None;
    for _ in 0..8 {
        let (status, body) = mia.post("/v1/cases/claim", &json!({})).await?;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.context("mia claimed every case")?;
    assert_eq!(status, 409, "{body}");
    Ok(())
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

async fn login_as(
    http: &reqwest::Client,
    base: &str,
    client: &str,
    username: &str,
    password: &str,
) -> Result<(u16, reqwest::header::HeaderMap)> {
    let (status, headers, _) = send(
        http.post(format!("{base}/v1/session"))
            .header("x-forwarded-for", client)
            .json(&json!({"username": username, "password": password})),
    )
    .await?;
    Ok((status, headers))
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_survives_bursts_and_guessing_and_limits_answer_429() -> Result<()> {
    let items = vec![item("post:0", "chan:1", "fresh apples")];
    let (d, cordon) = deployment_with(
        "",
        &[
            ("CORDON_API__SEARCHES_PER_SECOND", "5"),
            ("CORDON_API__SIGN_INS_PER_MINUTE", "10"),
            ("CORDON_API__HEADER_TIMEOUT_SECS", "1"),
        ],
        &items,
    )
    .await?;
    d.add_user("root", "admin")?;
    // This deployment cuts idle connections after one second: a connection per request.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let base = format!("http://{}", d.api);
    let password = cordon_e2e::TEST_PASSWORD;

    // Bursts of 60 parallel anonymous sign-ins (each from its own address, past the rate
    // limit): hashing waits for one of two hashing threads instead of running 60 argon2 hashes
    // at once, so memory stays bounded and does not grow from burst to burst.
    let before = rss_mib(cordon.pid())?;
    let mut peaks = Vec::new();
    for round in 0..3 {
        let mut burst = Vec::new();
        for i in 0..60 {
            let http = http.clone();
            let base = base.clone();
            burst.push(tokio::spawn(async move {
                login_as(
                    &http,
                    &base,
                    &format!("198.51.{round}.{i}"),
                    "root",
                    "wrong password, long",
                )
                .await
            }));
        }
        let mut peak = 0.0f64;
        let started = Instant::now();
        while burst.iter().any(|t| !t.is_finished()) && started.elapsed() < Duration::from_secs(120)
        {
            peak = peak.max(rss_mib(cordon.pid())?);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in burst {
            let (status, _) = t.await??;
            assert!(status == 401 || status == 429, "{status}");
        }
        peaks.push(peak);
    }
    eprintln!("[security] sign-in bursts: RSS {before:.0} MiB before, peaks {peaks:?} MiB");
    assert!(
        peaks[0] - before < 300.0,
        "a burst of 60 sign-ins grew memory by {:.0} MiB (it was 4.8 GB before hashing was bounded)",
        peaks[0] - before
    );
    assert!(
        peaks[2] - peaks[0] < 40.0,
        "memory grows from burst to burst: {peaks:?}"
    );

    // Bursts of 200 parallel searches and 200 parallel reports (from many addresses) stay
    // bounded too.
    for kind in ["search", "report"] {
        let before = rss_mib(cordon.pid())?;
        let mut burst = Vec::new();
        for i in 0..200 {
            let http = http.clone();
            let base = base.clone();
            burst.push(tokio::spawn(async move {
                let client = format!("203.0.{}.{}", i / 200, i % 200);
                let request = if kind == "search" {
                    http.get(format!("{base}/v1/search?q=fresh+apples&per_page=100"))
                } else {
                    http.post(format!("{base}/v1/reports")).json(&signed_report(
                        "post:0",
                        &format!("burst{i}"),
                        "drugs",
                    ))
                };
                send(request.header("x-forwarded-for", client))
                    .await
                    .map(|r| r.0)
            }));
        }
        let mut peak = before;
        while burst.iter().any(|t| !t.is_finished()) {
            peak = peak.max(rss_mib(cordon.pid())?);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in burst {
            let status = t.await??;
            assert!(status < 500, "{kind}: {status}");
        }
        eprintln!("[security] {kind} burst: RSS {before:.0} MiB before, peak {peak:.0}");
        assert!(
            peak - before < 150.0,
            "a burst of 200 {kind}es grew memory by {:.0} MiB",
            peak - before
        );
    }

    // 19 wrong passwords and the right one at once, from one address: not signed in.
    let mut guesses = Vec::new();
    for i in 0..20 {
        let http = http.clone();
        let base = base.clone();
        let guess = if i == 19 {
            password.to_string()
        } else {
            format!("wrong guess number {i}")
        };
        guesses.push(tokio::spawn(async move {
            login_as(&http, &base, "203.0.113.9", "root", &guess).await
        }));
    }
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await??.0);
    }
    let checked = answers.iter().filter(|s| **s == 401 || **s == 200).count();
    assert!(checked <= 5, "{checked} guesses were checked: {answers:?}");
    let (status, _) = login_as(&http, &base, "203.0.113.9", "root", password).await?;
    assert_eq!(status, 429, "the guessing address is locked out");
    // ... but the admin is not locked out elsewhere, and an unknown name answers alike.
    let (status, _) = login_as(&http, &base, "192.0.2.1", "root", password).await?;
    assert_eq!(status, 200);
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..6 {
        known.push(
            login_as(
                &http,
                &base,
                "192.0.2.50",
                "root",
                &format!("bad guess {i} long"),
            )
            .await?
            .0,
        );
        unknown.push(
            login_as(
                &http,
                &base,
                "192.0.2.51",
                "nobody",
                &format!("bad guess {i} long"),
            )
            .await?
            .0,
        );
    }
    assert_eq!(known, unknown, "unknown names answer differently");
    assert_eq!(known.last(), Some(&429));

    // Sign-ins per address are rate limited, with Retry-After.
    let mut limited = None;
    for i in 0..30 {
        let (status, headers) = login_as(
            &http,
            &base,
            "192.0.2.99",
            &format!("user{i}"),
            "whatever whatever",
        )
        .await?;
        if status == 429 && headers.contains_key("retry-after") {
            limited = Some(i);
            break;
        }
    }
    assert!(limited.is_some(), "no sign-in rate limit");
    // And so are searches.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, headers, _) = send(http.get(format!("{base}/v1/search?q=apples"))).await?;
        if status == 429 {
            assert!(headers.contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&429) && statuses.contains(&200),
        "{statuses:?}"
    );
    // HEAD runs the same search: it is limited the same.
    let mut heads = Vec::new();
    for _ in 0..30 {
        heads.push(
            send(http.head(format!("{base}/v1/search?q=apples")))
                .await?
                .0,
        );
    }
    assert!(heads.contains(&429), "{heads:?}");

    // An admin's password reset ends the account's sessions.
    let mo = d.session("mo", "moderator").await?;
    let admin = d.admin().await?;
    let (status, body) = admin
        .send(
            reqwest::Method::PATCH,
            "/v1/accounts/mo",
            Some(&json!({"password": "a brand new password"})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = mo.get("/v1/session").await?;
    assert_eq!(status, 401, "the old session survived a password reset");

    // A client that connects and sends nothing is cut off, and so is one that trickles its
    // headers.
    let mut silent = std::net::TcpStream::connect(&d.api)?;
    silent.set_read_timeout(Some(Duration::from_secs(10)))?;
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = silent.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a silent connection was kept open"
    );
    let mut stream = std::net::TcpStream::connect(&d.api)?;
    stream.write_all(b"GET /v1/search HTTP/1.1\r\nHost: x\r\n")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow client was not cut off"
    );
    alive(&d).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sso_header_counts_once() -> Result<()> {
    let d = Deployment::new("[auth]\nmode = \"proxy\"\nsecure_cookies = false\n").await?;
    let _cordon = d.start("all")?;
    d.wait_ready().await?;
    d.add_user("sso.mia", "moderator")?;
    d.add_user("sso.root", "admin")?;
    let http = cordon_e2e::http_client();
    let (status, _, body) = send(
        http.get(format!("http://{}/v1/session", d.api))
            .header("x-forwarded-user", "sso.mia")
            .header("x-forwarded-user", "sso.root"),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = send(
        http.get(format!("http://{}/v1/session", d.api))
            .header("x-forwarded-user", "sso.mia"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

/// One record read back: key, payload and headers.
type ReadRecord = (Option<String>, Vec<u8>, BTreeMap<String, String>);

/// Reads every record of `topic` from the start.
fn read_topic(brokers: &str, topic: &str) -> Result<Vec<ReadRecord>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.message.max.bytes", "10000000")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut out = Vec::new();
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(2) {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message?;
            let mut headers = BTreeMap::new();
            if let Some(hs) = message.headers() {
                for h in hs.iter() {
                    headers.insert(
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((
                message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                message.payload().unwrap_or_default().to_vec(),
                headers,
            ));
            idle = Instant::now();
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_too_large_to_copy_is_dead_lettered_bounded_and_the_partition_flows() -> Result<()>
{
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use sha2::Digest;
    let d = Deployment::new(REVIEW_EVERYTHING).await?;
    // One partition, so every item behind the large message waits on it if it jams.
    let cordon = d.start_with_env("all", &[("CORDON_KAFKA__PARTITIONS", "1")])?;
    d.wait_ready().await?;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", d.broker.addr())
        .set("message.max.bytes", "5000000")
        .create()?;
    let big = item("post:big", "chan:1", &"x".repeat(1_500_000)).to_string();
    let mut lines = vec![("post:big".to_string(), big.clone())];
    for i in 0..20 {
        lines.push((
            format!("post:{i}"),
            item(
                &format!("post:{i}"),
                "chan:1",
                &format!("after the big one {i}"),
            )
            .to_string(),
        ));
    }
    for (key, payload) in &lines {
        producer
            .send(
                FutureRecord::to("cordon.content").key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    eventually(
        Duration::from_secs(60),
        "the items behind the large message to be searchable",
        || async { Ok((d.visible_ids().await?.len() == 20).then_some(())) },
    )
    .await?;
    let dead = read_topic(&d.broker.addr(), "cordon.content.dlq")?;
    assert_eq!(dead.len(), 1, "one dead letter");
    let (key, payload, headers) = &dead[0];
    assert_eq!(key.as_deref(), Some("post:big"));
    assert_eq!(
        payload.len(),
        256 * 1024,
        "the copy is cut to worker.dead_letter_max_bytes"
    );
    assert_eq!(
        headers
            .get(cordon_worker::ERROR_CODE_HEADER)
            .map(String::as_str),
        Some("too_large")
    );
    assert_eq!(
        headers
            .get(cordon_worker::TRUNCATED_HEADER)
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        headers.get(cordon_worker::ORIGINAL_BYTES_HEADER),
        Some(&big.len().to_string())
    );
    assert_eq!(
        headers.get(cordon_worker::ORIGINAL_SHA256_HEADER),
        Some(&hex::encode(sha2::Sha256::digest(big.as_bytes())))
    );
    let metrics = reqwest::get(format!("http://{}/metrics", cordon.http()))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(&format!(
            "{}{{reason=\"too_large\"}} 1",
            names::DEAD_LETTERED_TOTAL
        )),
        "{metrics}"
    );
    Ok(())
}

/// The last verdict on the verdicts topic per item id: the version it is about.
fn last_verdicts(brokers: &str) -> Result<BTreeMap<String, u64>> {
    let mut last = BTreeMap::new();
    for (key, payload, _) in read_topic(brokers, "cordon.verdicts")? {
        let verdict: Value = serde_json::from_slice(&payload)?;
        if let (Some(key), Some(version)) = (key, verdict["item_version"].as_u64()) {
            last.insert(key, version);
        }
    }
    Ok(last)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_worker_publishes_nothing_for_partitions_it_lost() -> Result<()> {
    // A short group session, so a pause of a few seconds loses the partitions.
    let d = Deployment::new(&format!(
        "{REVIEW_EVERYTHING}[kafka.client]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n\
         [worker]\nbatch_size = 64\nbatches_in_flight = 1\nfence_after_ms = 3000\n"
    ))
    .await?;
    let host =
        d.db.url
            .split('@')
            .nth(1)
            .and_then(|h| h.split('/').next())
            .context("db host")?
            .to_string();
    let proxy = cordon_e2e::OutageProxy::start(&host).await?;
    let via_proxy = d.db.url.replace(&host, &proxy.addr);
    let _api = d.start("indexer,api")?;
    d.wait_ready().await?;
    // Worker A reaches PostgreSQL through a proxy the test can cut. With one batch in flight it
    // spends most of its time holding a scored batch (its version snapshot taken) until the
    // broker acknowledges the one before: where a stall makes a zombie.
    let a = d.start_with_env("worker", &[("CORDON_DATABASE__URL", via_proxy.as_str())])?;
    let n = 3000;
    let feed = |version: u64| -> Result<std::path::PathBuf> {
        let path = d.dir.path().join(format!("v{version}.jsonl"));
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let mut v = item(
                    &format!("post:{i}"),
                    &format!("chan:{}", i % 7),
                    &format!("an ordinary post, version {version}"),
                );
                v["version"] = json!(version);
                v.to_string()
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    };
    for round in 0..2u64 {
        let (older, newer) = (2 * round + 1, 2 * round + 2);
        let scored_before = cordon_e2e::metric_sum(&a.http(), names::CLASSIFIED_TOTAL)
            .await
            .unwrap_or(0.0);
        d.command(&["produce", &feed(older)?.display().to_string()])?;
        eventually(
            Duration::from_secs(60),
            "worker A to be scoring",
            || async {
                let scored = cordon_e2e::metric_sum(&a.http(), names::CLASSIFIED_TOTAL)
                    .await
                    .unwrap_or(0.0);
                Ok((scored > scored_before).then_some(()))
            },
        )
        .await?;
        // A stalls with a batch in hand (its database is gone), then freezes past its session.
        proxy.down();
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.signal("STOP")?;
        let mut b = d.start("worker")?;
        d.command(&["produce", &feed(newer)?.display().to_string()])?;
        eventually(
            Duration::from_secs(180),
            "worker B to publish every newest version",
            || async {
                let last = last_verdicts(&d.broker.addr())?;
                Ok((last.len() == n && last.values().all(|v| *v == newer)).then_some(()))
            },
        )
        .await?;
        // A wakes up with its old batch; its fence keeps it from publishing.
        proxy.up().await?;
        a.signal("CONT")?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let last = last_verdicts(&d.broker.addr())?;
        let stale: Vec<_> = last.iter().filter(|(_, v)| **v != newer).collect();
        assert!(
            stale.is_empty(),
            "round {round}: the verdicts topic ends on older versions: {stale:?}"
        );
        let fenced = cordon_e2e::metric_sum(&a.http(), names::FENCED_TOTAL)
            .await
            .unwrap_or(0.0);
        eprintln!("[security] round {round}: worker A fenced {fenced} verdicts so far");
        b.terminate(Duration::from_secs(30))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_take_every_connection() -> Result<()> {
    // 127.0.0.1 is not a trusted proxy here, so the per-address cap applies to this test.
    let d = Deployment::new("[auth]\ntrusted_proxies = [\"::1\"]\n").await?;
    let _cordon = d.start_with_env("all", &[("CORDON_API__MAX_CONNECTIONS_PER_CLIENT", "5")])?;
    d.wait_ready().await?;
    // (The readiness checks' connections close first.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Five idle connections hold the address's share ...
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(std::net::TcpStream::connect(&d.api)?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... so a sixth is closed at once, without an answer.
    let mut sixth = std::net::TcpStream::connect(&d.api)?;
    sixth.set_read_timeout(Some(Duration::from_secs(5)))?;
    let _ = sixth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = sixth.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // Closing one gives its place back (once the server has seen it close).
    drop(idle.pop());
    eventually(
        Duration::from_secs(10),
        "a freed place to be usable",
        || async {
            Ok(reqwest::get(format!("http://{}/healthz", d.api))
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ()))
        },
    )
    .await?;
    Ok(())
}
