//! The document schema: one document per item (and per blocked channel), and the commit
//! payload that carries the applied offsets.

use serde::{Deserialize, Serialize};
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};

use crate::Offsets;

/// `kind` of the documents that record channel verdicts.
pub(crate) const CHANNEL_BLOCK: &str = "channel_block";

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) id: Field,
    pub(crate) kind: Field,
    pub(crate) channel_id: Field,
    pub(crate) channel: Field,
    pub(crate) title: Field,
    pub(crate) text: Field,
    pub(crate) lang: Field,
    pub(crate) visibility: Field,
    pub(crate) category: Field,
    pub(crate) score: Field,
    pub(crate) version: Field,
    pub(crate) published_at: Field,
    pub(crate) indexed_at: Field,
    pub(crate) state: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        kind: b.add_text_field("kind", STRING),
        channel_id: b.add_text_field("channel_id", STRING),
        channel: b.add_text_field("channel", TEXT),
        title: b.add_text_field("title", TEXT),
        text: b.add_text_field("text", TEXT),
        lang: b.add_text_field("lang", STRING),
        visibility: b.add_text_field("visibility", STRING),
        category: b.add_text_field("category", STRING),
        score: b.add_f64_field("score", FAST),
        version: b.add_u64_field("version", FAST),
        published_at: b.add_date_field("published_at", INDEXED | FAST),
        indexed_at: b.add_date_field("indexed_at", INDEXED | FAST),
        state: b.add_text_field("state", STORED),
    };
    (b.build(), fields)
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) offsets: Offsets,
}
