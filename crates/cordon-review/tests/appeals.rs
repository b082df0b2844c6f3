//! Appeals against the real PostgreSQL: filed by the restricted channel within the window, once
//! per restriction; decided once, by a person who did not take the decision appealed; reversing
//! restores the item through the outbox with a statement correcting the original, in one
//! transaction; the appellant hears of both.

use std::time::Duration;

use chrono::{Months, Utc};
use cordon_domain::{Action, Category, ContentItem};
use cordon_review::test_support::TestDb;
use cordon_review::{
    AppealDecision, AppealState, AppealsConfig, ChannelDecision, DecisionAction, DecisionRequest,
    ItemFacts, ModelSuppression, NewAppeal, OutboxTopic, ReviewError, ReviewStore, Role, SeenItem,
};
use cordon_statements::Restriction;

async fn store(db: &TestDb) -> ReviewStore {
    ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .expect("connect and migrate")
}

fn item(id: &str) -> ContentItem {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "kind": "channel_post",
        "channel": {"id": "shop-7", "title": "Shop"},
        "text": "text",
        "lang": "de",
        "published_at": "2026-11-30T10:00:00Z",
        "indexed_at": "2026-11-30T10:00:01Z",
        "version": 1,
    }))
    .expect("an item")
}

fn appeal(statement_id: i64, channel_id: &str) -> NewAppeal {
    NewAppeal {
        statement_id,
        channel_id: channel_id.into(),
        appellant: "owner-1".into(),
        key_id: "platform".into(),
        grounds: "This is a pharmacy's price list, licensed.".into(),
    }
}

fn decide(appeal_id: i64, reverse: bool, who: &str, role: Role) -> AppealDecision {
    AppealDecision {
        appeal_id,
        reverse,
        moderator: who.into(),
        role,
        reason: "legitimate_seller".into(),
        note: Some("licence checked".into()),
    }
}

