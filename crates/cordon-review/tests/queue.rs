//! The review store against the real PostgreSQL.

use std::time::Duration;

use cordon_domain::{Action, Category, DecidedBy, Scores};
use cordon_review::test_support::TestDb;
use cordon_review::{
    CaseFilter, CaseState, DecisionRequest, NewCase, OutboxTopic, ReportLane, ReviewError,
    ReviewStore, Role, SeenItem,
};

async fn store(db: &TestDb) -> ReviewStore {
    ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect and migrate")
}

/// Keys without items, as the context role passes them.
fn keys(keys: &[(&'static str, u64)]) -> Vec<SeenItem<'static>> {
    keys.iter()
        .map(|(id, version)| SeenItem {
            id,
            version: *version,
            item: None,
        })
        .collect()
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
        reach: None,
        language: Some("en".into()),
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
    let open = store
        .list_cases(
            &CaseFilter {
                state: Some(CaseState::Open),
                ..CaseFilter::default()
            },
            Role::Moderator,
            100,
        )
        .await
        .unwrap();
    assert_eq!(open.len(), 3);
    assert_eq!(open[0].scores.get(Category::Drugs), 0.6);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.open_cases, 3);
    // Migrations are idempotent: a second connect applies nothing new.
    drop(store);
    let again = ReviewStore::connect(&db.url, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        again
            .list_cases(&CaseFilter::default(), Role::Moderator, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn decision_resolves_case_and_waits_in_outbox_until_published() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store.insert_cases(&[case("a", 1)]).await.unwrap();
    let case_id = store
        .list_cases(&CaseFilter::default(), Role::Moderator, 1)
        .await
        .unwrap()[0]
        .id;
    let decision = store
        .decide(&DecisionRequest {
            item_id: "a".into(),
            item_version: 1,
            action: Action::Restore,
            moderator: "ann".into(),
            reason: "not_illegal".into(),
            note: Some("a harm-reduction notice".into()),
            case_id: Some(case_id),
            expected_version: None,
            role: Role::Moderator,
            no_requeue: false,
        })
        .await
        .unwrap();
    assert_eq!(
        store.case(case_id).await.unwrap().state,
        CaseState::Resolved
    );
    let (cases, decisions) = store.history("a", Role::Admin).await.unwrap();
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
            async { Ok(Vec::new()) }
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
        store
            .relay_outbox(10, |_| async { Ok(Vec::new()) })
            .await
            .unwrap(),
        0
    );
    // The worker finds the human decision when it re-scores the same version.
    let check = store
        .check_versions(&keys(&[("a", 1), ("b", 1)]))
        .await
        .unwrap();
    assert_eq!(check.decided.len(), 1);
    assert_eq!(check.decision("a", 1).unwrap().action, Action::Restore);
    assert!(check.decision("b", 1).is_none());
    // A newer version was not decided: the decision on the old one does not carry over.
    let check = store.check_versions(&keys(&[("a", 2)])).await.unwrap();
    assert!(check.decided.is_empty());
    assert!(!check.is_current("a", 1));
    // A row the broker can never take is set aside (counted), and later decisions still flow.
    let again = DecisionRequest {
        item_id: "c".into(),
        item_version: 1,
        action: Action::Suppress,
        moderator: "ann".into(),
        reason: "illegal_drugs".into(),
        note: Some("x".repeat(cordon_review::MAX_NOTE_CHARS)),
        case_id: None,
        expected_version: None,
        role: Role::Senior,
        no_requeue: false,
    };
    store.decide(&again).await.unwrap();
    let n = store
        .relay_outbox(10, |_| async { Ok(vec![(0, "too large".to_string())]) })
        .await
        .unwrap();
    assert_eq!(n, 0);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.outbox_pending, stats.outbox_refused), (0, 1));
    store
        .decide(&DecisionRequest {
            note: None,
            ..again.clone()
        })
        .await
        .unwrap();
    let mut later = Vec::new();
    store
        .relay_outbox(10, |rows| {
            later = rows;
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "only the new decision is published");
    // Notes and reasons are bounded on the server.
    let long = DecisionRequest {
        note: Some("x".repeat(cordon_review::MAX_NOTE_CHARS + 1)),
        ..again.clone()
    };
    assert!(matches!(
        store.decide(&long).await,
        Err(ReviewError::Invalid(_))
    ));
    let nul = DecisionRequest {
        note: Some("a\u{0}b".into()),
        ..again.clone()
    };
    assert!(matches!(
        store.decide(&nul).await,
        Err(ReviewError::Invalid(_))
    ));
    let channel = DecisionRequest {
        item_id: "channel:c1".into(),
        ..again.clone()
    };
    assert!(matches!(
        store.decide(&channel).await,
        Err(ReviewError::Invalid(_))
    ));
    let huge_version = DecisionRequest {
        item_version: u64::MAX,
        ..again
    };
    assert!(matches!(
        store.decide(&huge_version).await,
        Err(ReviewError::Invalid(_))
    ));
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
        expected_version: None,
        role: Role::Moderator,
        no_requeue: false,
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

fn scored(id: &str, score: f32, reach: Option<u64>) -> NewCase {
    NewCase {
        score,
        reach,
        ..case(id, 1)
    }
}

fn decision(
    case: &cordon_review::Case,
    who: &str,
    version: Option<i32>,
    role: Role,
) -> DecisionRequest {
    DecisionRequest {
        item_id: case.item_id.clone(),
        item_version: case.item_version,
        action: Action::Suppress,
        moderator: who.into(),
        reason: "drugs_offer".into(),
        note: None,
        case_id: Some(case.id),
        expected_version: version,
        role,
        no_requeue: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_moderators_claiming_at_once_never_share_a_case() {
    let db = TestDb::create().await.unwrap();
    let store = ReviewStore::connect(&db.url, 16, Duration::from_secs(10))
        .await
        .unwrap();
    let cases: Vec<NewCase> = (0..60).map(|i| case(&format!("item{i}"), 1)).collect();
    store.insert_cases(&cases).await.unwrap();
    let mut tasks = Vec::new();
    for m in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(c) = store
                .claim_next(
                    &format!("mod{m}"),
                    Role::Moderator,
                    Duration::from_secs(300),
                )
                .await
                .unwrap()
            {
                assert_eq!(c.claimed_by.as_deref(), Some(format!("mod{m}").as_str()));
                mine.push(c.id);
                // A moderator holds at most MAX_CLAIMS cases: decide this one, then claim on.
                store
                    .decide(&decision(&c, &format!("mod{m}"), None, Role::Moderator))
                    .await
                    .unwrap();
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every case claimed");
    assert_eq!(distinct.len(), 60, "no case claimed twice");
}

#[tokio::test]
async fn an_expired_lease_returns_the_case_and_stale_decisions_are_refused() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store.insert_cases(&[case("a", 1)]).await.unwrap();
    let ann = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    // Another moderator cannot decide a case ann holds.
    let err = store
        .decide(&decision(&ann, "bob", None, Role::Moderator))
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Conflict(_)), "{err}");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Ann's lease ran out: the case is not lost, bob gets it.
    let bob = store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.id, ann.id);
    assert!(bob.version > ann.version);
    // Ann decides on what she saw: refused as stale.
    let err = store
        .decide(&decision(&ann, "ann", Some(ann.version), Role::Moderator))
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Conflict(_)), "{err}");
    // Bob decides on the current version.
    store
        .decide(&decision(&bob, "bob", Some(bob.version), Role::Moderator))
        .await
        .unwrap();
    let resolved = store.case(bob.id).await.unwrap();
    assert_eq!(resolved.state, CaseState::Resolved);
    assert!(store
        .claim_next("carl", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.stats().await.unwrap().outbox_pending,
        1,
        "one verdict, from bob"
    );
}

#[tokio::test]
async fn priority_orders_the_queue_and_escalations_go_to_seniors() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .insert_cases(&[
            scored("low", 0.55, None),
            scored("high", 0.8, None),
            scored("wide", 0.55, Some(1_000_000)),
        ])
        .await
        .unwrap();
    let first = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.item_id, "wide",
        "a million followers outweigh 0.25 of score"
    );
    let second = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.item_id, "high", "then the higher score");

    let escalated = store
        .escalate(
            first.id,
            "ann",
            Role::Moderator,
            Some(first.version),
            Some("needs a senior"),
        )
        .await
        .unwrap();
    assert!(escalated.escalated && escalated.state == cordon_review::CaseState::Escalated);
    let visible: Vec<i64> = store
        .list_cases(&CaseFilter::default(), Role::Moderator, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert!(
        !visible.contains(&first.id),
        "moderators do not see escalated cases"
    );
    let err = store
        .decide(&decision(&escalated, "ann", None, Role::Moderator))
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Forbidden(_)), "{err}");
    // Nor without naming the case (an item decision): every path goes through the same gate.
    let item_decision = DecisionRequest {
        case_id: None,
        ..decision(&escalated, "ann", None, Role::Moderator)
    };
    let err = store.decide(&item_decision).await.unwrap_err();
    assert!(matches!(err, ReviewError::Forbidden(_)), "{err}");
    // And a moderator sees nothing of it through the item history or the audit log.
    let (cases, _) = store
        .history(&escalated.item_id, Role::Moderator)
        .await
        .unwrap();
    assert!(cases.iter().all(|c| c.id != escalated.id));
    let audit = store.audit_log(None, 100, Role::Moderator).await.unwrap();
    assert!(audit.iter().all(|e| e.case_id != Some(escalated.id)));
    assert!(store
        .audit_log(None, 100, Role::Senior)
        .await
        .unwrap()
        .iter()
        .any(|e| e.case_id == Some(escalated.id) && e.note.as_deref() == Some("needs a senior")));
    // The remaining ordinary case goes to a moderator; the escalated one only to a senior.
    let third = store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.item_id, "low");
    // An item decision by someone else does not get round bob's claim either.
    let err = store
        .decide(&DecisionRequest {
            case_id: None,
            ..decision(&third, "carl", None, Role::Moderator)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Conflict(_)), "{err}");
    assert!(store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    let senior = store
        .claim_next("sue", Role::Senior, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(senior.id, first.id);
    store
        .decide(&decision(
            &senior,
            "sue",
            Some(senior.version),
            Role::Senior,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_action_is_audited_and_the_log_cannot_be_edited() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store.insert_cases(&[case("a", 1)]).await.unwrap();
    let claimed = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    store
        .decide(&decision(
            &claimed,
            "ann",
            Some(claimed.version),
            Role::Moderator,
        ))
        .await
        .unwrap();
    let log = store
        .audit_log(Some(claimed.id), 10, Role::Admin)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(actions, vec![("ann", "decide:suppress"), ("ann", "claim")]);
    assert_eq!(log[0].before.as_ref().unwrap()["state"], "claimed");
    assert_eq!(log[0].after.as_ref().unwrap()["state"], "resolved");
    assert_eq!(log[0].note.as_deref(), Some("drugs_offer"));

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    for statement in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE decisions SET moderator = 'mallory'",
        "DELETE FROM decisions",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(
        store.audit_log(None, 10, Role::Admin).await.unwrap().len(),
        2
    );
}

fn report(item: &str, reporter: &str) -> cordon_review::NewReport {
    cordon_review::NewReport {
        item_id: item.into(),
        item_version: 1,
        reporter: reporter.into(),
        lane: ReportLane::Platform,
        flagger_weight: None,
        flagger_name: None,
        reason: "drugs".into(),
        details: Some("sells powder".into()),
        scores: None,
        language: None,
    }
}

const LIMITS: cordon_review::ReportLimits = cordon_review::ReportLimits {
    per_reporter_per_hour: 3,
    per_item_per_hour: 100,
    hold_at: 3.0,
};

#[tokio::test]
async fn reports_open_cases_dedupe_rate_limit_and_hold_at_threshold() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    // An item the model allowed: the first report opens a case.
    let first = store.report(&report("x", "r1"), LIMITS).await.unwrap();
    assert!(!first.duplicate && !first.held && first.reporters == 1);
    let case = store.case(first.case_id).await.unwrap();
    assert_eq!(
        (case.source.as_str(), case.category.as_str()),
        ("report", "drugs")
    );
    // The same reporter again: acknowledged, not counted.
    let again = store.report(&report("x", "r1"), LIMITS).await.unwrap();
    assert!(again.duplicate && again.reporters == 1 && again.report_id == first.report_id);
    // A second reporter raises the priority; the third hides the item pending review.
    let second = store.report(&report("x", "r2"), LIMITS).await.unwrap();
    assert!(store.case(second.case_id).await.unwrap().priority > case.priority);
    assert!(!second.held);
    let third = store.report(&report("x", "r3"), LIMITS).await.unwrap();
    assert!(third.held && third.reporters == 3);
    let mut held = Vec::new();
    store
        .relay_outbox(10, |rows| {
            held = rows;
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    // One verdict (the hold) among the reporters' acknowledgements.
    let verdicts: Vec<_> = held
        .iter()
        .filter(|r| r.topic == OutboxTopic::Verdicts)
        .collect();
    assert_eq!(verdicts.len(), 1);
    let verdict: cordon_domain::Verdict = serde_json::from_str(&verdicts[0].payload).unwrap();
    assert_eq!(verdict.action, Action::Hold);
    // A fourth reporter does not hold again: only its acknowledgement is queued.
    assert!(store.report(&report("x", "r4"), LIMITS).await.unwrap().held);
    let mut later = Vec::new();
    store
        .relay_outbox(10, |rows| {
            later = rows;
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].topic, OutboxTopic::Outcomes);

    // Rate limit: r1 may file three reports an hour.
    store.report(&report("y", "r1"), LIMITS).await.unwrap();
    store.report(&report("z", "r1"), LIMITS).await.unwrap();
    let err = store.report(&report("w", "r1"), LIMITS).await.unwrap_err();
    assert!(matches!(err, ReviewError::RateLimited(_)), "{err}");
    let bad = cordon_review::NewReport {
        reason: String::new(),
        ..report("v", "r9")
    };
    assert!(matches!(
        store.report(&bad, LIMITS).await,
        Err(ReviewError::Invalid(_))
    ));
}

#[tokio::test]
async fn only_vouched_reporters_hold_and_reports_raise_priority_by_a_bounded_amount() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let limits = cordon_review::ReportLimits {
        per_reporter_per_hour: 100,
        per_item_per_hour: 40,
        hold_at: 3.0,
    };
    let unverified = |item: &str, who: &str| cordon_review::NewReport {
        lane: ReportLane::Unverified,
        ..report(item, who)
    };
    // Thirty invented names: recorded, one case, no hold, priority raised by nothing.
    let mut last = None;
    for i in 0..30 {
        let outcome = store
            .report(&unverified("x", &format!("u:fake{i}")), limits)
            .await
            .unwrap();
        assert!(!outcome.held, "report {i} held the item");
        last = Some(outcome);
    }
    let case = store.case(last.unwrap().case_id).await.unwrap();
    assert_eq!(case.priority, 0.0);
    // The audit log records the case's opening once, by the system, never by a reporter.
    let log = store.audit_log(None, 100, Role::Admin).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].actor, cordon_review::REPORTS_ACTOR);
    // The item takes at most 40 unverified reports an hour, from all of them together.
    for i in 30..40 {
        store
            .report(&unverified("x", &format!("u:more{i}")), limits)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .report(&unverified("x", "u:one-too-many"), limits)
            .await,
        Err(ReviewError::RateLimited(_))
    ));
    // Signed reporters hold at weight 3, and raise priority by at most MAX_REPORT_PRIORITY.
    for who in ["p:a", "p:b"] {
        assert!(!store.report(&report("y", who), limits).await.unwrap().held);
    }
    let held = store.report(&report("y", "p:c"), limits).await.unwrap();
    assert!(held.held);
    for who in ["p:d", "p:e", "p:f", "p:g", "p:h"] {
        store.report(&report("y", who), limits).await.unwrap();
    }
    let y = store.case(held.case_id).await.unwrap();
    assert!(
        (y.priority - cordon_review::MAX_REPORT_PRIORITY).abs() < 1e-6,
        "{}",
        y.priority
    );
    // A trusted flagger weighs what the configuration says: one report of weight 3 holds.
    let flagged = store
        .report(
            &cordon_review::NewReport {
                lane: ReportLane::TrustedFlagger,
                flagger_weight: Some(3.0),
                flagger_name: None,
                ..report("z", "f:hotline:1")
            },
            limits,
        )
        .await
        .unwrap();
    assert!(flagged.held);
    // An unverified string never counts, not even one whose reports were upheld: anyone can
    // claim any string.
    for item in ["t1", "t2"] {
        let o = store
            .report(&unverified(item, "u:veteran"), limits)
            .await
            .unwrap();
        let c = store.case(o.case_id).await.unwrap();
        store
            .decide(&decision(&c, "ann", None, Role::Moderator))
            .await
            .unwrap();
    }
    for who in ["u:veteran", "u:x", "u:y", "u:z"] {
        let o = store.report(&unverified("t3", who), limits).await.unwrap();
        assert!(!o.held);
    }
    // The per-item limit is per lane: unverified reports do not use up the signed ones' share.
    let mut last = None;
    for who in ["p:a", "p:b", "p:c"] {
        last = Some(store.report(&report("x", who), limits).await.unwrap());
    }
    assert!(
        last.unwrap().held,
        "signed reporters still hold an item flooded with unverified reports"
    );
}

