//! An item's state in the index: its newest content, the verdict in force, its visibility.

use cordon_domain::{ContentItem, Verdict, Visibility};
use serde::{Deserialize, Serialize};

/// Everything the index knows about one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    /// The item's id.
    pub id: String,
    /// The newest content seen, if any (a verdict can arrive before its content).
    pub content: Option<ContentItem>,
    /// The best verdict per item version, for the current content version and newer ones.
    pub verdicts: Vec<Verdict>,
    /// Whether public search shows the item.
    pub visibility: Visibility,
}

impl ItemState {
    /// The verdict in force for the current content version.
    pub fn verdict(&self) -> Option<&Verdict> {
        let version = self.content.as_ref()?.version;
        self.verdicts.iter().find(|v| v.item_version == version)
    }

    pub(crate) fn recompute(&mut self, premoderation: bool) {
        if let Some(content) = &self.content {
            let version = content.version;
            self.verdicts.retain(|v| v.item_version >= version);
        }
        self.visibility = match (&self.content, self.verdict()) {
            (None, _) => Visibility::Pending,
            (Some(_), Some(v)) => v.visibility(premoderation),
            (Some(_), None) if premoderation => Visibility::Pending,
            (Some(_), None) => Visibility::Visible,
        };
    }
}

/// The effect of applying one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The item's document changed; carries the visibility before and after.
    Changed {
        /// Visibility before the record (None for a new item).
        before: Option<Visibility>,
        /// Visibility after it.
        after: Visibility,
    },
    /// The record was older than what the index holds and changed nothing.
    Stale,
}
