//! Readers: public search over plain queries and item look-ups.

use cordon_domain::{ContentItem, Verdict, Visibility};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{
    DateTime, DocAddress, DocSet, Index, IndexReader, Order, ReloadPolicy, TantivyDocument, Term,
    TERMINATED,
};

use crate::{schema, tantivy_err, Fields, IndexError, ItemState, CHANNEL_BLOCK};

/// Read access to the index: public search and look-ups. Cheap to clone.
#[derive(Clone)]
pub struct SearchHandle {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) dir: PathBuf,
}

/// One page of public search results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// Visible items matching the query.
    pub total: usize,
    /// This page's items.
    pub items: Vec<SearchHit>,
}

/// One public search result.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// Relevance score.
    pub score: f32,
    /// The item.
    pub item: ContentItem,
}

/// Most words and phrases one public query may hold.
pub const MAX_QUERY_PARTS: usize = 32;

/// A public search query: plain words and `"quoted phrases"`, nothing else. There is no query
/// syntax — no fields (`score:[0.5 TO 1]`), ranges, boolean operators, boosts or nesting — so a
/// query can neither reach the moderation fields nor cost more than its words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlainQuery {
    pub(crate) parts: Vec<QueryPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryPart {
    Words(String),
    Phrase(String),
}

impl QueryPart {
    pub(crate) fn text(&self) -> &str {
        match self {
            QueryPart::Words(t) | QueryPart::Phrase(t) => t,
        }
    }
}

/// Why a public query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// More words and phrases than [`MAX_QUERY_PARTS`].
    #[error("a query has at most {MAX_QUERY_PARTS} words and phrases")]
    TooManyParts,
}

impl PlainQuery {
    /// Splits `text` into words and quoted phrases (an unclosed quote runs to the end). Every
    /// character is text: `:`, `[`, `(`, `-`, `AND` and the like are only separators or words.
    pub fn parse(text: &str) -> Result<PlainQuery, QueryError> {
        let mut parts = Vec::new();
        for (i, piece) in text.split('"').enumerate() {
            if i % 2 == 1 {
                if !piece.trim().is_empty() {
                    parts.push(QueryPart::Phrase(piece.to_string()));
                }
            } else {
                parts.extend(
                    piece
                        .split_whitespace()
                        .map(|w| QueryPart::Words(w.to_string())),
                );
            }
            if parts.len() > MAX_QUERY_PARTS {
                return Err(QueryError::TooManyParts);
            }
        }
        Ok(PlainQuery { parts })
    }

    /// Whether the query lists everything (it is blank).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl SearchHandle {
    /// Opens an index another process writes, reloading shortly after each of its commits.
    pub fn open_shared(dir: &Path) -> Result<SearchHandle, IndexError> {
        let (_, fields) = schema();
        let index = Index::open_in_dir(dir).map_err(tantivy_err(dir))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(tantivy_err(dir))?;
        Ok(SearchHandle {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
        })
    }

