//! Accountable enforcement end to end, against the real broker process and PostgreSQL: every
//! restriction the running service applies has a statement of reasons, served with its item and
//! on its own, that says how far it was automated and where it came from.

use std::time::Duration;

use anyhow::{Context, Result};
use cordon_e2e::{eventually, ids_with, signed_report, SampleFeed};
use serde_json::{json, Value};

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
    let _processes = sample.run(&[]).await?;
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

    // Statements are for signed-in people: anonymous callers get 401, an unknown id 404.
    let anonymous = reqwest::get(format!("http://{}/v1/statements/{}", d.api, s["id"])).await?;
    assert_eq!(anonymous.status(), 401);
    let (status, _) = d.get("/v1/statements/999999").await?;
    assert_eq!(status, 404);
    let (status, _) = d.get("/v1/statements/not-a-number").await?;
    assert_eq!(status, 400);
    Ok(())
}