#[tokio::test]
async fn rejected_reports_make_a_reporter_weigh_less() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let limits = cordon_review::ReportLimits {
        per_reporter_per_hour: 100,
        per_item_per_hour: 100,
        hold_at: 100.0,
    };
    let weight_of = |case: cordon_review::Case| case.priority;
    // The reporter's first report counts fully; a moderator rejects it (restores the item).
    let first = store.report(&report("a", "noisy"), limits).await.unwrap();
    let case = store.case(first.case_id).await.unwrap();
    let full = weight_of(case.clone());
    let mut restore = decision(&case, "ann", None, Role::Moderator);
    restore.action = Action::Restore;
    store.decide(&restore).await.unwrap();
    // Their next report raises a fresh case's priority less.
    let next = store.report(&report("b", "noisy"), limits).await.unwrap();
    let lighter = weight_of(store.case(next.case_id).await.unwrap());
    assert!(lighter < full, "{lighter} < {full}");
    let fresh = store.report(&report("c", "careful"), limits).await.unwrap();
    assert_eq!(weight_of(store.case(fresh.case_id).await.unwrap()), full);
}

#[tokio::test]
async fn stats_count_the_queue_and_agreement_with_the_model() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .insert_cases(&[case("a", 1), case("b", 1), case("c", 1)])
        .await
        .unwrap();
    let a = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    store
        .decide(&decision(&a, "ann", Some(a.version), Role::Moderator))
        .await
        .unwrap();
    let b = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let mut restore = decision(&b, "ann", Some(b.version), Role::Moderator);
    restore.action = Action::Restore;
    store.decide(&restore).await.unwrap();
    let c = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    store
        .escalate(c.id, "ann", Role::Moderator, Some(c.version), None)
        .await
        .unwrap();

    let report = store.queue_report().await.unwrap();
    assert_eq!((report.open_cases, report.escalated_cases), (1, 1));
    assert!(report.oldest_open_age_seconds >= 0.0);
    assert_eq!(
        report
            .decisions_per_hour
            .iter()
            .map(|h| h.decisions)
            .sum::<i64>(),
        2
    );
    assert_eq!(report.agreement.len(), 1);
    let drugs = &report.agreement[0];
    assert_eq!(
        (drugs.category.as_str(), drugs.upheld, drugs.overturned),
        ("drugs", 1, 1)
    );
    assert_eq!(drugs.agreement, 0.5);
}