    /// Public search: only visible items, ranked by relevance; an empty query matches every
    /// visible item. The query is plain text (see [`PlainQuery`]): words and quoted phrases over
    /// the title, text and channel title, nothing else.
    pub fn search(
        &self,
        query: &PlainQuery,
        offset: usize,
        limit: usize,
    ) -> Result<SearchPage, IndexError> {
        let f = self.fields;
        let text_query: Box<dyn Query> = if query.is_empty() {
            Box::new(AllQuery)
        } else {
            self.text_query(query)?
        };
        let visible: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(f.visibility, Visibility::Visible.as_str()),
            IndexRecordOption::Basic,
        ));
        let searcher = self.reader.searcher();
        let mut clauses = vec![(Occur::Must, text_query), (Occur::Must, visible)];
        for channel in self.blocked_channels(&searcher)? {
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.channel_id, &channel),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let (hits, total) = searcher
            .search(
                &query,
                &(
                    TopDocs::with_limit(limit.max(1))
                        .and_offset(offset)
                        .order_by_score(),
                    Count,
                ),
            )
            .map_err(tantivy_err(&self.dir))?;
        let mut items = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err(&self.dir))?;
            let state = self.decode_state(&doc)?;
            if let Some(item) = state.content {
                items.push(SearchHit { score, item });
            }
        }
        Ok(SearchPage { total, items })
    }

    /// A query that matches any of the words and phrases in the title, text or channel title,
    /// each tokenized like the indexed text.
    pub(crate) fn text_query(&self, query: &PlainQuery) -> Result<Box<dyn Query>, IndexError> {
        let f = self.fields;
        let mut analyzer = self
            .index
            .tokenizer_for_field(f.text)
            .map_err(tantivy_err(&self.dir))?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // What the query costs is bounded after tokenization too: `a.b.c.…` is one part but
        // many tokens. Repeated words count once; past MAX_QUERY_PARTS words the rest is ignored.
        let mut seen = std::collections::HashSet::new();
        for part in &query.parts {
            let mut tokens = Vec::new();
            let mut stream = analyzer.token_stream(part.text());
            while stream.advance() && tokens.len() < MAX_QUERY_PARTS {
                tokens.push(stream.token().text.clone());
            }
            let phrase = matches!(part, QueryPart::Phrase(_)) && tokens.len() > 1;
            let words: Vec<Vec<String>> = if phrase {
                vec![tokens]
            } else {
                tokens.into_iter().map(|t| vec![t]).collect()
            };
            for words in words {
                if seen.len() >= MAX_QUERY_PARTS || !seen.insert(words.clone()) {
                    continue;
                }
                for field in [f.title, f.text, f.channel] {
                    let terms: Vec<Term> = words
                        .iter()
                        .map(|w| Term::from_field_text(field, w))
                        .collect();
                    let query: Box<dyn Query> = match terms.len() {
                        1 => Box::new(TermQuery::new(
                            terms[0].clone(),
                            IndexRecordOption::WithFreqs,
                        )),
                        _ => Box::new(PhraseQuery::new(terms)),
                    };
                    clauses.push((Occur::Should, query));
                }
            }
        }
        if clauses.is_empty() {
            // Only punctuation: nothing to match (not everything).
            return Ok(Box::new(tantivy::query::EmptyQuery));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// Channels hidden from public search by a channel verdict.
    pub(crate) fn blocked_channels(
        &self,
        searcher: &tantivy::Searcher,
    ) -> Result<Vec<String>, IndexError> {
        let f = self.fields;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, CHANNEL_BLOCK),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.visibility, "blocked"),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let hits = searcher
            .search(&query, &TopDocs::with_limit(100_000).order_by_score())
            .map_err(tantivy_err(&self.dir))?;
        let mut channels = Vec::with_capacity(hits.len());
        for (_, address) in hits {
            let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err(&self.dir))?;
            let state = self.decode_state(&doc)?;
            if let Some(channel) = state.verdicts.first().and_then(|v| v.channel_id.clone()) {
                channels.push(channel);
            }
        }
        Ok(channels)
    }

    /// Up to `limit` items of a channel whatever their visibility, newest published first: what
    /// a moderator sees of the channel beside a case.
    pub fn channel_items(
        &self,
        channel_id: &str,
        limit: usize,
    ) -> Result<Vec<ItemState>, IndexError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.channel_id, channel_id),
            IndexRecordOption::Basic,
        );
        let hits = searcher
            .search(
                &query,
                &TopDocs::with_limit(limit.max(1))
                    .order_by_fast_field::<DateTime>("published_at", Order::Desc),
            )
            .map_err(tantivy_err(&self.dir))?;
        hits.into_iter()
            .map(|(_, address)| {
                let doc: TantivyDocument = searcher.doc(address).map_err(tantivy_err(&self.dir))?;
                self.decode_state(&doc)
            })
            .collect()
    }

    /// Whether a channel verdict hides every item of `channel_id`.
    pub fn channel_blocked(&self, channel_id: &str) -> Result<bool, IndexError> {
        Ok(self
            .get(&Verdict::channel_key(channel_id))?
            .is_some_and(|s| s.visibility == Visibility::Suppressed))
    }

    /// The committed state of one item.
    pub fn get(&self, id: &str) -> Result<Option<ItemState>, IndexError> {
        // An id names at most one live document. Reading its postings segment by segment
        // skips what a query costs (weights, scorers, a collector): the writer looks up every
        // record's item here.
        let searcher = self.reader.searcher();
        let term = Term::from_field_text(self.fields.id, id);
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let postings = segment
                .inverted_index(self.fields.id)
                .and_then(|index| Ok(index.read_postings(&term, IndexRecordOption::Basic)?))
                .map_err(tantivy_err(&self.dir))?;
            let Some(mut postings) = postings else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if segment
                    .alive_bitset()
                    .is_none_or(|alive| alive.is_alive(doc))
                {
                    let address = DocAddress::new(ord as u32, doc);
                    let doc: TantivyDocument =
                        searcher.doc(address).map_err(tantivy_err(&self.dir))?;
                    return self.decode_state(&doc).map(Some);
                }
                doc = postings.advance();
            }
        }
        Ok(None)
    }

    /// Number of documents (items and verdict-only placeholders) committed.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub(crate) fn decode_state(&self, doc: &TantivyDocument) -> Result<ItemState, IndexError> {
        let json = doc
            .get_first(self.fields.state)
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.corrupt("document without state".into()))?;
        serde_json::from_str(json).map_err(|e| self.corrupt(format!("document state: {e}")))
    }

    pub(crate) fn corrupt(&self, why: String) -> IndexError {
        IndexError::Corrupt {
            dir: self.dir.clone(),
            why,
        }
    }
}
