//! Moderators' decisions about items and channels: checked, recorded with the resolution of
//! their cases and the verdict that announces them, in one transaction.

use cordon_domain::{Action, Verdict};
use cordon_statements::Restriction;
use sqlx::{Postgres, Transaction};

use crate::{
    case_from_row, decision_from_row, enqueue_verdict, queue, reports, strikes, ChannelDecision,
    Decision, DecisionRequest, DecisionStatement, ReviewError, ReviewStore, Role, CASE_COLUMNS,
    DECISION_COLUMNS,
};

/// Longest policy reason code, in characters.
pub const MAX_REASON_CHARS: usize = 64;

/// Longest moderator note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Longest item, channel or reporter id, in bytes (as in the content contract).
pub const MAX_ID_BYTES: usize = 512;

/// A reason code: 1 to [`MAX_REASON_CHARS`] lower-case letters, digits and `_ . -`.
pub(crate) fn check_reason(reason: &str) -> Result<(), ReviewError> {
    let ok = (1..=MAX_REASON_CHARS).contains(&reason.len())
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ReviewError::Invalid(format!(
            "reason must be a code of 1 to {MAX_REASON_CHARS} lower-case letters, digits and _ . -"
        )))
    }
}

/// A note: at most [`MAX_NOTE_CHARS`] characters, no control characters but line breaks and tabs.
pub(crate) fn check_note(note: Option<&str>) -> Result<(), ReviewError> {
    check_text("note", note, MAX_NOTE_CHARS)
}

