//! The Tantivy index of content items and their moderation state.
//!
//! One writer ([`ContentIndex`]) applies content items and verdicts in stream order; any number of
//! readers ([`SearchHandle`]) serve public search and item look-ups. Invariants:
//!
//! - Every item is one document, keyed by its id; an update deletes the old document and adds the
//!   new one. Suppressed items stay in the index (moderators look them up by id) but public search
//!   only matches documents whose `visibility` term is `visible`.
//! - The newest content version wins; an older version arriving late is ignored. The verdict in force
//!   is the best ([`Verdict::outranks`]) verdict about the current content version; verdicts about a
//!   newer version wait in the document until that content arrives.
//! - The Kafka offsets applied are saved in the same Tantivy commit as the documents (the commit
//!   payload), so after a restart [`ContentIndex::committed_offsets`] is exactly what the index holds.
//!   A [`Commit`] takes the changes and the offsets at the same moment and is written in the
//!   background while later records are applied; look-ups see those later changes, then the
//!   commit's, then the index's.

mod error;
mod schema;
mod search;
mod state;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;

pub(crate) use error::tantivy_err;
pub use error::IndexError;
pub(crate) use schema::{schema, Fields, Payload, CHANNEL_BLOCK};
pub use search::{PlainQuery, QueryError, SearchHandle, SearchHit, SearchPage, MAX_QUERY_PARTS};
pub use state::{Applied, ItemState};
pub use writer::{Commit, ContentIndex, IndexSettings, Written};

/// Next offset to read, by topic and partition.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;