/// The statement of `subject`'s restriction (the only one).
async fn statement_of(store: &ReviewStore, subject: &str) -> cordon_review::Statement {
    let found = store
        .statements_about(&[subject.into()], Role::Admin)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// The channel appeals the restriction of `subject`; bob, a moderator, decides it.
async fn appealed(store: &ReviewStore, subject: &str, reverse: bool) -> cordon_review::Appeal {
    let st = statement_of(store, subject).await;
    let filed = store.file_appeal(&appeal(st.id, "shop-7")).await.unwrap();
    store
        .decide_appeal(&decide(filed.appeal_id, reverse, "bob", Role::Moderator))
        .await
        .unwrap()
}

/// The outbox rows waiting, as (topic, key, payload), published (removed) by reading them.
async fn outbox(store: &ReviewStore) -> Vec<(OutboxTopic, String, serde_json::Value)> {
    let mut found = Vec::new();
    store
        .relay_outbox(100, |rows| {
            for r in rows {
                found.push((r.topic, r.key, serde_json::from_str(&r.payload).unwrap()));
            }
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    found
}

#[tokio::test]
async fn an_appeal_is_reversed_once_by_a_person_who_did_not_take_the_decision() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await;
    let post = item("a/1");
    store.check_versions(&[SeenItem::of(&post)]).await.unwrap();
    store
        .decide(&DecisionRequest {
            item_id: "a/1".into(),
            item_version: 1,
            action: Action::Suppress,
            moderator: "ann".into(),
            reason: "illegal_drugs".into(),
            note: None,
            case_id: None,
            expected_version: None,
            role: Role::Senior,
            no_requeue: false,
        })
        .await
        .unwrap();
    let original = statement_of(&store, "a/1").await;
    assert_eq!(original.restriction, Restriction::ModeratorSuppression);
    outbox(&store).await;

    // Only the restricted channel appeals its own statement; the rest is not found alike.
    for (id, channel) in [(original.id, "other-shop"), (original.id + 100, "shop-7")] {
        let refused = store.file_appeal(&appeal(id, channel)).await.unwrap_err();
        assert!(matches!(refused, ReviewError::NotFound(_)), "{refused}");
    }
    for grounds in ["  ", "nul \0 inside", &"x".repeat(4001)] {
        let bad = NewAppeal {
            grounds: grounds.into(),
            ..appeal(original.id, "shop-7")
        };
        let refused = store.file_appeal(&bad).await.unwrap_err();
        assert!(matches!(refused, ReviewError::Invalid(_)), "{refused}");
    }
    let filed = store
        .file_appeal(&appeal(original.id, "shop-7"))
        .await
        .unwrap();
    assert!(!filed.duplicate);
    assert_eq!(filed.state, AppealState::Open);
    let again = store
        .file_appeal(&appeal(original.id, "shop-7"))
        .await
        .unwrap();
    assert_eq!((again.appeal_id, again.duplicate), (filed.appeal_id, true));
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.open_appeals, 1, "the gauge operators watch");
    assert!(stats.oldest_open_appeal_age_seconds >= 0.0);
    let key = format!("appeal-{}", filed.appeal_id);
    let sent = outbox(&store).await;
    assert_eq!(sent.len(), 1, "one notice for one appeal: {sent:?}");
    assert_eq!((sent[0].0, &sent[0].1), (OutboxTopic::Outcomes, &key));
    assert_eq!(sent[0].2["status"], "open");
    assert_eq!(sent[0].2["appellant"], "owner-1");

    // The seniors' queue: moderators neither see nor decide it.
    assert!(matches!(
        store.appeals(AppealState::Open, Role::Moderator, 10).await,
        Err(ReviewError::Forbidden(_))
    ));
    let queue = store
        .appeals(AppealState::Open, Role::Senior, 10)
        .await
        .unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(
        queue[0].grounds,
        "This is a pharmacy's price list, licensed."
    );
    for (who, role) in [
        ("bob", Role::Moderator),
        ("ann", Role::Senior),
        ("ann", Role::Admin),
        ("system:reports", Role::Admin),
    ] {
        let refused = store
            .decide_appeal(&decide(filed.appeal_id, true, who, role))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ReviewError::Forbidden(_)),
            "{who}: {refused}"
        );
    }
    assert!(outbox(&store).await.is_empty(), "a refusal changes nothing");

    // Another senior reverses it: a restore, a correcting statement, the appellant told.
    let decided = store
        .decide_appeal(&decide(filed.appeal_id, true, "cy", Role::Senior))
        .await
        .unwrap();
    assert_eq!(decided.state, AppealState::Reversed);
    assert_eq!(decided.decided_by.as_deref(), Some("cy"));
    let (_, history) = store.history("a/1", Role::Senior).await.unwrap();
    let restore = history.iter().max_by_key(|d| d.id).unwrap();
    assert_eq!(
        (restore.action, restore.moderator.as_str(), Some(restore.id)),
        (DecisionAction::Restore, "cy", decided.decision_id)
    );
    let correction = store
        .statement(decided.correction_id.unwrap(), Role::Senior)
        .await
        .unwrap();
    assert_eq!(correction.corrects, Some(original.id));
    assert_eq!(correction.restriction, Restriction::ModeratorSuppression);
    assert_eq!(correction.decision_id, decided.decision_id);
    assert_eq!(
        correction.tdb.end_date_visibility_restriction,
        Some(Utc::now().format("%Y-%m-%d").to_string())
    );
    assert_ne!(correction.puid, original.puid);
    assert!(correction.tdb.decision_facts.contains(&original.puid));
    assert_eq!(correction.text_language, "de");
    assert!(
        correction.text.contains("„a/1“ erscheint seit dem"),
        "{}",
        correction.text
    );
    assert_eq!(
        store
            .statement(original.id, Role::Senior)
            .await
            .unwrap()
            .text,
        original.text,
        "the original stays as written"
    );
    let sent = outbox(&store).await;
    let verdict = sent
        .iter()
        .find(|(topic, k, _)| *topic == OutboxTopic::Verdicts && k == "a/1")
        .expect("the restore verdict");
    assert_eq!(verdict.2["action"], "restore");
    let notice = sent
        .iter()
        .find(|(_, k, _)| *k == key)
        .expect("the appellant's notice");
    assert_eq!(
        (&notice.2["status"], &notice.2["reason"]),
        (
            &serde_json::json!("reversed"),
            &serde_json::json!("legitimate_seller")
        )
    );
    assert_eq!(
        notice.2["correction_text"],
        serde_json::json!(correction.text)
    );
    assert!(
        notice.2.get("decision_note").is_none(),
        "the note stays inside"
    );

    // Decided once.
    let again = store
        .decide_appeal(&decide(filed.appeal_id, false, "dee", Role::Senior))
        .await
        .unwrap_err();
    assert!(matches!(again, ReviewError::Conflict(_)), "{again}");
    let told = store.appeal_notice(filed.appeal_id).await.unwrap();
    assert_eq!(told.status, AppealState::Reversed);
    // A correction lifts a restriction: there is nothing to appeal in it.
    let refused = store
        .file_appeal(&appeal(correction.id, "shop-7"))
        .await
        .unwrap_err();
    assert!(matches!(refused, ReviewError::Conflict(_)), "{refused}");
    // A restriction a later decision replaced is not appealed (the later one is), and no one
    // who decided about the item version decides the appeal of the one in force.
    let again = item("a/2");
    store.check_versions(&[SeenItem::of(&again)]).await.unwrap();
    let on = |action, who: &str| DecisionRequest {
        item_id: "a/2".into(),
        item_version: 1,
        action,
        moderator: who.into(),
        reason: "illegal_drugs".into(),
        note: None,
        case_id: None,
        expected_version: None,
        role: Role::Senior,
        no_requeue: false,
    };
    store.decide(&on(Action::Suppress, "ann")).await.unwrap();
    store.decide(&on(Action::Restore, "bob")).await.unwrap();
    store.decide(&on(Action::Suppress, "dee")).await.unwrap();
    let stated = store
        .statements_about(&["a/2".into()], Role::Admin)
        .await
        .unwrap();
    assert_eq!(stated.len(), 2);
    let replaced = store
        .file_appeal(&appeal(stated[0].id, "shop-7"))
        .await
        .unwrap_err();
    assert!(
        matches!(&replaced, ReviewError::Conflict(m) if m.contains("no longer in force")),
        "{replaced}"
    );
    let current = store
        .file_appeal(&appeal(stated[1].id, "shop-7"))
        .await
        .unwrap();
    for who in ["ann", "bob", "dee"] {
        assert!(store.took_part(&stated[1], who).await.unwrap());
        let refused = store
            .decide_appeal(&decide(current.appeal_id, true, who, Role::Senior))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ReviewError::Forbidden(_)),
            "{who}: {refused}"
        );
    }
    assert!(!store.took_part(&stated[1], "cy").await.unwrap());
    store
        .decide_appeal(&decide(current.appeal_id, true, "cy", Role::Senior))
        .await
        .unwrap();

    let audit = store.audit_log(None, 20, Role::Admin).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("system:appeals", "appeal:file")),
        "{actions:?}"
    );
    assert!(actions.contains(&("cy", "appeal:reverse")), "{actions:?}");

    // The period's report: two appeals, reversed; corrections are no new restrictions.
    let day = Utc::now().date_naive();
    let (from, to) = cordon_review::days(day, day).unwrap();
    let report = store.transparency_report(from, to).await.unwrap();
    assert_eq!(
        (
            report.appeals.filed,
            report.appeals.reversed,
            report.appeals.pending
        ),
        (2, 2, 0)
    );
    assert_eq!(report.appeals.reversal_rate, Some(1.0));
    assert!(report.appeals.median_seconds_to_decision.is_some());
    let restrictions: i64 = report.restrictions.iter().map(|c| c.count).sum();
    assert_eq!(restrictions, 3);
    assert_eq!(report.statements.total, 5);
}

