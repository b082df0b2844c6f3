//! Statements of reasons, stored with the restrictions they state, against the real PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use cordon_domain::{Action, Category, ContentItem, Contribution, Scores};
use cordon_review::test_support::TestDb;
use cordon_review::{
    ChannelDecision, DecisionRequest, ItemFacts, ModelSuppression, NewCase, NewReport, ReportLane,
    ReportLimits, ReviewError, ReviewStore, Role, SeenItem,
};
use cordon_statements::{AutomatedDecision, ContentType, Restriction, SourceType, YesNo};

async fn store(db: &TestDb) -> ReviewStore {
    ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect and migrate")
}

fn item(id: &str, version: u64, lang: &str) -> ContentItem {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "kind": "listing",
        "channel": {"id": "shop-7", "title": "Shop"},
        "text": "text",
        "lang": lang,
        "media": [{"kind": "image", "url": "https://example.org/a.jpg"}],
        "published_at": "2026-11-30T10:00:00Z",
        "indexed_at": "2026-11-30T10:00:01Z",
        "version": version,
    }))
    .expect("an item")
}

/// The worker sees the items (recording their facts).
async fn seen(store: &ReviewStore, items: &[ContentItem]) {
    let keys: Vec<SeenItem<'_>> = items.iter().map(SeenItem::of).collect();
    store.check_versions(&keys).await.expect("versions");
}

fn suppression(item: &ContentItem, facts: bool) -> ModelSuppression {
    ModelSuppression {
        item_id: item.id.clone(),
        item_version: item.version,
        category: Category::Drugs,
        score: 0.97,
        explanation: vec![Contribution {
            feature: "w:buy mdma".into(),
            weight: 2.0,
        }],
        facts: facts.then(|| ItemFacts::of(item)),
        decided_at: Utc::now(),
    }
}

fn scored(category: Category, score: f32) -> Scores {
    let mut scores = Scores::default();
    scores.0[category.index()] = score;
    scores
}

fn decision(item_id: &str, case_id: Option<i64>, who: &str, role: Role) -> DecisionRequest {
    DecisionRequest {
        item_id: item_id.into(),
        item_version: 1,
        action: Action::Suppress,
        moderator: who.into(),
        reason: "illegal_drugs".into(),
        note: None,
        case_id,
        expected_version: None,
        role,
        no_requeue: false,
    }
}

