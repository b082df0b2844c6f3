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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cordon_domain::{Action, ContentItem, Verdict, Visibility};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{
    DateTime, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

/// `kind` of the documents that record channel verdicts.
const CHANNEL_BLOCK: &str = "channel_block";

/// Next offset to read, by topic and partition.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Tantivy failed.
    #[error("index {dir}: {source}")]
    Tantivy {
        /// The index directory.
        dir: PathBuf,
        /// The cause.
        source: tantivy::TantivyError,
    },
    /// The directory could not be created.
    #[error("index directory {dir}: {source}")]
    Io {
        /// The index directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored document or the commit payload is not what this build wrote.
    #[error("index {dir} holds data this build cannot read: {why}")]
    Corrupt {
        /// The index directory.
        dir: PathBuf,
        /// What could not be read.
        why: String,
    },
}

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

    fn recompute(&mut self, premoderation: bool) {
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

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    kind: Field,
    channel_id: Field,
    channel: Field,
    title: Field,
    text: Field,
    lang: Field,
    visibility: Field,
    category: Field,
    score: Field,
    version: Field,
    published_at: Field,
    indexed_at: Field,
    state: Field,
}

fn schema() -> (Schema, Fields) {
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
struct Payload {
    offsets: Offsets,
}

/// Read access to the index: public search and look-ups. Cheap to clone.
#[derive(Clone)]
pub struct SearchHandle {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
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
    parts: Vec<QueryPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryPart {
    Words(String),
    Phrase(String),
}

impl QueryPart {
    fn text(&self) -> &str {
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

fn tantivy_err(dir: &Path) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
    move |source| IndexError::Tantivy {
        dir: dir.to_path_buf(),
        source,
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
    fn text_query(&self, query: &PlainQuery) -> Result<Box<dyn Query>, IndexError> {
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
    fn blocked_channels(&self, searcher: &tantivy::Searcher) -> Result<Vec<String>, IndexError> {
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
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        let hits = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(tantivy_err(&self.dir))?;
        match hits.first() {
            None => Ok(None),
            Some((_, address)) => {
                let doc: TantivyDocument =
                    searcher.doc(*address).map_err(tantivy_err(&self.dir))?;
                self.decode_state(&doc).map(Some)
            }
        }
    }

    /// Number of documents (items and verdict-only placeholders) committed.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn decode_state(&self, doc: &TantivyDocument) -> Result<ItemState, IndexError> {
        let json = doc
            .get_first(self.fields.state)
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.corrupt("document without state".into()))?;
        serde_json::from_str(json).map_err(|e| self.corrupt(format!("document state: {e}")))
    }

    fn corrupt(&self, why: String) -> IndexError {
        IndexError::Corrupt {
            dir: self.dir.clone(),
            why,
        }
    }
}

/// Index settings.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Where the index lives.
    pub dir: PathBuf,
    /// Memory budget of the writer, in bytes.
    pub writer_memory_bytes: usize,
    /// Hide items until their verdict arrives (and review items until a person decides).
    pub premoderation: bool,
}

/// An item changed since the last commit.
struct Pending {
    state: ItemState,
    /// A committed document of the item exists and must be deleted at the commit.
    replaces: bool,
}

/// The single writer of the index.
pub struct ContentIndex {
    handle: SearchHandle,
    writer: IndexWriter,
    premoderation: bool,
    overlay: HashMap<String, Pending>,
    /// The states written by the last commit: a verdict usually follows its item's content by
    /// less than a commit interval, and finding the state here spares a document-store read.
    recent: HashMap<String, ItemState>,
    committed: Offsets,
}

impl ContentIndex {
    /// Opens (or creates) the index and returns the writer and a read handle sharing its reader.
    pub fn open(settings: &IndexSettings) -> Result<(ContentIndex, SearchHandle), IndexError> {
        let dir = settings.dir.as_path();
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| IndexError::Tantivy {
                dir: dir.to_path_buf(),
                source: e.into(),
            })?;
        let index = Index::open_or_create(directory, schema.clone()).map_err(tantivy_err(dir))?;
        if index.schema() != schema {
            return Err(IndexError::Corrupt {
                dir: dir.to_path_buf(),
                why: "the index was written with another schema; remove it to rebuild".into(),
            });
        }
        let writer = index
            .writer_with_num_threads(1, settings.writer_memory_bytes.max(15_000_000))
            .map_err(tantivy_err(dir))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err(dir))?;
        let metas = index.load_metas().map_err(tantivy_err(dir))?;
        let committed = match metas.payload {
            None => Offsets::new(),
            Some(p) => {
                serde_json::from_str::<Payload>(&p)
                    .map_err(|e| IndexError::Corrupt {
                        dir: dir.to_path_buf(),
                        why: format!("commit payload: {e}"),
                    })?
                    .offsets
            }
        };
        let handle = SearchHandle {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
        };
        Ok((
            ContentIndex {
                handle: handle.clone(),
                writer,
                premoderation: settings.premoderation,
                overlay: HashMap::new(),
                recent: HashMap::new(),
                committed,
            },
            handle,
        ))
    }

    /// The offsets saved with the last commit: where to resume reading.
    pub fn committed_offsets(&self) -> &Offsets {
        &self.committed
    }

    /// Items changed since the last commit.
    pub fn pending(&self) -> usize {
        self.overlay.len()
    }

    fn current(&self, id: &str) -> Result<Option<ItemState>, IndexError> {
        if let Some(pending) = self.overlay.get(id) {
            return Ok(Some(pending.state.clone()));
        }
        match self.recent.get(id) {
            Some(state) => Ok(Some(state.clone())),
            None => self.handle.get(id),
        }
    }

    /// Puts a changed state in the overlay, remembering whether a committed document exists
    /// that the commit must replace (a new item needs no delete, which saves its cost).
    fn change(&mut self, state: ItemState, existed: bool) {
        let replaces = self.overlay.get(&state.id).map_or(existed, |p| p.replaces);
        self.overlay
            .insert(state.id.clone(), Pending { state, replaces });
    }

    /// Applies a content item: a newer version replaces the stored one, an older one is ignored.
    pub fn apply_content(&mut self, item: ContentItem) -> Result<Applied, IndexError> {
        let existing = self.current(&item.id)?;
        if let Some(old) = existing.as_ref().and_then(|s| s.content.as_ref()) {
            if old.version > item.version || *old == item {
                return Ok(Applied::Stale);
            }
        }
        let before = existing
            .as_ref()
            .filter(|s| s.content.is_some())
            .map(|s| s.visibility);
        let existed = existing.is_some();
        let mut state = existing.unwrap_or_else(|| ItemState {
            id: item.id.clone(),
            content: None,
            verdicts: Vec::new(),
            visibility: Visibility::Pending,
        });
        state.content = Some(item);
        self.store(state, before, existed)
    }

    /// Applies a verdict if it outranks the one in force for its item version. A channel verdict
    /// (`channel_id` set) blocks or unblocks every item of the channel in public search.
    pub fn apply_verdict(&mut self, verdict: Verdict) -> Result<Applied, IndexError> {
        if let Some(channel) = verdict.channel_id.clone() {
            return self.apply_channel_verdict(channel, verdict);
        }
        let existing = self.current(&verdict.item_id)?;
        let mut state = existing.clone().unwrap_or_else(|| ItemState {
            id: verdict.item_id.clone(),
            content: None,
            verdicts: Vec::new(),
            visibility: Visibility::Pending,
        });
        if state
            .content
            .as_ref()
            .is_some_and(|c| c.version > verdict.item_version)
        {
            return Ok(Applied::Stale);
        }
        match state
            .verdicts
            .iter_mut()
            .find(|v| v.item_version == verdict.item_version)
        {
            Some(current) if verdict.outranks(current) => *current = verdict,
            Some(_) => return Ok(Applied::Stale),
            None => state.verdicts.push(verdict),
        }
        let existed = existing.is_some();
        let before = existing
            .filter(|s| s.content.is_some())
            .map(|s| s.visibility);
        self.store(state, before, existed)
    }

    fn apply_channel_verdict(
        &mut self,
        channel: String,
        verdict: Verdict,
    ) -> Result<Applied, IndexError> {
        let key = Verdict::channel_key(&channel);
        let existing = self.current(&key)?;
        if let Some(current) = existing.as_ref().and_then(|s| s.verdicts.first()) {
            if !verdict.outranks(current) {
                return Ok(Applied::Stale);
            }
        }
        let blocked = verdict.action == Action::Suppress;
        let state = ItemState {
            id: key.clone(),
            content: None,
            verdicts: vec![verdict],
            visibility: if blocked {
                Visibility::Suppressed
            } else {
                Visibility::Visible
            },
        };
        let before = existing.as_ref().map(|s| s.visibility);
        let after = state.visibility;
        self.change(state, existing.is_some());
        Ok(Applied::Changed { before, after })
    }

    fn store(
        &mut self,
        mut state: ItemState,
        before: Option<Visibility>,
        existed: bool,
    ) -> Result<Applied, IndexError> {
        state.recompute(self.premoderation);
        let after = state.visibility;
        self.change(state, existed);
        Ok(Applied::Changed { before, after })
    }

    /// The Tantivy document of an item's state, or of a channel block.
    fn document(&self, state: &ItemState) -> Result<TantivyDocument, IndexError> {
        let f = self.handle.fields;
        let json = serde_json::to_string(state).map_err(|e| self.handle.corrupt(e.to_string()))?;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &state.id);
        doc.add_text(f.state, &json);
        if let Some(channel) = state.verdicts.first().and_then(|v| v.channel_id.as_ref()) {
            doc.add_text(f.kind, CHANNEL_BLOCK);
            doc.add_text(f.channel_id, channel);
            let blocked = state.visibility == Visibility::Suppressed;
            doc.add_text(f.visibility, if blocked { "blocked" } else { "unblocked" });
            return Ok(doc);
        }
        doc.add_text(f.visibility, state.visibility.as_str());
        if let Some(c) = &state.content {
            doc.add_text(f.kind, c.kind.as_str());
            doc.add_text(f.channel_id, &c.channel.id);
            for part in [&c.channel.username, &c.channel.title]
                .into_iter()
                .flatten()
            {
                doc.add_text(f.channel, part);
            }
            if let Some(t) = &c.title {
                doc.add_text(f.title, t);
            }
            doc.add_text(f.text, &c.text);
            if let Some(l) = &c.lang {
                doc.add_text(f.lang, l);
            }
            doc.add_u64(f.version, c.version);
            doc.add_date(
                f.published_at,
                DateTime::from_timestamp_micros(c.published_at.timestamp_micros()),
            );
            doc.add_date(
                f.indexed_at,
                DateTime::from_timestamp_micros(c.indexed_at.timestamp_micros()),
            );
        }
        if let Some(v) = state.verdict() {
            if let Some(c) = v.category {
                doc.add_text(f.category, c.as_str());
            }
            if let Some(s) = v.score {
                doc.add_f64(f.score, f64::from(s));
            }
        }
        Ok(doc)
    }

    /// Commits everything applied so far together with `offsets` (the next offset to read per
    /// topic and partition), then makes it visible to readers. Each changed item is written once
    /// per commit, however many records changed it (typically its content and its verdict).
    pub fn commit(&mut self, offsets: &Offsets) -> Result<(), IndexError> {
        let dir = self.handle.dir.clone();
        for pending in self.overlay.values() {
            let doc = self.document(&pending.state)?;
            if pending.replaces {
                self.writer.delete_term(Term::from_field_text(
                    self.handle.fields.id,
                    &pending.state.id,
                ));
            }
            self.writer.add_document(doc).map_err(tantivy_err(&dir))?;
        }
        let payload = serde_json::to_string(&Payload {
            offsets: offsets.clone(),
        })
        .map_err(|e| self.handle.corrupt(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit().map_err(tantivy_err(&dir))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(tantivy_err(&dir))?;
        self.handle.reader.reload().map_err(tantivy_err(&dir))?;
        self.recent = self
            .overlay
            .drain()
            .map(|(id, pending)| (id, pending.state))
            .collect();
        self.committed = offsets.clone();
        Ok(())
    }

    /// Waits for background merges to finish and closes the writer.
    pub fn close(self) -> Result<(), IndexError> {
        let dir = self.handle.dir.clone();
        self.writer
            .wait_merging_threads()
            .map_err(tantivy_err(&dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use cordon_domain::{Action, Channel, ContentKind, DecidedBy};

    fn q(text: &str) -> PlainQuery {
        PlainQuery::parse(text).unwrap()
    }

    #[test]
    fn public_queries_are_plain_words_and_phrases() {
        assert!(q("").is_empty());
        assert!(q("  ").is_empty());
        assert_eq!(q("a \"b c\" d").parts.len(), 3);
        assert_eq!(q("(((((x))))) AND score:[0.5 TO 1]").parts.len(), 5);
        assert!(
            !q("!!! ???").is_empty(),
            "punctuation finds nothing, it does not list all"
        );
        let many = "w ".repeat(MAX_QUERY_PARTS + 1);
        assert_eq!(PlainQuery::parse(&many), Err(QueryError::TooManyParts));
        let deep = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(q(&deep).parts.len(), 1);
    }

    fn item(id: &str, version: u64, text: &str) -> ContentItem {
        ContentItem {
            id: id.into(),
            kind: ContentKind::Listing,
            channel: Channel {
                id: "c1".into(),
                username: Some("shop".into()),
                title: None,
                subscribers: None,
            },
            text: text.into(),
            title: None,
            price: None,
            currency: None,
            lang: Some("en".into()),
            media: Vec::new(),
            url: None,
            published_at: Utc::now(),
            indexed_at: Utc::now(),
            version,
        }
    }

    #[test]
    fn channel_verdicts_hide_every_item_of_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, search) = open(dir.path(), false);
        index.apply_content(item("a", 1, "bikes")).unwrap();
        index.apply_content(item("b", 1, "bikes")).unwrap();
        let human = |id| DecidedBy::Human {
            moderator: "ann".into(),
            decision_id: id,
        };
        let mut block = verdict(&Verdict::channel_key("c1"), 0, Action::Suppress, human(1));
        block.channel_id = Some("c1".into());
        index.apply_verdict(block.clone()).unwrap();
        index.commit(&Offsets::new()).unwrap();
        assert!(search.search(&q("bikes"), 0, 10).unwrap().items.is_empty());
        assert!(search.channel_blocked("c1").unwrap());
        // An item of the channel arriving later is hidden too; moderators still find it.
        index.apply_content(item("c", 1, "bikes")).unwrap();
        index.commit(&Offsets::new()).unwrap();
        assert!(search.search(&q("bikes"), 0, 10).unwrap().items.is_empty());
        assert!(search.get("c").unwrap().is_some());
        // A later restore unblocks; the older block re-delivered changes nothing.
        let mut unblock = verdict(&Verdict::channel_key("c1"), 0, Action::Restore, human(2));
        unblock.channel_id = Some("c1".into());
        index.apply_verdict(unblock).unwrap();
        assert_eq!(index.apply_verdict(block).unwrap(), Applied::Stale);
        index.commit(&Offsets::new()).unwrap();
        assert_eq!(search.search(&q("bikes"), 0, 10).unwrap().total, 3);
        assert!(!search.channel_blocked("c1").unwrap());
    }

    #[test]
    fn an_item_changed_by_several_records_is_written_once_per_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, search) = open(dir.path(), false);
        let model = || DecidedBy::Model {
            model_version: "m".into(),
            stage: cordon_domain::Stage::Fast,
        };
        index.apply_content(item("a", 1, "bikes")).unwrap();
        index
            .apply_verdict(verdict("a", 1, Action::Allow, model()))
            .unwrap();
        index.apply_content(item("a", 2, "bikes cheap")).unwrap();
        index.apply_content(item("b", 1, "bikes")).unwrap();
        assert_eq!(index.pending(), 2);
        // Nothing is visible before the commit; after it, one document per item.
        assert_eq!(search.num_docs(), 0);
        index.commit(&Offsets::new()).unwrap();
        assert_eq!(search.num_docs(), 2);
        assert_eq!(index.pending(), 0);
        let a = search.get("a").unwrap().unwrap();
        assert_eq!(a.content.unwrap().version, 2);
        assert!(
            a.verdicts.is_empty(),
            "version 1's verdict does not apply to version 2"
        );
        // A verdict for the committed item replaces its document.
        index
            .apply_verdict(verdict("a", 2, Action::Suppress, model()))
            .unwrap();
        index.commit(&Offsets::new()).unwrap();
        assert_eq!(search.num_docs(), 2);
        assert_eq!(search.search(&q("bikes"), 0, 10).unwrap().total, 1);
    }

    fn verdict(id: &str, version: u64, action: Action, by: DecidedBy) -> Verdict {
        Verdict {
            item_id: id.into(),
            item_version: version,
            action,
            decided_by: by,
            category: None,
            score: None,
            scores: None,
            fast_scores: None,
            reason: "test".into(),
            channel_id: None,
            explanation: Vec::new(),
            decided_at: Utc::now(),
        }
    }

    fn model() -> DecidedBy {
        DecidedBy::Model {
            model_version: "m".into(),
            stage: cordon_domain::Stage::Fast,
        }
    }

    fn open(dir: &Path, premoderation: bool) -> (ContentIndex, SearchHandle) {
        ContentIndex::open(&IndexSettings {
            dir: dir.to_path_buf(),
            writer_memory_bytes: 20_000_000,
            premoderation,
        })
        .expect("open")
    }

    fn ids(page: &SearchPage) -> Vec<&str> {
        page.items.iter().map(|h| h.item.id.as_str()).collect()
    }

    #[test]
    fn suppression_versions_and_offsets_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, search) = open(dir.path(), false);
        index.apply_content(item("a", 1, "fresh apples")).unwrap();
        index
            .apply_content(item("b", 1, "fresh apples and pears"))
            .unwrap();
        // A verdict that arrives before its content waits for it.
        index
            .apply_verdict(verdict("c", 1, Action::Suppress, model()))
            .unwrap();
        index
            .apply_content(item("c", 1, "apples for sale"))
            .unwrap();
        index
            .apply_verdict(verdict("b", 1, Action::Suppress, model()))
            .unwrap();
        let mut offsets = Offsets::new();
        offsets.entry("content".into()).or_default().insert(0, 42);
        index.commit(&offsets).unwrap();
        assert_eq!(ids(&search.search(&q("apples"), 0, 10).unwrap()), vec!["a"]);
        let b = search.get("b").unwrap().unwrap();
        assert_eq!(b.visibility, Visibility::Suppressed);

        // A person restores b; a re-delivered model verdict does not undo that.
        let human = DecidedBy::Human {
            moderator: "ann".into(),
            decision_id: 1,
        };
        index
            .apply_verdict(verdict("b", 1, Action::Restore, human))
            .unwrap();
        assert_eq!(
            index
                .apply_verdict(verdict("b", 1, Action::Suppress, model()))
                .unwrap(),
            Applied::Stale
        );
        // An old version arriving late is ignored; a new version is judged afresh.
        assert_eq!(
            index.apply_content(item("a", 0, "old")).unwrap(),
            Applied::Stale
        );
        index.apply_content(item("c", 2, "apples, edited")).unwrap();
        offsets.get_mut("content").unwrap().insert(0, 50);
        index.commit(&offsets).unwrap();
        index.close().unwrap();

        let (index, search) = open(dir.path(), false);
        assert_eq!(index.committed_offsets()["content"][&0], 50);
        let page = search.search(&q("apples"), 0, 10).unwrap();
        let mut found = ids(&page);
        found.sort();
        assert_eq!(found, vec!["a", "b", "c"]);
        assert_eq!(search.search(&q("apples"), 0, 2).unwrap().total, 3);
        assert_eq!(search.search(&q("apples"), 2, 2).unwrap().items.len(), 1);
        assert_eq!(search.search(&q(""), 0, 10).unwrap().total, 3);
        // No operators: `AND` is the word "and" (in b), brackets are nothing.
        assert_eq!(
            ids(&search.search(&q("AND OR ((("), 0, 10).unwrap()),
            vec!["b"]
        );
        assert_eq!(search.search(&q("((( )))"), 0, 10).unwrap().total, 0);
        // Words and phrases, never fields: the moderation fields cannot be queried.
        assert_eq!(search.search(&q("\"apples for\""), 0, 10).unwrap().total, 0);
        assert_eq!(
            search.search(&q("\"fresh apples\""), 0, 10).unwrap().total,
            2
        );
        for probe in [
            "score:[0 TO 1]",
            "category:drugs",
            "visibility:suppressed",
            "id:b",
        ] {
            assert_eq!(search.search(&q(probe), 0, 10).unwrap().total, 0, "{probe}");
        }
    }

    #[test]
    fn premoderation_hides_until_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, search) = open(dir.path(), true);
        index.apply_content(item("a", 1, "bikes")).unwrap();
        index.apply_content(item("b", 1, "bikes")).unwrap();
        index
            .apply_verdict(verdict("a", 1, Action::Allow, model()))
            .unwrap();
        index
            .apply_verdict(verdict("b", 1, Action::Review, model()))
            .unwrap();
        index.commit(&Offsets::new()).unwrap();
        assert_eq!(ids(&search.search(&q("bikes"), 0, 10).unwrap()), vec!["a"]);
        assert_eq!(
            search.get("b").unwrap().unwrap().visibility,
            Visibility::Pending
        );
    }
}
