//! What the review store holds: cases, decisions and what is asked of it.

use chrono::{DateTime, Utc};
use cordon_domain::{Action, Category, DecidedBy, Scores, Verdict};
use serde::Serialize;

/// A case the worker asks to queue.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// The item's id.
    pub item_id: String,
    /// The item version scored.
    pub item_version: u64,
    /// The category that crossed its review threshold.
    pub category: Category,
    /// That category's score.
    pub score: f32,
    /// All scores.
    pub scores: Scores,
    /// Why it was queued.
    pub reason: String,
    /// The model that scored it.
    pub model_version: String,
    /// How many people the item can reach (the channel's subscribers), if known.
    pub reach: Option<u64>,
    /// The item's language, if the producer gave one.
    pub language: Option<String>,
}

/// A case in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Case id.
    pub id: i64,
    /// The item's id.
    pub item_id: String,
    /// The item version under review.
    pub item_version: u64,
    /// What brought it.
    pub source: CaseSource,
    /// The category that brought it here.
    pub category: String,
    /// That category's score.
    pub score: f32,
    /// All scores.
    pub scores: Scores,
    /// Why it was queued.
    pub reason: String,
    /// The model that scored it, if any.
    pub model_version: Option<String>,
    /// Where it is in its life.
    pub state: CaseState,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Optimistic version: every change increments it; a decision naming an older one is refused.
    pub version: i32,
    /// Queue priority (higher first; age is added when ordering).
    pub priority: f32,
    /// The item's reach, if known.
    pub reach: Option<i64>,
    /// Whether it waits for (or was claimed by) a senior moderator.
    pub escalated: bool,
    /// Who holds it, while claimed.
    pub claimed_by: Option<String>,
    /// Until when the claim holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// The item's language, if known.
    pub language: Option<String>,
}

/// What a person may do in the queue; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works the ordinary queue.
    Moderator,
    /// Also works escalated cases.
    Senior,
    /// Everything a senior does, and manages accounts.
    Admin,
}

impl Role {
    /// Parses `moderator`, `senior` or `admin`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "moderator" => Some(Role::Moderator),
            "senior" => Some(Role::Senior),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Senior => "senior",
            Role::Admin => "admin",
        }
    }

    /// Whether the role sees and decides escalated cases.
    pub fn is_senior(self) -> bool {
        matches!(self, Role::Senior | Role::Admin)
    }
}

/// Where a case is in its life (the `cases.state` column; the database refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Waiting for a moderator.
    Open,
    /// A moderator holds it (until their lease ends).
    Claimed,
    /// Sent to senior moderators.
    Escalated,
    /// Decided.
    Resolved,
}

impl CaseState {
    /// Every state.
    pub const ALL: [CaseState; 4] = [
        CaseState::Open,
        CaseState::Claimed,
        CaseState::Escalated,
        CaseState::Resolved,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Claimed => "claimed",
            CaseState::Escalated => "escalated",
            CaseState::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for CaseState {
    type Err = String;

    fn from_str(name: &str) -> Result<CaseState, String> {
        CaseState::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                format!("state must be open, claimed, escalated or resolved, not `{name}`")
            })
    }
}

impl std::fmt::Display for CaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What brought a case (the `cases.source` column; the database refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSource {
    /// The classifier's score was in the review band.
    Model,
    /// A user report.
    Report,
}

impl CaseSource {
    /// Every source.
    pub const ALL: [CaseSource; 2] = [CaseSource::Model, CaseSource::Report];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseSource::Model => "model",
            CaseSource::Report => "report",
        }
    }
}

impl std::str::FromStr for CaseSource {
    type Err = String;

    fn from_str(name: &str) -> Result<CaseSource, String> {
        CaseSource::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| format!("source must be model or report, not `{name}`"))
    }
}

impl std::fmt::Display for CaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recorded decision did (the `decisions.action` column; the database refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    /// Hidden from public search.
    Suppress,
    /// Public again.
    Restore,
    /// Hidden until a person decides (a report hold).
    Hold,
    /// Every item of a channel hidden.
    SuppressChannel,
    /// A channel's block lifted.
    RestoreChannel,
}

impl DecisionAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Suppress => "suppress",
            DecisionAction::Restore => "restore",
            DecisionAction::Hold => "hold",
            DecisionAction::SuppressChannel => "suppress_channel",
            DecisionAction::RestoreChannel => "restore_channel",
        }
    }

    /// Parses a stored name; any other is an error, never silently a restore.
    pub fn parse(name: &str) -> Option<DecisionAction> {
        [
            DecisionAction::Suppress,
            DecisionAction::Restore,
            DecisionAction::Hold,
            DecisionAction::SuppressChannel,
            DecisionAction::RestoreChannel,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// The verdict action that announces it.
    pub fn verdict_action(self) -> Action {
        match self {
            DecisionAction::Suppress | DecisionAction::SuppressChannel => Action::Suppress,
            DecisionAction::Hold => Action::Hold,
            DecisionAction::Restore | DecisionAction::RestoreChannel => Action::Restore,
        }
    }
}

impl std::fmt::Display for DecisionAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moderator's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Decision id (later decisions have larger ids).
    pub id: i64,
    /// The case decided, if the decision was made on one.
    pub case_id: Option<i64>,
    /// The item's id.
    pub item_id: String,
    /// The item version decided.
    pub item_version: u64,
    /// What it did.
    pub action: DecisionAction,
    /// Who decided.
    pub moderator: String,
    /// The policy reason code.
    pub reason: String,
    /// The moderator's note.
    pub note: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// The channel, for a decision about a whole channel.
    pub channel_id: Option<String>,
    /// A restore that closes the item version for good: later reports do not queue it again.
    pub no_requeue: bool,
}