#[tokio::test]
async fn a_model_suppression_is_stated_once_fully_automated_and_never_edited() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let listing = item("m/1", 1, "de");
    seen(&store, std::slice::from_ref(&listing)).await;
    let s = suppression(&listing, true);
    assert_eq!(
        store
            .state_model_suppressions(std::slice::from_ref(&s))
            .await
            .unwrap(),
        1
    );
    // Re-processing the same version (a re-delivered batch) states nothing new.
    assert_eq!(store.state_model_suppressions(&[s]).await.unwrap(), 0);
    let statements = store
        .statements_about(&["m/1".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(statements.len(), 1);
    let st = &statements[0];
    assert_eq!(st.restriction, Restriction::ModelSuppression);
    assert_eq!(
        (st.item_version, st.channel_id.as_deref(), st.decision_id),
        (Some(1), Some("shop-7"), None)
    );
    let t = &st.tdb;
    assert_eq!(
        (t.automated_detection, t.automated_decision, t.source_type),
        (YesNo::Yes, AutomatedDecision::Fully, SourceType::Voluntary)
    );
    assert_eq!(
        t.content_type,
        vec![ContentType::Product, ContentType::Image]
    );
    assert_eq!(
        (t.content_language.as_deref(), t.content_date.as_str()),
        (Some("DE"), "2026-11-30")
    );
    assert!(t.puid.starts_with("cordon-") && t.puid == st.puid);
    t.validate().expect("what the database accepts");
    assert_eq!(st.text_language, "de");
    assert!(st.text.contains("„m/1“") && st.text.contains("“buy mdma”"));
    assert_eq!(
        store.statement(st.id, Role::Moderator).await.unwrap().puid,
        st.puid
    );
    // Never edited: the table refuses updates and deletes for every role.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    for sql in [
        "UPDATE statements SET text = 'edited'",
        "DELETE FROM statements",
    ] {
        let refused = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
    // Truncation is refused too (by the trigger, or first by the submission queue's reference).
    assert!(sqlx::query("TRUNCATE statements")
        .execute(&mut conn)
        .await
        .is_err());
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM statements")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    // The context role has no item: the facts the worker recorded are used.
    let other = item("m/2", 1, "fr");
    seen(&store, std::slice::from_ref(&other)).await;
    store
        .state_model_suppressions(&[suppression(&other, false)])
        .await
        .unwrap();
    let st = store
        .statements_about(&["m/2".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(
        (st[0].text_language.as_str(), st[0].channel_id.as_deref()),
        ("fr", Some("shop-7"))
    );
    assert!(matches!(
        store.statement(9999, Role::Admin).await,
        Err(ReviewError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_person_deciding_a_model_case_or_a_report_is_partially_automated() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    seen(&store, &[item("q/1", 1, "en"), item("r/1", 1, "en")]).await;
    store
        .insert_cases(&[NewCase {
            item_id: "q/1".into(),
            item_version: 1,
            category: Category::Drugs,
            score: 0.6,
            scores: scored(Category::Drugs, 0.6),
            reason: "drugs 0.60 >= review_at 0.50".into(),
            model_version: "m1".into(),
            reach: None,
            language: Some("en".into()),
        }])
        .await
        .unwrap();
    let queued = store
        .list_cases(&Default::default(), Role::Moderator, 10)
        .await
        .unwrap();
    let decided = store
        .decide(&decision("q/1", Some(queued[0].id), "ann", Role::Moderator))
        .await
        .unwrap();
    let st = store
        .statements_about(&["q/1".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].restriction, st[0].decision_id),
        (Restriction::ModeratorSuppression, Some(decided.id))
    );
    assert_eq!(
        (
            st[0].tdb.automated_detection,
            st[0].tdb.automated_decision,
            st[0].tdb.source_type
        ),
        (
            YesNo::Yes,
            AutomatedDecision::Partially,
            SourceType::Voluntary
        )
    );
    // A user's report about an item the model scored, decided by a person.
    let limits = ReportLimits {
        per_reporter_per_hour: 10,
        per_item_per_hour: 10,
        hold_at: 5.0,
    };
    let report = store
        .report(
            &NewReport {
                item_id: "r/1".into(),
                item_version: 1,
                reporter: "p:u1".into(),
                lane: ReportLane::Platform,
                flagger_weight: None,
                flagger_name: None,
                reason: "drugs".into(),
                details: None,
                scores: Some(scored(Category::Drugs, 0.3)),
                language: Some("en".into()),
            },
            limits,
        )
        .await
        .unwrap();
    assert!(!report.held);
    store
        .decide(&decision(
            "r/1",
            Some(report.case_id),
            "ann",
            Role::Moderator,
        ))
        .await
        .unwrap();
    let st = store
        .statements_about(&["r/1".into()], Role::Moderator)
        .await
        .unwrap();
    let t = &st[0].tdb;
    assert_eq!(
        (t.automated_detection, t.automated_decision, t.source_type),
        (
            YesNo::No,
            AutomatedDecision::Partially,
            SourceType::Article16
        )
    );
    assert!(st[0].text.contains("after a report"), "{}", st[0].text);
    // A restore restricts nothing: no statement.
    let restore = DecisionRequest {
        action: Action::Restore,
        reason: "not_illegal".into(),
        case_id: None,
        ..decision("r/1", None, "ann", Role::Moderator)
    };
    store.decide(&restore).await.unwrap();
    assert_eq!(
        store
            .statements_about(&["r/1".into()], Role::Moderator)
            .await
            .unwrap()
            .len(),
        1
    );
    // A decision without a case or a model's assessment (an item Cordon never saw).
    store
        .decide(&decision("never-seen", None, "ann", Role::Moderator))
        .await
        .unwrap();
    let st = store
        .statements_about(&["never-seen".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(
        (
            st[0].tdb.automated_decision,
            st[0].tdb.source_type,
            st[0].channel_id.as_deref()
        ),
        (AutomatedDecision::NotAutomated, SourceType::Voluntary, None)
    );
    st[0].tdb.validate().unwrap();
}

#[tokio::test]
async fn a_trusted_flaggers_hold_and_a_channel_suppression_are_stated() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    seen(&store, &[item("h/1", 1, "en")]).await;
    let held = store
        .report(
            &NewReport {
                item_id: "h/1".into(),
                item_version: 1,
                reporter: "f:hotline:case-77".into(),
                lane: ReportLane::TrustedFlagger,
                flagger_weight: Some(5.0),
                flagger_name: Some("National Hotline".into()),
                reason: "weapons".into(),
                details: None,
                scores: None,
                language: None,
            },
            ReportLimits {
                per_reporter_per_hour: 10,
                per_item_per_hour: 10,
                hold_at: 3.0,
            },
        )
        .await
        .unwrap();
    assert!(held.held);
    let st = store
        .statements_about(&["h/1".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].restriction, st[0].category),
        (Restriction::ReportHold, Category::Weapons)
    );
    let t = &st[0].tdb;
    assert_eq!(
        (
            t.automated_decision,
            t.source_type,
            t.source_identity.as_deref()
        ),
        (
            AutomatedDecision::Fully,
            SourceType::TrustedFlagger,
            Some("National Hotline")
        )
    );
    assert!(
        st[0].text.contains("until a moderator decides"),
        "{}",
        st[0].text
    );
    // A senior hides the whole channel, on the held item's case.
    store
        .decide_channel(&ChannelDecision {
            channel_id: "shop-7".into(),
            suppress: true,
            moderator: "sue".into(),
            role: Role::Senior,
            reason: "illegal_weapons".into(),
            note: None,
            case: Some((held.case_id, None)),
        })
        .await
        .unwrap();
    let st = store
        .statements_about(&["channel:shop-7".into()], Role::Moderator)
        .await
        .unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (
            st[0].restriction,
            st[0].item_version,
            st[0].channel_id.as_deref()
        ),
        (Restriction::ChannelSuppression, None, Some("shop-7"))
    );
    assert_eq!(st[0].tdb.content_type, vec![ContentType::Text]);
    assert_eq!(st[0].tdb.source_type, SourceType::TrustedFlagger);
    assert!(st[0].text.contains("channel “shop-7”"), "{}", st[0].text);
}

#[tokio::test]
async fn below_senior_a_statement_of_an_escalated_decision_is_not_shown() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    seen(&store, &[item("e/1", 1, "en")]).await;
    store
        .insert_cases(&[NewCase {
            item_id: "e/1".into(),
            item_version: 1,
            category: Category::Hacking,
            score: 0.7,
            scores: scored(Category::Hacking, 0.7),
            reason: "hacking".into(),
            model_version: "m1".into(),
            reach: None,
            language: None,
        }])
        .await
        .unwrap();
    let case = store
        .list_cases(&Default::default(), Role::Moderator, 10)
        .await
        .unwrap()[0]
        .clone();
    store
        .escalate(case.id, "ann", Role::Moderator, None, None)
        .await
        .unwrap();
    store
        .decide(&decision("e/1", Some(case.id), "sue", Role::Senior))
        .await
        .unwrap();
    let subjects = ["e/1".to_string()];
    assert!(store
        .statements_about(&subjects, Role::Moderator)
        .await
        .unwrap()
        .is_empty());
    let seniors = store
        .statements_about(&subjects, Role::Senior)
        .await
        .unwrap();
    assert_eq!(seniors.len(), 1);
    assert!(matches!(
        store.statement(seniors[0].id, Role::Moderator).await,
        Err(ReviewError::Forbidden(_))
    ));
}