#[tokio::test]
async fn bulk_decisions_report_each_case() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    store
        .insert_cases(&[case("a", 1), case("b", 1), case("c", 1)])
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .list_cases(&CaseFilter::default(), Role::Moderator, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    // Bob holds one of them: that one is refused, the others are decided.
    let held = store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let template = DecisionRequest {
        case_id: None,
        ..decision(&held, "ann", None, Role::Moderator)
    };
    let mut all = ids.clone();
    all.push(999_999);
    let results = store.decide_cases(&all, &template).await.unwrap();
    let decided: Vec<i64> = results
        .iter()
        .filter(|r| r.decision_id.is_some())
        .map(|r| r.case_id)
        .collect();
    assert_eq!(decided.len(), 2);
    assert!(!decided.contains(&held.id));
    let refused: Vec<&str> = results.iter().filter_map(|r| r.error.as_deref()).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|e| e.contains("claimed by bob")));
    assert!(refused.iter().any(|e| e.contains("not found")));
    assert_eq!(store.stats().await.unwrap().outbox_pending, 2);
    assert!(matches!(
        store.decide_cases(&[], &template).await,
        Err(ReviewError::Invalid(_))
    ));
    let too_many: Vec<i64> = (0..=cordon_review::BULK_LIMIT as i64).collect();
    assert!(matches!(
        store.decide_cases(&too_many, &template).await,
        Err(ReviewError::Invalid(_))
    ));
}

