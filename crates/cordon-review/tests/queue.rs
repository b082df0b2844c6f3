//! The review store against the real PostgreSQL.

use std::time::Duration;

use cordon_domain::{Action, Category, DecidedBy, Scores};
use cordon_e2e::TestDb;
use cordon_review::{DecisionRequest, NewCase, ReviewError, ReviewStore};

async fn store(db: &TestDb) -> ReviewStore {
    ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect and migrate")
}

fn case(id: &str, version: u64) -> NewCase {
    let mut scores = Scores::default();
    scores.0[Category::Drugs.index()] = 0.6;
    NewCase {
        item_id: id.into(),
        item_version: version,
        category: Category::Drugs,
        score: 0.6,
        scores,
        reason: "drugs 0.60 >= review_at 0.50".into(),
        model_version: "m1".into(),
    }
}

#[tokio::test]
async fn cases_are_queued_once_per_item_version() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    assert_eq!(
        store
            .insert_cases(&[case("a", 1), case("b", 1)])
            .await
            .unwrap(),
        2
    );
    // Re-processing the same messages (at-least-once delivery) adds nothing.
    assert_eq!(
        store
            .insert_cases(&[case("a", 1), case("b", 1), case("a", 2)])
            .await
            .unwrap(),
        1
    );
    let open = store.list_cases(Some("open"), 100).await.unwrap();
    assert_eq!(open.len(), 3);
    assert_eq!(open[0].scores.get(Category::Drugs), 0.6);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.open_cases, 3);
    // Migrations are idempotent: a second connect applies nothing new.
    drop(store);
    let again = ReviewStore::connect(&db.url, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.list_cases(None, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn decision_resolves_case_and_waits_in_outbox_until_published() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store.insert_cases(&[case("a", 1)]).await.unwrap();
    let case_id = store.list_cases(None, 1).await.unwrap()[0].id;
    let decision = store
        .decide(&DecisionRequest {
            item_id: "a".into(),
            item_version: 1,
            action: Action::Restore,
            moderator: "ann".into(),
            reason: "not_illegal".into(),
            note: Some("a harm-reduction notice".into()),
            case_id: Some(case_id),
        })
        .await
        .unwrap();
    assert_eq!(store.case(case_id).await.unwrap().state, "resolved");
    let (cases, decisions) = store.history("a").await.unwrap();
    assert_eq!((cases.len(), decisions.len()), (1, 1));
    assert_eq!(decisions[0].moderator, "ann");

    // Kafka is down: publishing fails, the verdict stays queued.
    let err = store
        .relay_outbox(10, |_| async { Err("broker unreachable".to_string()) })
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Publish(_)));
    assert_eq!(store.stats().await.unwrap().outbox_pending, 1);

    // Kafka is back: the verdict goes out exactly once.
    let mut published = Vec::new();
    let n = store
        .relay_outbox(10, |rows| {
            published = rows;
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(published[0].key, "a");
    let verdict: cordon_domain::Verdict = serde_json::from_str(&published[0].payload).unwrap();
    assert_eq!(verdict.action, Action::Restore);
    assert_eq!(
        verdict.decided_by,
        DecidedBy::Human {
            moderator: "ann".into(),
            decision_id: decision.id
        }
    );
    assert_eq!(
        store.relay_outbox(10, |_| async { Ok(()) }).await.unwrap(),
        0
    );

    // The worker finds the human decision when it re-scores the same version.
    let humans = store
        .human_verdicts(&[("a".into(), 1), ("b".into(), 1)])
        .await
        .unwrap();
    assert_eq!(humans.len(), 1);
    assert_eq!(humans[&("a".to_string(), 1)].action, Action::Restore);
}

#[tokio::test]
async fn invalid_decisions_are_rejected() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let mut req = DecisionRequest {
        item_id: "a".into(),
        item_version: 1,
        action: Action::Review,
        moderator: "ann".into(),
        reason: "x".into(),
        note: None,
        case_id: None,
    };
    assert!(matches!(
        store.decide(&req).await,
        Err(ReviewError::Invalid(_))
    ));
    req.action = Action::Suppress;
    req.case_id = Some(999);
    assert!(matches!(
        store.decide(&req).await,
        Err(ReviewError::NotFound(_))
    ));
    assert_eq!(store.stats().await.unwrap().outbox_pending, 0);
}
