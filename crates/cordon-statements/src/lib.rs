//! Statements of reasons: what Cordon tells a channel (DSA Art. 17) and the EU Transparency
//! Database about every restriction it applies — a model suppression, a moderator's decision, a
//! report hold, a channel suppression — and about lifting one on appeal.
//!
//! Code map: `schema.rs` (the Transparency Database's statement with its field names and allowed
//! values as closed enums, and [`TdbStatement::validate`], the database's documented rules);
//! `mapping.rs` ([`StatementsConfig`]: Cordon's categories and moderators' reason codes to
//! grounds, categories and keywords, one documented and configurable mapping); `draft.rs`
//! ([`draft`]: a [`Restriction`] with its facts to a [`Draft`] — the database's statement and
//! the text shown to the channel, in its language where a template exists; [`correction`]: the
//! statement correcting one whose restriction was lifted on appeal).
//!
//! Invariants:
//! - A drafted statement passes [`TdbStatement::validate`] (`draft.rs` tests), so what is stored
//!   is what the database accepts.
//! - Automation is read from who detected and who decided, never configured: the model alone is
//!   fully automated, a model-queued case decided by a person partially, a report decided by a
//!   person not automated.
//! - What goes to the public database carries no personal data: the PUID is the statement's own
//!   random id, and neither the item's id nor the author's words (the model's signals, shown
//!   only to the channel) are in its facts.
//! - An author's clock or language tag cannot make a statement invalid: dates are moved into the
//!   database's range and a language that is not ISO 639-1 is left out.
//!
//! API boundary: pure functions and types; storing, submitting and serving statements live in
//! the review store, the exporter and the API.

mod draft;
mod mapping;
mod schema;

pub use draft::*;
pub use mapping::*;
pub use schema::*;
