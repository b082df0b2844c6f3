//! What reporters are told, against the real PostgreSQL: an acknowledgement when a report is
//! filed and its outcome when it is settled, each in the outbox with what it announces.

use std::time::Duration;

use cordon_domain::Action;
use cordon_review::test_support::TestDb;
use cordon_review::{
    DecisionRequest, NewReport, OutboxTopic, ReportLane, ReportLimits, ReportStatus, ReviewStore,
    Role,
};

const LIMITS: ReportLimits = ReportLimits {
    per_reporter_per_hour: 10,
    per_item_per_hour: 10,
    hold_at: 10.0,
};

fn report(item: &str, version: u64, reporter: &str, lane: ReportLane) -> NewReport {
    NewReport {
        item_id: item.into(),
        item_version: version,
        reporter: reporter.into(),
        lane,
        flagger_weight: (lane == ReportLane::TrustedFlagger).then_some(1.0),
        flagger_name: None,
        reason: "drugs".into(),
        details: Some("the reporter's words".into()),
        scores: None,
        language: None,
    }
}

fn decision(item: &str, version: u64, action: Action, reason: &str) -> DecisionRequest {
    DecisionRequest {
        item_id: item.into(),
        item_version: version,
        action,
        moderator: "ann".into(),
        reason: reason.into(),
        note: None,
        case_id: None,
        expected_version: None,
        role: Role::Moderator,
        no_requeue: false,
    }
}

/// The outcome notices in the outbox, as (report id, status).
async fn notices(store: &ReviewStore) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    store
        .relay_outbox(100, |rows| {
            for r in rows.iter().filter(|r| r.topic == OutboxTopic::Outcomes) {
                let notice: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
                assert_eq!(r.key, notice["report_id"].to_string());
                found.push((
                    notice["report_id"].as_i64().unwrap(),
                    notice["status"].as_str().unwrap().to_string(),
                ));
            }
            async { Ok(Vec::new()) }
        })
        .await
        .unwrap();
    found
}

#[tokio::test]
async fn reporters_hear_of_their_report_when_filed_and_when_settled() {
    let db = TestDb::create().await.unwrap();
    let store = ReviewStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .unwrap();
    let upheld = store
        .report(&report("a", 1, "p:u1", ReportLane::Platform), LIMITS)
        .await
        .unwrap();
    let flagged = store
        .report(
            &report("a", 1, "f:hotline:x", ReportLane::TrustedFlagger),
            LIMITS,
        )
        .await
        .unwrap();
    // An old version's report, then a report of the new version that replaced it.
    let replaced = store
        .report(&report("b", 1, "p:u1", ReportLane::Platform), LIMITS)
        .await
        .unwrap();
    let rejected = store
        .report(&report("b", 2, "p:u2", ReportLane::Platform), LIMITS)
        .await
        .unwrap();
    assert_eq!(
        notices(&store).await,
        [
            upheld.report_id,
            flagged.report_id,
            replaced.report_id,
            rejected.report_id
        ]
        .map(|id| (id, "received".to_string()))
    );
    let notice = store.report_notice(upheld.report_id).await.unwrap();
    assert_eq!(
        (notice.status, notice.reporter.as_str(), notice.redress),
        (ReportStatus::Received, "u1", None)
    );
    store
        .decide(&decision("a", 1, Action::Suppress, "illegal_drugs"))
        .await
        .unwrap();
    store
        .decide(&decision("b", 2, Action::Restore, "not_illegal"))
        .await
        .unwrap();
    let mut settled = notices(&store).await;
    settled.sort();
    assert_eq!(
        settled,
        [
            (upheld.report_id, "upheld".to_string()),
            (flagged.report_id, "upheld".to_string()),
            (replaced.report_id, "no_action".to_string()),
            (rejected.report_id, "rejected".to_string()),
        ]
    );
    let notice = store.report_notice(flagged.report_id).await.unwrap();
    assert_eq!(
        (
            notice.status,
            notice.flagger.as_deref(),
            notice.reporter.as_str(),
            notice.reason.as_deref()
        ),
        (
            ReportStatus::Upheld,
            Some("hotline"),
            "x",
            Some("illegal_drugs")
        )
    );
    assert!(notice.decided_at.is_some() && notice.redress.is_some());
    let notice = store.report_notice(replaced.report_id).await.unwrap();
    assert_eq!(notice.status, ReportStatus::NoAction);
    // A settled report is settled once: a later decision notifies nobody again.
    store
        .decide(&decision("a", 1, Action::Restore, "not_illegal"))
        .await
        .unwrap();
    assert!(notices(&store).await.is_empty());
    assert!(store.report_notice(999).await.is_err());
}
