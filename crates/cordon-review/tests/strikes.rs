//! Strikes against the real PostgreSQL: each suppression a person decides weighs on the item's
//! channel while it stands; enough live weight suspends the channel for a time, then for good,
//! each suspension with its statement; a suspension ends by itself, or when a person restores.

use std::time::Duration;

use cordon_domain::{Action, Category, ContentItem};
use cordon_review::test_support::TestDb;
use cordon_review::{
    AppealDecision, ChannelDecision, DecisionAction, DecisionRequest, NewAppeal, OutboxTopic,
    ReviewStore, Role, SeenItem, StrikesConfig,
};
use cordon_statements::{AutomatedDecision, Restriction};

fn item(id: &str) -> ContentItem {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "kind": "listing",
        "channel": {"id": "shop-7", "title": "Shop"},
        "text": "text",
        "lang": "en",
        "published_at": "2026-11-30T10:00:00Z",
        "indexed_at": "2026-11-30T10:00:01Z",
        "version": 1,
    }))
    .expect("an item")
}

fn decision(item_id: &str, action: Action, reason: &str, who: &str) -> DecisionRequest {
    DecisionRequest {
        item_id: item_id.into(),
        item_version: 1,
        action,
        moderator: who.into(),
        reason: reason.into(),
        note: None,
        case_id: None,
        expected_version: None,
        role: Role::Senior,
        no_requeue: false,
    }
}

/// The newest decision about the channel.
async fn channel_decision(store: &ReviewStore) -> Option<(DecisionAction, String)> {
    let (_, history) = store.history("channel:shop-7", Role::Admin).await.unwrap();
    history
        .into_iter()
        .max_by_key(|d| d.id)
        .map(|d| (d.action, d.moderator))
}