#[tokio::test]
async fn checked_versions_remember_the_highest_version_seen() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let seen = store
        .check_versions(&keys(&[("a", 2), ("a", 1), ("b", 1)]))
        .await
        .unwrap()
        .newest;
    assert_eq!((seen["a"], seen["b"]), (2, 1));
    // A late older version sees the newer one; a newer one moves the mark.
    let check = store
        .check_versions(&keys(&[("a", 1), ("b", 3)]))
        .await
        .unwrap();
    assert_eq!((check.newest["a"], check.newest["b"]), (2, 3));
    assert!(!check.is_current("a", 1) && check.is_current("b", 3));
}

#[tokio::test]
async fn queue_filters_and_counts() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let mut weapons = case("w", 1);
    weapons.category = Category::Weapons;
    weapons.language = Some("ru".into());
    let mut unknown = case("u", 1);
    unknown.language = None;
    store
        .insert_cases(&[case("a", 1), weapons, unknown])
        .await
        .unwrap();
    store.report(&report("r", "rita"), LIMITS).await.unwrap();
    let list = |f: CaseFilter| {
        let store = store.clone();
        async move {
            store
                .list_cases(&f, Role::Moderator, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.item_id)
                .collect::<Vec<_>>()
        }
    };
    let by = |category: Option<&str>, language: Option<&str>, source: Option<&str>| CaseFilter {
        category: category.map(String::from),
        language: language.map(String::from),
        source: source.map(|s| s.parse().expect("a source")),
        ..CaseFilter::default()
    };
    assert_eq!(list(by(Some("weapons"), None, None)).await, ["w"]);
    assert_eq!(list(by(None, Some("ru"), None)).await, ["w"]);
    assert_eq!(list(by(None, Some("unknown"), Some("model"))).await, ["u"]);
    assert_eq!(list(by(None, None, Some("report"))).await, ["r"]);
    let older = CaseFilter {
        min_age_hours: Some(1.0),
        ..CaseFilter::default()
    };
    assert!(list(older).await.is_empty());
    let newer = CaseFilter {
        max_age_hours: Some(1.0),
        ..CaseFilter::default()
    };
    assert_eq!(list(newer).await.len(), 4);
    // An unknown state cannot even be asked for: the filter's type refuses it.
    assert!("gone".parse::<CaseState>().is_err());

    let counts = store.queue_counts(Role::Moderator).await.unwrap();
    assert_eq!(counts.total, 4);
    let count = |facets: &[cordon_review::Facet], value: &str| {
        facets
            .iter()
            .find(|f| f.value == value)
            .map_or(0, |f| f.cases)
    };
    assert_eq!(count(&counts.category, "drugs"), 3);
    assert_eq!(count(&counts.category, "weapons"), 1);
    assert_eq!(count(&counts.language, "en"), 1);
    assert_eq!(count(&counts.language, "unknown"), 2);
    assert_eq!(count(&counts.source, "report"), 1);
}