impl Decision {
    /// The verdict that announces this decision on the verdicts topic.
    pub fn verdict(&self) -> Verdict {
        let action = self.action.verdict_action();
        Verdict {
            item_id: self.item_id.clone(),
            item_version: self.item_version,
            action,
            decided_by: DecidedBy::Human {
                moderator: self.moderator.clone(),
                decision_id: self.id,
            },
            category: None,
            score: None,
            scores: None,
            fast_scores: None,
            reason: match &self.note {
                Some(note) => format!("{}: {note}", self.reason),
                None => self.reason.clone(),
            },
            channel_id: self.channel_id.clone(),
            explanation: Vec::new(),
            decided_at: self.decided_at,
        }
    }
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    /// The item.
    pub item_id: String,
    /// The item version decided about.
    pub item_version: u64,
    /// Suppress or restore.
    pub action: Action,
    /// Who decides.
    pub moderator: String,
    /// Policy reason code.
    pub reason: String,
    /// Optional note.
    pub note: Option<String>,
    /// The case decided on, if any.
    pub case_id: Option<i64>,
    /// The case version the moderator saw; a decision on a case changed since is refused.
    pub expected_version: Option<i32>,
    /// The moderator's role (escalated cases need a senior).
    pub role: Role,
    /// With a restore: do not queue this item version again, whatever reports follow.
    pub no_requeue: bool,
}

/// A decision about a whole channel.
#[derive(Debug, Clone)]
pub struct ChannelDecision {
    /// The channel.
    pub channel_id: String,
    /// Hide every item of it (true) or undo that (false).
    pub suppress: bool,
    /// Who decides.
    pub moderator: String,
    /// Their role.
    pub role: Role,
    /// Policy reason code.
    pub reason: String,
    /// Optional note.
    pub note: Option<String>,
    /// The case it was made on and the case version the moderator saw, if any.
    pub case: Option<(i64, Option<i32>)>,
}

/// A verdict waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Which topic it goes to.
    pub topic: OutboxTopic,
    /// Kafka key (the item id; for an outcome a report's id, or `appeal-<id>`).
    pub key: String,
    /// The verdict (or the reporter's notice) as JSON.
    pub payload: String,
}

/// Where an outbox row goes (the `outbox.topic` column; the database refuses any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxTopic {
    /// A decision's verdict: the verdicts topic.
    Verdicts,
    /// A reporter's notice (acknowledgement or outcome): the outcomes topic.
    Outcomes,
}

impl std::str::FromStr for OutboxTopic {
    type Err = String;

    fn from_str(name: &str) -> Result<OutboxTopic, String> {
        match name {
            "verdicts" => Ok(OutboxTopic::Verdicts),
            "outcomes" => Ok(OutboxTopic::Outcomes),
            other => Err(format!("unknown outbox topic `{other}`")),
        }
    }
}

/// Queue figures for metrics.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Cases not yet resolved.
    pub open_cases: i64,
    /// Age of the oldest unresolved case, in seconds.
    pub oldest_open_age_seconds: f64,
    /// Verdicts not yet published.
    pub outbox_pending: i64,
    /// Verdicts set aside because they can never be published.
    pub outbox_refused: i64,
    /// Appeals waiting for a decision.
    pub open_appeals: i64,
    /// Age of the oldest appeal waiting, in seconds.
    pub oldest_open_appeal_age_seconds: f64,
    /// Strike suspensions past their end for over a minute and not yet lifted.
    pub overdue_suspensions: i64,
}

#[cfg(test)]
mod decision_action_tests {
    use super::*;

    #[test]
    fn every_stored_action_parses_back_and_nothing_else_does() {
        for a in [
            DecisionAction::Suppress,
            DecisionAction::Restore,
            DecisionAction::Hold,
            DecisionAction::SuppressChannel,
            DecisionAction::RestoreChannel,
        ] {
            assert_eq!(DecisionAction::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(
            DecisionAction::parse("restor"),
            None,
            "never silently a restore"
        );
        assert_eq!(
            DecisionAction::SuppressChannel.verdict_action(),
            Action::Suppress
        );
        assert_eq!(
            DecisionAction::RestoreChannel.verdict_action(),
            Action::Restore
        );
    }
}
