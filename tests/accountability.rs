//! Accountable enforcement end to end, against the real broker process and PostgreSQL: every
//! restriction the running service applies has a statement of reasons, served with its item and
//! on its own, that says how far it was automated and where it came from; the statements reach
//! the EU Transparency Database (a test double of it) in batches, once each.

use std::time::Duration;

use anyhow::{Context, Result};
use cordon_domain::{Category, ContentKind};
use cordon_e2e::{
    eventually, http_client, ids_with, metric_sum, report_status_signature, signed_report,
    status_signature, SampleFeed, TransparencyDatabaseDouble,
};
use cordon_ops::names;
use cordon_review::{ItemFacts, ModelSuppression, ReviewStore};
use serde_json::{json, Value};

/// The trusted flagger's key the first test configures.
const FLAGGER_KEY: &str = "a trusted flagger's key, long enough to sign";

/// The statements the item API shows for `id`, once there are `n` (a restriction's statement
/// is written once its verdict is acknowledged, which may be after the index applied it).
async fn statements(d: &cordon_e2e::Deployment, id: &str, n: usize) -> Result<Vec<Value>> {
    eventually(Duration::from_secs(10), "the statements", || async {
        let (status, item) = d.get(&format!("/v1/items/{id}")).await?;
        anyhow::ensure!(status == 200, "{id}: {status} {item}");
        let found = item["statements"].as_array().context("statements")?;
        Ok((found.len() >= n).then(|| found.to_vec()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_restriction_has_a_statement_of_reasons() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let flagger = [
        (
            "CORDON_REPORTS__TRUSTED_FLAGGERS__HOTLINE__NAME",
            "National Hotline",
        ),
        (
            "CORDON_REPORTS__TRUSTED_FLAGGERS__HOTLINE__SECRET",
            FLAGGER_KEY,
        ),
    ];
    let _processes = sample.run(&flagger).await?;
    let SampleFeed {
        d,
        expected,
        versions,
        ..
    } = &sample;

    // A model suppression: fully automated, the platform's own initiative, once per version.
    let suppressed = ids_with(expected, &["suppress"]);
    assert!(!suppressed.is_empty());
    for id in &suppressed {
        let found = statements(d, id, 1).await?;
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        let s = &found[0];
        assert_eq!(s["restriction"], "model_suppression", "{s}");
        assert_eq!(s["item_version"], versions[id]);
        let tdb = &s["tdb"];
        assert_eq!(tdb["automated_detection"], "Yes");
        assert_eq!(tdb["automated_decision"], "AUTOMATED_DECISION_FULLY");
        assert_eq!(tdb["source_type"], "SOURCE_VOLUNTARY");
        assert_eq!(
            tdb["decision_visibility"][0],
            "DECISION_VISIBILITY_CONTENT_DEMOTED"
        );
        assert!(tdb["puid"]
            .as_str()
            .is_some_and(|p| p.starts_with("cordon-")));
        assert!(
            !tdb.to_string().contains(id.as_str()),
            "no item id reaches the database: {tdb}"
        );
        assert!(s["text"].as_str().is_some_and(|t| t.contains(id.as_str())));
        // The same statement on its own.
        let (status, alone) = d.get(&format!("/v1/statements/{}", s["id"])).await?;
        assert_eq!((status, &alone), (200, s));
    }

    // A user's report about an item the model scored, decided by a moderator: partially
    // automated, notice-sourced, the decision's statement.
    let reported = ids_with(expected, &["allow"])
        .into_iter()
        .next()
        .context("an allowed item")?;
    let (status, report) = d
        .post("/v1/reports", &signed_report(&reported, "u-1", "drugs"))
        .await?;
    assert_eq!(status, 200, "{report}");
    let moderator = d.session("mona", "moderator").await?;
    let (status, decision) = moderator
        .post(
            &format!("/v1/cases/{}/decision", report["case_id"]),
            &json!({"action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    assert_eq!(status, 200, "{decision}");
    eventually(
        Duration::from_secs(10),
        "the decided item to leave search",
        || async { Ok((!d.visible_ids().await?.contains(&reported)).then_some(())) },
    )
    .await?;
    let found = statements(d, &reported, 1).await?;
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0];
    assert_eq!(
        (&s["restriction"], &s["decision_id"], &s["category"]),
        (
            &json!("moderator_suppression"),
            &decision["id"],
            &json!("drugs")
        )
    );
    assert_eq!(s["tdb"]["automated_detection"], "No");
    assert_eq!(
        s["tdb"]["automated_decision"],
        "AUTOMATED_DECISION_PARTIALLY"
    );
    assert_eq!(s["tdb"]["source_type"], "SOURCE_ARTICLE_16");
    assert_eq!(
        s["tdb"]["category"],
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
    );

    // Moderators read the statement on the case page, in the channel's words.
    let page = console_page(d, &format!("/console/cases/{}", report["case_id"])).await?;
    assert!(
        page.contains("Statements of reasons")
            && page.contains("moderator_suppression")
            && page.contains("partially automated"),
        "{page}"
    );

    // The reporter hears back: an acknowledgement when the report was filed and the outcome
    // when it was decided, on the outcomes topic, and the same on demand.
    let report_id = report["report_id"].as_i64().context("report id")?;
    let statuses: Vec<Value> = outcomes(&d.broker.addr(), report_id, 2)
        .await?
        .iter()
        .map(|n| n["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("received"), json!("upheld")]);
    let status_url = format!("http://{}/v1/reports/{report_id}", d.api);
    assert_eq!(reqwest::get(&status_url).await?.status(), 401);
    let read = |signature: String| {
        http_client()
            .get(&status_url)
            .header("x-cordon-signature", signature)
            .send()
    };
    let notice: Value = read(report_status_signature(report_id))
        .await?
        .json()
        .await?;
    assert_eq!(
        (&notice["status"], &notice["reason"], &notice["reporter"]),
        (&json!("upheld"), &json!("illegal_drugs"), &json!("u-1")),
        "{notice}"
    );
    assert!(notice["redress"]
        .as_str()
        .is_some_and(|r| r.contains("six months")));
    assert!(
        notice.get("details").is_none() && notice.get("weight").is_none(),
        "only what the reporter may know: {notice}"
    );
    // A signature of another report's id reads nothing; a trusted flagger's valid signature
    // does not read a report the platform's user filed (404, as for an unknown report).
    let other = read(report_status_signature(report_id + 1)).await?;
    assert_eq!(other.status(), 401);
    let flaggers = read(status_signature("hotline", FLAGGER_KEY, report_id)).await?;
    assert_eq!(flaggers.status(), 404);

    // The period's transparency report: every restriction by kind, source and automation, the
    // report and how long it took, as JSON and CSV; for seniors.
    let today = chrono::Utc::now().date_naive();
    let period = format!("from={today}&to={today}");
    let (status, transparency) = d.get(&format!("/v1/transparency?{period}")).await?;
    assert_eq!(status, 200, "{transparency}");
    let count = |restriction: &str, source: &str, automation: &str| -> i64 {
        transparency["restrictions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["restriction"] == restriction
                    && c["source"] == source
                    && c["automation"] == automation
            })
            .filter_map(|c| c["count"].as_i64())
            .sum()
    };
    assert_eq!(
        count(
            "model_suppression",
            "SOURCE_VOLUNTARY",
            "AUTOMATED_DECISION_FULLY"
        ),
        suppressed.len() as i64
    );
    assert_eq!(
        count(
            "moderator_suppression",
            "SOURCE_ARTICLE_16",
            "AUTOMATED_DECISION_PARTIALLY"
        ),
        1
    );
    let reports = &transparency["reports"];
    assert_eq!(
        (&reports["filed"], &reports["upheld"]),
        (&json!(1), &json!(1))
    );
    assert!(reports["median_seconds_to_decision"]
        .as_f64()
        .is_some_and(|m| m > 0.0));
    assert_eq!(
        transparency["statements"]["total"],
        json!(suppressed.len() + 1)
    );
    let admin = d.admin().await?;
    let csv = http_client()
        .get(format!(
            "http://{}/v1/transparency?{period}&format=csv",
            d.api
        ))
        .header("cookie", admin.cookie())
        .send()
        .await?;
    assert!(csv
        .headers()
        .get("content-type")
        .is_some_and(|t| t.to_str().is_ok_and(|t| t.starts_with("text/csv"))));
    let csv = csv.text().await?;
    assert!(
        csv.starts_with("section,name,category,source,automation,value\n"),
        "{csv}"
    );
    assert!(csv.contains("\nreports,filed,,,,1\n"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("restrictions,model_suppression,")
                && l.contains(",SOURCE_VOLUNTARY,AUTOMATED_DECISION_FULLY,")),
        "{csv}"
    );
    let page = console_page(d, &format!("/console/transparency?{period}")).await?;
    assert!(
        page.contains("Transparency report") && page.contains("id=\"reports-filed\">1<"),
        "{page}"
    );
    let (status, _) = moderator.get(&format!("/v1/transparency?{period}")).await?;
    assert_eq!(status, 403);
    let (status, _) = d
        .get(&format!("/v1/transparency?from={today}&to=2020-01-01"))
        .await?;
    assert_eq!(status, 400);
    let (status, _) = d
        .get("/v1/transparency?from=2020-01-01&to=2026-12-31")
        .await?;
    assert_eq!(status, 400, "over 400 days");

    // Statements are for signed-in people: anonymous callers get 401, an unknown id 404.
    let anonymous = reqwest::get(format!("http://{}/v1/statements/{}", d.api, s["id"])).await?;
    assert_eq!(anonymous.status(), 401);
    let (status, _) = d.get("/v1/statements/999999").await?;
    assert_eq!(status, 404);
    let (status, _) = d.get("/v1/statements/not-a-number").await?;
    assert_eq!(status, 400);
    Ok(())
}

/// `who` hides item `id` from search (a moderator's item decision).
async fn suppress(who: &cordon_e2e::Session, id: &str) -> Result<()> {
    let (status, decision) = who
        .post(
            "/v1/decisions",
            &json!({"item_id": id, "action": "suppress", "reason": "illegal_drugs"}),
        )
        .await?;
    anyhow::ensure!(status == 200, "{decision}");
    Ok(())
}

/// A console page as the admin sees it.
async fn console_page(d: &cordon_e2e::Deployment, path: &str) -> Result<String> {
    let admin = d.admin().await?;
    Ok(http_client()
        .get(format!("http://{}{path}", d.api))
        .header("cookie", admin.cookie())
        .send()
        .await?
        .text()
        .await?)
}

/// The notices the outcomes topic holds for `report_id`, once there are `n`.
async fn outcomes(brokers: &str, report_id: i64, n: usize) -> Result<Vec<Value>> {
    notices(brokers, &format!("report {report_id}"), n, |notice, _| {
        notice["report_id"] == report_id
    })
    .await
}

/// The `n` first notices on the outcomes topic that `ours` picks (by notice and key), read by
/// a consumer group of its own named after `what`.
async fn notices(
    brokers: &str,
    what: &str,
    n: usize,
    ours: impl Fn(&Value, &[u8]) -> bool,
) -> Result<Vec<Value>> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("test-outcomes-{}", what.replace(' ', "-")),
        )
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&["cordon.report-outcomes"])?;
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while found.len() < n {
        let m = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .with_context(|| format!("{} of {n} notices for {what}", found.len()))??;
        let notice: Value = serde_json::from_slice(m.payload().context("payload")?)?;
        if ours(&notice, m.key().unwrap_or_default()) {
            found.push(notice);
        }
    }
    Ok(found)
}

/// `n` model suppressions of items `prefix/0..n` in `language`, stated through the store as the
/// worker states them.
async fn suppressions(store: &ReviewStore, prefix: &str, n: usize, language: &str) -> Result<()> {
    let now = chrono::Utc::now();
    let batch: Vec<ModelSuppression> = (0..n)
        .map(|i| ModelSuppression {
            item_id: format!("{prefix}/{i}"),
            item_version: 1,
            category: Category::Drugs,
            score: 0.99,
            explanation: Vec::new(),
            facts: Some(ItemFacts {
                channel_id: "shop".into(),
                kind: ContentKind::ChannelPost,
                published_at: now,
                has_images: false,
                language: Some(language.into()),
            }),
            decided_at: now,
        })
        .collect();
    anyhow::ensure!(store.state_model_suppressions(&batch).await? == n as u64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exporter_submits_in_batches_survives_a_failure_and_never_sends_a_puid_twice(
) -> Result<()> {
    // The Transparency Database is an external service: the tests use a double of it
    // (tests/harness/transparency_double.rs) that enforces its documented validation.
    let tdb = TransparencyDatabaseDouble::start("platform-token").await?;
    let d = cordon_e2e::Deployment::new(&format!(
        "[transparency]\nenabled = true\nurl = \"{}\"\ntoken = \"platform-token\"\n\
         interval_secs = 1\nretry_backoff_ms = 200\n",
        tdb.url
    ))
    .await?;
    let store = ReviewStore::connect(&d.db.url, 2, Duration::from_secs(5)).await?;
    suppressions(&store, "tdb", 250, "en").await?;
    // The first call fails (500): the batch stays queued and is sent again.
    tdb.fail_next(1);
    let search = d.start("indexer,api")?;
    d.wait_ready().await?;
    eventually(Duration::from_secs(60), "250 statements stored", || async {
        Ok((tdb.stored().len() == 250).then_some(()))
    })
    .await
    .with_context(|| search.log())?;
    let calls: Vec<(usize, u16)> = tdb
        .calls()
        .iter()
        .map(|c| (c.statements, c.status))
        .collect();
    assert_eq!(
        calls,
        [(100, 500), (100, 201), (100, 201), (50, 201)],
        "three batches of at most 100, after one failed call"
    );
    assert!(tdb.resent().is_empty(), "a stored PUID was sent again");
    let (_, status) = d.get("/v1/transparency/submissions").await?;
    assert_eq!(
        status["counts"],
        json!({"queued": 0, "accepted": 250, "known": 0, "rejected": 0})
    );
    let line = |outcome: &str| {
        format!(
            "{}{{outcome=\"{outcome}\"}}",
            names::STATEMENTS_SUBMITTED_TOTAL
        )
    };
    assert_eq!(metric_sum(&search.http(), &line("accepted")).await?, 250.0);
    let failed = format!(
        "{}{{reason=\"unavailable\"}}",
        names::STATEMENT_SUBMISSIONS_FAILED_TOTAL
    );
    assert_eq!(metric_sum(&search.http(), &failed).await?, 1.0);
    // What the database stored is the statement Cordon drafted, field for field.
    let (_, item) = d.get("/v1/items/tdb/7").await?;
    assert_eq!(
        item["indexed"], false,
        "an item only its statement names: {item}"
    );
    let ours = &item["statements"][0]["tdb"];
    let stored = tdb
        .statement(ours["puid"].as_str().context("puid")?)
        .context("stored")?;
    for (field, value) in ours.as_object().context("a statement")? {
        assert_eq!(&stored[field], value, "{field}");
    }

    // A statement the database refuses (a language it no longer lists) is kept rejected with
    // its reason; the rest of its batch is sent again and stored.
    tdb.drop_language("EL");
    suppressions(&store, "xx", 1, "el").await?;
    suppressions(&store, "ok", 2, "de").await?;
    let status = eventually(Duration::from_secs(30), "the rejection", || async {
        let (_, status) = d.get("/v1/transparency/submissions").await?;
        Ok(
            (status["counts"]["accepted"] == 252 && status["counts"]["rejected"] == 1)
                .then_some(status),
        )
    })
    .await?;
    let rejected = &status["rejected"][0];
    assert_eq!(rejected["subject"], "xx/0");
    assert!(
        rejected["reason"]["content_language"][0]
            .as_str()
            .is_some_and(|m| m.contains("invalid")),
        "{rejected}"
    );
    assert_eq!(tdb.stored().len(), 252);
    // Seniors see the rejection and its reason in the console; moderators may not.
    let page = console_page(&d, "/console/transparency").await?;
    assert!(
        page.contains("id=\"statements-rejected\">1<")
            && page.contains("content language is invalid"),
        "{page}"
    );
    let moderator = d.session("mo", "moderator").await?;
    let refused = http_client()
        .get(format!("http://{}/console/transparency", d.api))
        .header("cookie", moderator.cookie())
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    let (status, _) = moderator.get("/v1/transparency/submissions").await?;
    assert_eq!(status, 403);
    eventually(Duration::from_secs(10), "the rejected gauge", || async {
        Ok((metric_sum(&search.http(), names::STATEMENTS_REJECTED).await? == 1.0).then_some(()))
    })
    .await?;

    // An answer lost after the database stored a batch (a crash before the answers were
    // recorded, simulated by undoing one statement's record): the database says it holds the
    // PUID, and the statement is done.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&d.db.url).await?;
    sqlx::query(
        "WITH s AS (SELECT id FROM statements WHERE subject = 'tdb/7'),
              undone AS (DELETE FROM statement_submissions WHERE statement_id IN (SELECT id FROM s))
         INSERT INTO statement_queue SELECT id FROM s",
    )
    .execute(&mut db)
    .await?;
    eventually(
        Duration::from_secs(30),
        "the known PUID settled",
        || async {
            let (_, status) = d.get("/v1/transparency/submissions").await?;
            Ok((status["counts"]["known"] == 1 && status["counts"]["queued"] == 0).then_some(()))
        },
    )
    .await?;
    assert_eq!(tdb.stored().len(), 252, "nothing stored twice");

    // The same statements as JSON lines, in the database's schema.
    let today = chrono::Utc::now().date_naive().to_string();
    let lines = d.command(&["statements", "export", "--from", &today, "--to", &today])?;
    let exported: Vec<Value> = lines
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(exported.len(), 253);
    let puids: std::collections::HashSet<String> = exported
        .iter()
        .filter_map(|s| s["puid"].as_str().map(String::from))
        .collect();
    assert!(tdb.stored().is_subset(&puids) && puids.len() == 253);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_appeal_is_refused_to_the_original_moderator_and_reversed_by_a_senior() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let _processes = sample.run(&[("CORDON_CONSOLE__UNDO_SECS", "1")]).await?;
    let SampleFeed { d, expected, .. } = &sample;
    let id = ids_with(expected, &["allow"])
        .into_iter()
        .next()
        .context("an allowed item")?;
    let (_, item) = d.get(&format!("/v1/items/{id}")).await?;
    let channel = item["content"]["channel"]["id"]
        .as_str()
        .context("its channel")?
        .to_string();

    // A senior hides the item; the channel appeals through the platform's backend.
    let sam = d.session("sam", "senior").await?;
    suppress(&sam, &id).await?;
    eventually(
        Duration::from_secs(10),
        "the item to leave search",
        || async { Ok((!d.visible_ids().await?.contains(&id)).then_some(())) },
    )
    .await?;
    let original = statements(d, &id, 1).await?.remove(0);
    let statement_id = original["id"].as_i64().context("statement id")?;
    let appeals = format!("http://{}/v1/appeals", d.api);
    let grounds = "<b>We sell herbal tea</b>, not drugs.";
    let mut forged = cordon_e2e::signed_appeal(statement_id, &channel, "owner-1", grounds);
    forged["appellant"] = json!("someone-else");
    let refused = http_client().post(&appeals).json(&forged).send().await?;
    assert_eq!(refused.status(), 401, "a signature is over its appellant");
    let other_channel =
        cordon_e2e::signed_appeal(statement_id, "not-the-channel", "owner-1", grounds);
    let refused = http_client()
        .post(&appeals)
        .json(&other_channel)
        .send()
        .await?;
    assert_eq!(refused.status(), 404, "only the restricted channel appeals");
    let filed: Value = http_client()
        .post(&appeals)
        .json(&cordon_e2e::signed_appeal(
            statement_id,
            &channel,
            "owner-1",
            grounds,
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (&filed["state"], &filed["duplicate"]),
        (&json!("open"), &json!(false)),
        "{filed}"
    );
    let appeal_id = filed["appeal_id"].as_i64().context("appeal id")?;

    // Neither the moderator who decided nor one below senior decides the appeal.
    let decide = |outcome: &str| json!({"outcome": outcome, "reason": "legitimate_seller", "note": "tea shop, checked"});
    let path = format!("/v1/appeals/{appeal_id}/decision");
    let (status, refusal) = sam.post(&path, &decide("reverse")).await?;
    assert_eq!(status, 403, "{refusal}");
    assert!(refusal["error"]
        .as_str()
        .is_some_and(|e| e.contains("you took the decision")));
    // The decision is a state change: without the session's CSRF token it is refused.
    let sue = d.session("sue", "senior").await?;
    let no_csrf = http_client()
        .post(format!("http://{}{path}", d.api))
        .header("cookie", sue.cookie())
        .json(&decide("uphold"))
        .send()
        .await?;
    assert_eq!(no_csrf.status(), 403);
    let mo = d.session("mo", "moderator").await?;
    let (status, _) = mo.post(&path, &decide("uphold")).await?;
    assert_eq!(status, 403);
    let (status, _) = mo.get("/v1/appeals").await?;
    assert_eq!(status, 403);
    let (status, queue) = sam.get("/v1/appeals").await?;
    assert_eq!(status, 200);
    assert_eq!(queue["appeals"][0]["grounds"], grounds);

    let console_page = |who: &cordon_e2e::Session| {
        http_client()
            .get(format!("http://{}/console/appeals/{appeal_id}", d.api))
            .header("cookie", who.cookie())
            .send()
    };
    let page = console_page(&sam).await?.text().await?;
    assert!(
        page.contains("id=\"own-decision\"") && !page.contains("data-appeal=\"reverse\""),
        "{page}"
    );

    // A senior who did not decide reverses it in the console: the appeal page shows the
    // appellant's words (as text), the statement and the original decision.
    d.add_user("sid", "senior")?;
    let base = format!("http://{}", d.api);
    let b = cordon_e2e::Browser::start().await?;
    b.sign_in(&base, "sid").await?;
    b.client.goto(&format!("{base}/console/appeals")).await?;
    b.loaded().await?;
    b.click(&format!("tr[data-appeal=\"{appeal_id}\"] a"))
        .await?;
    b.loaded().await?;
    assert_eq!(b.text("p.appeal-grounds").await?, grounds, "shown as text");
    assert!(b.text("#original-decision").await?.contains("sam"));
    b.choose("#reason", "legal_business").await?;
    b.click("button[data-appeal=reverse]").await?;
    eventually(Duration::from_secs(15), "the appeal decided", || async {
        let (_, appeals) = sam.get("/v1/appeals?state=reversed").await?;
        Ok((appeals["appeals"][0]["id"] == appeal_id).then(|| appeals["appeals"][0].clone()))
    })
    .await?;
    b.loaded().await?;
    eventually(
        Duration::from_secs(10),
        "the page to show the outcome",
        || async {
            Ok(b.text("#appeal-outcome")
                .await
                .ok()
                .filter(|t| t.starts_with("reversed by sid · legal_business")))
        },
    )
    .await?;
    b.close().await?;
    // The original decider sees the appeal but is told another person decides.
    let page = console_page(&sam).await?.text().await?;
    assert!(
        page.contains("reversed by <bdi class=\"user\">sid</bdi>")
            && !page.contains("data-appeal=\"reverse\""),
        "{page}"
    );

    // The item is back in search, with a statement correcting the original.
    eventually(
        Duration::from_secs(10),
        "the item back in search",
        || async { Ok(d.visible_ids().await?.contains(&id).then_some(())) },
    )
    .await?;
    let found = statements(d, &id, 2).await?;
    let correction = &found[1];
    assert_eq!(correction["corrects"], statement_id);
    assert_eq!(
        correction["tdb"]["end_date_visibility_restriction"],
        json!(chrono::Utc::now().date_naive().to_string())
    );
    assert!(correction["text"]
        .as_str()
        .is_some_and(|t| t.contains("appeal was accepted")));

    // The appellant hears back: received, then reversed with the reason and the new text.
    let key = format!("appeal-{appeal_id}");
    let told = notices(&d.broker.addr(), &key, 2, |_, k| k == key.as_bytes()).await?;
    let statuses: Vec<&Value> = told.iter().map(|n| &n["status"]).collect();
    assert_eq!(statuses, [&json!("open"), &json!("reversed")]);
    assert_eq!(told[1]["reason"], "legal_business");
    assert_eq!(told[1]["correction_text"], correction["text"]);
    assert!(
        told[1].get("decision_note").is_none(),
        "the note stays inside"
    );
    let status_url = format!("{appeals}/{appeal_id}");
    assert_eq!(reqwest::get(&status_url).await?.status(), 401);
    let notice: Value = http_client()
        .get(&status_url)
        .header(
            "x-cordon-signature",
            cordon_e2e::appeal_status_signature(appeal_id),
        )
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(notice, told[1]);
    let wrong = http_client()
        .get(&status_url)
        .header(
            "x-cordon-signature",
            cordon_e2e::appeal_status_signature(appeal_id + 1),
        )
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);

    // Decided once; the period's report counts it.
    let (status, _) = d.post(&path, &decide("uphold")).await?;
    assert_eq!(status, 409);
    let today = chrono::Utc::now().date_naive();
    let (_, report) = d
        .get(&format!("/v1/transparency?from={today}&to={today}"))
        .await?;
    assert_eq!(
        (&report["appeals"]["filed"], &report["appeals"]["reversed"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(report["appeals"]["reversal_rate"], 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn three_strikes_suspend_a_channel_for_the_configured_time_and_it_returns() -> Result<()> {
    let sample = SampleFeed::deploy().await?;
    let _processes = sample
        .run(&[("CORDON_STRIKES__SUSPENSION_SECS", "6")])
        .await?;
    let SampleFeed {
        d, feed, versions, ..
    } = &sample;
    // A channel with four items, one of them in public search.
    let mut channels: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in std::fs::read_to_string(feed)?.lines() {
        let Ok(item) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let (Some(id), Some(channel)) = (item["id"].as_str(), item["channel"]["id"].as_str()) {
            if versions.contains_key(id) {
                channels.entry(channel.into()).or_default().push(id.into());
            }
        }
    }
    let visible = d.visible_ids().await?;
    let (channel, items) = channels
        .iter()
        .find(|(_, ids)| ids.len() >= 4 && ids.iter().any(|i| visible.contains(i)))
        .context("a channel with four items, one visible")?;
    let keep = items
        .iter()
        .find(|i| visible.contains(*i))
        .context("a visible item")?;
    let struck: Vec<&String> = items.iter().filter(|i| *i != keep).take(3).collect();
    let view = |id: String| async move {
        let (status, item) = d.get(&format!("/v1/items/{id}")).await?;
        anyhow::ensure!(status == 200, "{id}: {status} {item}");
        Ok::<_, anyhow::Error>(item)
    };

    let (status, report) = d
        .post("/v1/reports", &signed_report(keep, "u-9", "drugs"))
        .await?;
    assert_eq!(status, 200, "{report}");

    // Three of its items suppressed by a person: three strikes, and the third suspends it.
    let sam = d.session("sam", "senior").await?;
    for (n, id) in struck.iter().enumerate() {
        suppress(&sam, id).await?;
        let strikes = &view(keep.clone()).await?["channel_strikes"];
        assert_eq!(strikes["live_weight"], json!(n as f64 + 1.0), "{strikes}");
    }
    eventually(
        Duration::from_secs(10),
        "the channel's other item to leave search",
        || async { Ok((!d.visible_ids().await?.contains(keep)).then_some(())) },
    )
    .await?;
    let item = view(keep.clone()).await?;
    assert_eq!(item["channel_suppressed"], true, "{item}");
    let suspension = &item["channel_strikes"]["suspensions"][0];
    assert!(suspension["until"].is_string(), "for a time: {suspension}");
    let statement = item["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["restriction"] == "strike_suppression")
        .context("the suspension's statement")?;
    assert_eq!(statement["subject"], format!("channel:{channel}"));
    assert_eq!(statement["channel_id"], json!(channel));
    assert_eq!(
        statement["tdb"]["automated_decision"],
        "AUTOMATED_DECISION_FULLY"
    );
    assert!(statement["tdb"]["end_date_visibility_restriction"].is_string());
    // The case view shows the channel's strikes and the suspension.
    let page = console_page(d, &format!("/console/cases/{}", report["case_id"])).await?;
    assert!(
        page.contains("id=\"strikes-live\">Live weight <strong>3.0</strong>")
            && page.contains("table class=\"suspensions\""),
        "{page}"
    );

    // It returns when the suspension ends; the items a person suppressed stay hidden.
    eventually(
        Duration::from_secs(30),
        "the channel back in search",
        || async { Ok(d.visible_ids().await?.contains(keep).then_some(())) },
    )
    .await?;
    let visible = d.visible_ids().await?;
    assert!(struck.iter().all(|id| !visible.contains(*id)));
    let item = view(keep.clone()).await?;
    assert_eq!(item["channel_suppressed"], false);
    assert_eq!(
        item["channel_strikes"]["suspensions"][0]["lifted_by"],
        "system:strikes"
    );
    Ok(())
}