/// Free text of at most `max` characters without control characters other than line breaks
/// and tabs (PostgreSQL refuses NUL, and the rest only deceive).
pub(crate) fn check_text(name: &str, text: Option<&str>, max: usize) -> Result<(), ReviewError> {
    let Some(text) = text else { return Ok(()) };
    if text.chars().count() > max {
        return Err(ReviewError::Invalid(format!(
            "{name} has at most {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ReviewError::Invalid(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(())
}

/// An id (item, channel, reporter): 1 to [`MAX_ID_BYTES`] bytes without whitespace, control or
/// invisible formatting characters — the same rule as the content contract.
pub(crate) fn check_id(name: &str, id: &str) -> Result<(), ReviewError> {
    cordon_domain::check_id(id).map_err(|why| ReviewError::Invalid(format!("{name} {why}")))
}

/// The item a decision is about: a content item id (never a `channel:` key — channels are
/// decided through [`ReviewStore::decide_channel`]) and a version that fits the database.
fn check_item_key(item_id: &str, item_version: u64) -> Result<(), ReviewError> {
    check_id("item_id", item_id)?;
    if item_id.starts_with(Verdict::CHANNEL_KEY_PREFIX) {
        return Err(ReviewError::Invalid(
            "item_id names a channel: use the channel decision instead".into(),
        ));
    }
    if item_version > i64::MAX as u64 {
        return Err(ReviewError::Invalid(
            "item_version must fit in a signed 64-bit integer".into(),
        ));
    }
    Ok(())
}

impl ReviewStore {
    /// The latest decisions about any of these items (channel keys included), newest first, as
    /// `role` may see them (below senior, none made on escalated cases).
    pub async fn decisions_about(
        &self,
        item_ids: &[String],
        limit: i64,
        role: Role,
    ) -> Result<Vec<Decision>, ReviewError> {
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions d WHERE item_id = ANY($1)
               AND ($3 OR NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id AND c.escalated))
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(item_ids)
        .bind(limit)
        .bind(role.is_senior())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(decision_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Records a decision, resolves the item version's open case and queues the verdict in the
    /// outbox, all in one transaction.
    pub async fn decide(&self, req: &DecisionRequest) -> Result<Decision, ReviewError> {
        let mut tx = self.pool.begin().await?;
        let decision = self.decide_in(&mut tx, req).await?;
        tx.commit().await?;
        Ok(decision)
    }

    /// [`ReviewStore::decide`] in the caller's transaction.
    pub(crate) async fn decide_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        req: &DecisionRequest,
    ) -> Result<Decision, ReviewError> {
        if !matches!(req.action, Action::Suppress | Action::Restore) {
            return Err(ReviewError::Invalid(
                "a moderator decision is suppress or restore".into(),
            ));
        }
        if req.moderator.trim().is_empty() {
            return Err(ReviewError::Invalid("moderator is required".into()));
        }
        check_reason(&req.reason)?;
        check_note(req.note.as_deref())?;
        check_item_key(&req.item_id, req.item_version)?;
        if req.no_requeue && req.action != Action::Restore {
            return Err(ReviewError::Invalid(
                "\"do not queue this version again\" goes with restore".into(),
            ));
        }
        // A decision about a version the worker has not seen yet would be waiting for it, and
        // would overrule the model (and any case) when it comes: refused.
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT version FROM item_versions WHERE item_id = $1")
                .bind(&req.item_id)
                .fetch_optional(&mut **tx)
                .await?;
        if newest.is_some_and(|n| req.item_version as i64 > n) {
            return Err(ReviewError::Invalid(format!(
                "item {} has no version {} yet",
                req.item_id, req.item_version
            )));
        }
        let before = queue::lock_for_decision(
            tx,
            &req.item_id,
            req.item_version,
            req.case_id.map(|id| (id, req.expected_version)),
            &req.moderator,
            req.role,
        )
        .await?;
        let row = sqlx::query(&format!(
            "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason, note,
                                    no_requeue)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {DECISION_COLUMNS}"
        ))
        .bind(req.case_id)
        .bind(&req.item_id)
        .bind(req.item_version as i64)
        .bind(req.action.as_str())
        .bind(&req.moderator)
        .bind(&req.reason)
        .bind(&req.note)
        .bind(req.no_requeue)
        .fetch_one(&mut **tx)
        .await?;
        let decision = decision_from_row(&row)?;
        let resolved = sqlx::query(&format!(
            "UPDATE cases SET state = 'resolved', resolved_at = now(), updated_at = now(),
                    version = version + 1, claimed_by = NULL, lease_until = NULL
             WHERE item_id = $1 AND item_version = $2 AND state <> 'resolved'
             RETURNING {CASE_COLUMNS}"
        ))
        .bind(&req.item_id)
        .bind(req.item_version as i64)
        .fetch_all(&mut **tx)
        .await?;
        let after = resolved.first().map(case_from_row).transpose()?;
        queue::audit(
            tx,
            &req.moderator,
            &format!("decide:{}", req.action.as_str()),
            &req.item_id,
            before.as_ref(),
            after.as_ref(),
            Some(&decision.reason),
        )
        .await?;
        enqueue_verdict(tx, &decision).await?;
        if req.action == Action::Suppress {
            let statement = self
                .state_decision(
                    tx,
                    DecisionStatement {
                        decision: &decision,
                        restriction: Restriction::ModeratorSuppression,
                        case: before.as_ref(),
                        until: None,
                        category: None,
                    },
                )
                .await?;
            self.strike(tx, statement).await?;
        } else {
            self.withdraw(tx, &req.item_id, req.item_version, &req.moderator)
                .await?;
        }
        reports::settle(
            tx,
            &req.item_id,
            req.item_version,
            req.action,
            &req.reason,
            &self.statements.notifier_redress,
        )
        .await?;
        Ok(decision)
    }

    /// Records a decision about a whole channel — suppress hides every item of it from public
    /// search, restore undoes that — resolves the case it was made on, if any, and queues the
    /// channel verdict (key `channel:<id>`) in the outbox, in one transaction.
    pub async fn decide_channel(&self, req: &ChannelDecision) -> Result<Decision, ReviewError> {
        let mut tx = self.pool.begin().await?;
        let decision = self.decide_channel_in(&mut tx, req).await?;
        tx.commit().await?;
        Ok(decision)
    }

    /// [`ReviewStore::decide_channel`] in the caller's transaction.
    pub(crate) async fn decide_channel_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        req: &ChannelDecision,
    ) -> Result<Decision, ReviewError> {
        let ChannelDecision {
            channel_id,
            suppress,
            moderator,
            role,
            reason,
            note,
            case,
        } = req;
        let (channel_id, moderator, reason) =
            (channel_id.as_str(), moderator.as_str(), reason.as_str());
        if moderator.trim().is_empty() {
            return Err(ReviewError::Invalid("moderator is required".into()));
        }
        if !role.is_senior() {
            return Err(ReviewError::Forbidden(
                "decisions about a whole channel are for senior moderators; escalate the case"
                    .into(),
            ));
        }
        check_id("channel_id", channel_id)?;
        check_reason(reason)?;
        check_note(note.as_deref())?;
        let key = Verdict::channel_key(channel_id);
        let action = if *suppress {
            "suppress_channel"
        } else {
            "restore_channel"
        };
        let before = match case {
            Some((id, version)) => {
                let case = queue::lock_case(tx, *id).await?;
                queue::check_may_act(&case, moderator, *role, *version)?;
                if case.state == crate::CaseState::Resolved {
                    return Err(ReviewError::Conflict(format!("case {id} is resolved")));
                }
                Some(case)
            }
            None => None,
        };
        // After the case (the order every decision takes its locks in): strikes weighing this
        // channel, and the end of its suspension, wait for this decision.
        strikes::lock_channel(tx, channel_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO decisions (case_id, item_id, item_version, action, moderator, reason, note, channel_id)
             VALUES ($1, $2, 0, $3, $4, $5, $6, $7) RETURNING {DECISION_COLUMNS}"
        ))
        .bind(before.as_ref().map(|c| c.id))
        .bind(&key)
        .bind(action)
        .bind(moderator)
        .bind(reason)
        .bind(note.as_deref())
        .bind(channel_id)
        .fetch_one(&mut **tx)
        .await?;
        let decision = decision_from_row(&row)?;
        let after = match &before {
            Some(case) => {
                let row = sqlx::query(&format!(
                    "UPDATE cases SET state = 'resolved', resolved_at = now(), updated_at = now(),
                            version = version + 1, claimed_by = NULL, lease_until = NULL
                     WHERE id = $1 RETURNING {CASE_COLUMNS}"
                ))
                .bind(case.id)
                .fetch_one(&mut **tx)
                .await?;
                Some(case_from_row(&row)?)
            }
            None => None,
        };
        queue::audit(
            tx,
            moderator,
            action,
            &key,
            before.as_ref(),
            after.as_ref(),
            Some(reason),
        )
        .await?;
        enqueue_verdict(tx, &decision).await?;
        if !*suppress {
            strikes::restored(tx, channel_id, moderator).await?;
        }
        if *suppress {
            self.state_decision(
                tx,
                DecisionStatement {
                    decision: &decision,
                    restriction: Restriction::ChannelSuppression,
                    case: before.as_ref(),
                    until: None,
                    category: None,
                },
            )
            .await?;
            // Hiding the channel upholds the reports of the item whose case it was made on.
            if let Some(case) = &before {
                reports::settle(
                    tx,
                    &case.item_id,
                    case.item_version,
                    Action::Suppress,
                    reason,
                    &self.statements.notifier_redress,
                )
                .await?;
            }
        }
        Ok(decision)
    }
}