#[tokio::test]
async fn model_and_channel_restrictions_are_appealed_within_the_window() {
    let db = TestDb::create().await.unwrap();
    let store = store(&db).await.with_appeals(AppealsConfig {
        window_months: 6,
        deciders: Role::Moderator,
    });
    let now = Utc::now();
    let suppressed = |id: &str, at| ModelSuppression {
        item_id: id.into(),
        item_version: 1,
        category: Category::Drugs,
        score: 0.99,
        explanation: Vec::new(),
        facts: Some(ItemFacts::of(&item(id))),
        decided_at: at,
    };
    let old = now.checked_sub_months(Months::new(6)).unwrap() - chrono::Duration::hours(1);
    store
        .state_model_suppressions(&[suppressed("m/1", now), suppressed("m/old", old)])
        .await
        .unwrap();

    // The model decided alone: any person decides its appeal (here any moderator, as
    // configured) and may keep the restriction.
    let upheld = appealed(&store, "m/1", false).await;
    assert_eq!(
        (upheld.state, upheld.correction_id, upheld.decision_id),
        (AppealState::Upheld, None, None)
    );
    assert!(store
        .history("m/1", Role::Admin)
        .await
        .unwrap()
        .1
        .is_empty());
    let told = store.appeal_notice(upheld.id).await.unwrap();
    assert_eq!(
        (told.status, told.reason.as_deref()),
        (AppealState::Upheld, Some("legitimate_seller"))
    );
    // Reversing the model's restriction: a restore, and a correction of the model's statement.
    store
        .state_model_suppressions(&[suppressed("m/2", now)])
        .await
        .unwrap();
    let model = statement_of(&store, "m/2").await;
    let reversed = appealed(&store, "m/2", true).await;
    let correction = store
        .statement(reversed.correction_id.unwrap(), Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        (correction.restriction, correction.corrects),
        (Restriction::ModelSuppression, Some(model.id))
    );
    // Six months and an hour after: too late.
    let old = statement_of(&store, "m/old").await;
    let late = store
        .file_appeal(&appeal(old.id, "shop-7"))
        .await
        .unwrap_err();
    assert!(
        matches!(&late, ReviewError::Conflict(m) if m.contains("could be appealed until")),
        "{late}"
    );

    // A channel suppression: reversed, the channel restored, its statement corrected.
    store
        .decide_channel(&ChannelDecision {
            channel_id: "shop-7".into(),
            suppress: true,
            moderator: "eve".into(),
            role: Role::Senior,
            reason: "illegal_drugs".into(),
            note: None,
            case: None,
        })
        .await
        .unwrap();
    let channel = statement_of(&store, "channel:shop-7").await;
    let filed = store
        .file_appeal(&appeal(channel.id, "shop-7"))
        .await
        .unwrap();
    let refused = store
        .decide_appeal(&decide(filed.appeal_id, true, "eve", Role::Senior))
        .await
        .unwrap_err();
    assert!(matches!(refused, ReviewError::Forbidden(_)), "{refused}");
    let reversed = store
        .decide_appeal(&decide(filed.appeal_id, true, "bob", Role::Moderator))
        .await;
    // Restoring a whole channel is for seniors, whoever decides appeals.
    assert!(
        matches!(reversed, Err(ReviewError::Forbidden(_))),
        "{reversed:?}"
    );
    let reversed = store
        .decide_appeal(&decide(filed.appeal_id, true, "fay", Role::Senior))
        .await
        .unwrap();
    let (_, history) = store.history("channel:shop-7", Role::Admin).await.unwrap();
    assert_eq!(
        history.iter().max_by_key(|d| d.id).map(|d| d.action),
        Some(DecisionAction::RestoreChannel)
    );
    let correction = store
        .statement(reversed.correction_id.unwrap(), Role::Admin)
        .await
        .unwrap();
    assert_eq!(correction.restriction, Restriction::ChannelSuppression);
    assert!(
        correction.text.contains("your channel “shop-7” is shown"),
        "{}",
        correction.text
    );

    assert!(AppealsConfig {
        window_months: 5,
        ..AppealsConfig::default()
    }
    .validate()
    .is_err());
}