#[tokio::test]
async fn a_restore_may_close_the_version_against_new_reports() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    // Two reported items, both restored; only the first restore leaves the version open.
    for item in ["open", "closed"] {
        let outcome = store.report(&report(item, "rita"), LIMITS).await.unwrap();
        let case = store.case(outcome.case_id).await.unwrap();
        store
            .decide(&DecisionRequest {
                action: Action::Restore,
                no_requeue: item == "closed",
                ..decision(&case, "ann", Some(case.version), Role::Moderator)
            })
            .await
            .unwrap();
    }
    for item in ["open", "closed"] {
        let outcome = store.report(&report(item, "ravi"), LIMITS).await.unwrap();
        let state = store.case(outcome.case_id).await.unwrap().state;
        let expected = if item == "open" {
            CaseState::Open
        } else {
            CaseState::Resolved
        };
        assert_eq!(state, expected, "{item}");
    }
    let (_, decisions) = store.history("closed", Role::Admin).await.unwrap();
    assert!(decisions[0].no_requeue);
    // The flag goes only with a restore.
    let case = store.case(1).await.unwrap();
    let suppress_final = DecisionRequest {
        no_requeue: true,
        ..decision(&case, "ann", None, Role::Moderator)
    };
    assert!(matches!(
        store.decide(&suppress_final).await,
        Err(ReviewError::Invalid(_))
    ));
}

#[tokio::test]
async fn one_moderator_holds_at_most_max_claims_cases() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let cases: Vec<NewCase> = (0..8).map(|i| case(&format!("c{i}"), 1)).collect();
    store.insert_cases(&cases).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..cordon_review::MAX_CLAIMS {
        held.push(
            store
                .claim_next("ann", Role::Moderator, Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let err = store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Conflict(_)), "{err}");
    // Others still get the rest; deciding one lets ann claim again.
    assert!(store
        .claim_next("bob", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
    store
        .decide(&decision(&held[0], "ann", None, Role::Moderator))
        .await
        .unwrap();
    assert!(store
        .claim_next("ann", Role::Moderator, Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
    // A bulk decision names each case once.
    let template = decision(&held[1], "ann", None, Role::Moderator);
    let err = store
        .decide_cases(&[held[1].id, held[1].id], &template)
        .await
        .unwrap_err();
    assert!(matches!(err, ReviewError::Invalid(_)), "{err}");
}
