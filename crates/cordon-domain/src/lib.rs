//! Cordon's domain model.
//!
//! This crate holds the plain data types every other crate speaks: the [`ContentItem`] read from the
//! content topic (and its validating decoder), the classifier's [`Category`] set and [`Scores`], the
//! moderation [`Policy`] that turns scores into an [`Action`], and the [`Verdict`] record published on
//! the verdicts topic together with the precedence rule that decides which verdict is in force.
//!
//! It does no I/O.

mod category;
mod content;
mod policy;
mod verdict;

pub use category::{Category, Scores};
pub use content::{
    check_id, is_invisible, is_web_url, json_depth_within, Channel, ContentItem, ContentKind,
    DecodeError, DecodeLimits, Media, MediaKind, MAX_ID_BYTES, MAX_JSON_DEPTH, MAX_LANG_BYTES,
    MAX_MEDIA,
};
pub use policy::{Policy, PolicyDecision, Thresholds};
pub use verdict::{Action, Contribution, DecidedBy, Stage, Verdict, Visibility};