#[tokio::test]
async fn strikes_suspend_a_channel_for_a_time_then_for_good_while_their_restrictions_stand() {
    let db = TestDb::create().await.unwrap();
    let store = ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .unwrap()
        .with_strikes(StrikesConfig {
            suspension_secs: 2,
            weights: [(Category::Weapons, 2.0)].into(),
            ..StrikesConfig::default()
        });
    let items: Vec<ContentItem> = (1..=6).map(|i| item(&format!("p/{i}"))).collect();
    let seen: Vec<SeenItem<'_>> = items.iter().map(SeenItem::of).collect();
    store.check_versions(&seen).await.unwrap();
    let suppress = |id: &str| decision(id, Action::Suppress, "illegal_drugs", "ann");

    // Two strikes, one withdrawn when a person restores its item: no suspension.
    for id in ["p/1", "p/2"] {
        store.decide(&suppress(id)).await.unwrap();
    }
    store
        .decide(&decision("p/2", Action::Restore, "not_illegal", "bob"))
        .await
        .unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!(st.live_weight, 1.0);
    let withdrawn = st.strikes.iter().find(|k| k.subject == "p/2").unwrap();
    assert!(!withdrawn.live() && withdrawn.removed_by.as_deref() == Some("bob"));
    assert_eq!(channel_decision(&store).await, None);

    // The third live strike suspends the channel for the configured time, with its statement.
    store.decide(&suppress("p/3")).await.unwrap();
    assert_eq!(channel_decision(&store).await, None, "two live strikes");
    store.decide(&suppress("p/4")).await.unwrap();
    assert_eq!(
        channel_decision(&store).await,
        Some((DecisionAction::SuppressChannel, "system:strikes".into()))
    );
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!((st.live_weight, st.suspensions.len()), (3.0, 1));
    let until = st.suspensions[0].until.expect("a suspension for a time");
    let statements = store
        .statements_about(&["channel:shop-7".into()], Role::Admin)
        .await
        .unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(
        (s.restriction, s.channel_id.as_deref()),
        (Restriction::StrikeSuppression, Some("shop-7"))
    );
    assert_eq!(s.tdb.automated_decision, AutomatedDecision::Fully);
    assert_eq!(
        s.tdb.end_date_visibility_restriction,
        Some(until.format("%Y-%m-%d").to_string())
    );
    assert!(s.text.contains("repeated violations"), "{}", s.text);
    let mut verdicts = Vec::new();
    store
        .relay_outbox(100, |rows| {
            verdicts.extend(
                rows.into_iter()
                    .filter(|r| r.topic == OutboxTopic::Verdicts && r.key == "channel:shop-7")
                    .map(|r| r.payload),
            );
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    assert_eq!(verdicts.len(), 1, "the suspension's verdict");

    // It ends by itself; one left a minute past its end is overdue (what operators watch).
    assert!(store.lift_ended_suspensions().await.unwrap().is_empty());
    assert_eq!(store.stats().await.unwrap().overdue_suspensions, 0);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("UPDATE suspensions SET until = now() - interval '2 minutes'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.stats().await.unwrap().overdue_suspensions, 1);
    let lifted = store.lift_ended_suspensions().await.unwrap();
    assert_eq!(lifted.len(), 1);
    assert_eq!(
        channel_decision(&store).await,
        Some((DecisionAction::RestoreChannel, "system:strikes".into()))
    );
    assert!(
        store.lift_ended_suspensions().await.unwrap().is_empty(),
        "once"
    );

    // A strike after a suspension within the window suspends for good: no end.
    store.decide(&suppress("p/5")).await.unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!(st.suspensions.len(), 2);
    assert_eq!(st.suspensions[0].until, None);
    let newest = store
        .statements_about(&["channel:shop-7".into()], Role::Admin)
        .await
        .unwrap();
    assert_eq!(newest[1].tdb.end_date_visibility_restriction, None);
    // A suppressed channel gets strikes (weapons weigh 2) but no second suspension.
    store
        .decide(&decision("p/6", Action::Suppress, "illegal_weapons", "ann"))
        .await
        .unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!((st.live_weight, st.suspensions.len()), (6.0, 2));
    assert_eq!(st.strikes[0].weight, 2.0);

    // Reversing an item's restriction on appeal removes its strike, naming the appeal.
    let p1 = store
        .statements_about(&["p/1".into()], Role::Admin)
        .await
        .unwrap();
    let filed = store
        .file_appeal(&NewAppeal {
            statement_id: p1[0].id,
            channel_id: "shop-7".into(),
            appellant: "owner".into(),
            key_id: "platform".into(),
            grounds: "a legal listing".into(),
        })
        .await
        .unwrap();
    store
        .decide_appeal(&AppealDecision {
            appeal_id: filed.appeal_id,
            reverse: true,
            moderator: "cy".into(),
            role: Role::Senior,
            reason: "legal_business".into(),
            note: None,
        })
        .await
        .unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    let removed = st.strikes.iter().find(|k| k.subject == "p/1").unwrap();
    assert_eq!(
        (removed.removed_by.as_deref(), removed.appeal_id),
        (Some("cy"), Some(filed.appeal_id))
    );
    assert_eq!(st.live_weight, 5.0);

    // A senior restoring the channel lifts its suspension; expired strikes stop counting.
    store
        .decide_channel(&ChannelDecision {
            channel_id: "shop-7".into(),
            suppress: false,
            moderator: "cy".into(),
            role: Role::Senior,
            reason: "legal_business".into(),
            note: None,
            case: None,
        })
        .await
        .unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!(st.suspensions[0].lifted_by.as_deref(), Some("cy"));
    sqlx::query(
        "UPDATE strikes SET expires_at = now() - interval '1 second' WHERE subject = 'p/6'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        store.channel_strikes("shop-7").await.unwrap().live_weight,
        3.0
    );

    assert!(StrikesConfig {
        ban_at: 1.0,
        ..StrikesConfig::default()
    }
    .validate()
    .is_err());
}

#[tokio::test]
async fn the_ban_replaces_a_suspension_and_withdrawn_strikes_lift_it() {
    let db = TestDb::create().await.unwrap();
    let store = ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .unwrap();
    let items: Vec<ContentItem> = (1..=6).map(|i| item(&format!("p/{i}"))).collect();
    let seen: Vec<SeenItem<'_>> = items.iter().map(SeenItem::of).collect();
    store.check_versions(&seen).await.unwrap();
    let suppress = |id: &str| decision(id, Action::Suppress, "illegal_drugs", "ann");

    // Suppressing one version again earns no second strike.
    for id in ["p/1", "p/1", "p/1", "p/2"] {
        store.decide(&suppress(id)).await.unwrap();
    }
    assert_eq!(
        store.channel_strikes("shop-7").await.unwrap().live_weight,
        2.0
    );
    assert_eq!(channel_decision(&store).await, None);
    store.decide(&suppress("p/3")).await.unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert!(st.suspensions[0].until.is_some(), "a week's suspension");

    // Reaching the ban during it: a suspension for good replaces it.
    for id in ["p/4", "p/5", "p/6"] {
        store.decide(&suppress(id)).await.unwrap();
    }
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!((st.live_weight, st.suspensions.len()), (6.0, 2));
    assert_eq!(st.suspensions[0].until, None);
    assert_eq!(st.suspensions[1].lifted_reason.as_deref(), Some("replaced"));
    let stated = store
        .statements_about(&["channel:shop-7".into()], Role::Admin)
        .await
        .unwrap();
    assert_eq!(stated.len(), 2);
    assert!(stated[1].tdb.end_date_visibility_restriction.is_none());

    // People restore items: once the live strikes fall below the threshold, the ban goes.
    for id in ["p/6", "p/5", "p/4"] {
        store
            .decide(&decision(id, Action::Restore, "not_illegal", "bob"))
            .await
            .unwrap();
        assert_eq!(
            channel_decision(&store).await.map(|d| d.0),
            Some(DecisionAction::SuppressChannel),
            "{id}: three live strikes still"
        );
    }
    store
        .decide(&decision("p/3", Action::Restore, "not_illegal", "bob"))
        .await
        .unwrap();
    assert_eq!(
        channel_decision(&store).await,
        Some((DecisionAction::RestoreChannel, "system:strikes".into()))
    );
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!(st.live_weight, 2.0);
    assert_eq!(
        st.suspensions[0].lifted_reason.as_deref(),
        Some("withdrawn")
    );
    // A withdrawn suspension does not count towards the next: the third live strike suspends
    // for a time again, not for good.
    store.decide(&suppress("p/4")).await.unwrap();
    let st = store.channel_strikes("shop-7").await.unwrap();
    assert_eq!(st.suspensions.len(), 3);
    assert!(st.suspensions[0].until.is_some(), "{:?}", st.suspensions[0]);
}
