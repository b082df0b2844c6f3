//! The one writer: applies content and verdicts in stream order and commits them with their
//! offsets. A commit is written in the background ([`Commit`]) while the next records are
//! applied.

use cordon_domain::{Action, ContentItem, Verdict, Visibility};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tantivy::{DateTime, Index, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::{
    schema, tantivy_err, Applied, Fields, IndexError, ItemState, Offsets, Payload, SearchHandle,
    CHANNEL_BLOCK,
};

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
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) state: ItemState,
    /// A committed document of the item exists and must be deleted at the commit.
    pub(crate) replaces: bool,
}

/// The changes of one commit, by item id.
type Changes = HashMap<String, Pending>;

/// The single writer of the index.
///
/// Look-ups see the newest state of an item in this order: the changes applied since the last
/// commit started (`overlay`), those a commit in progress is writing (`writing`), those the
/// last finished commit wrote (`recent`), the committed index.
pub struct ContentIndex {
    pub(crate) handle: SearchHandle,
    /// The Tantivy writer; a [`Commit`] in progress holds it.
    pub(crate) writer: Option<IndexWriter>,
    pub(crate) premoderation: bool,
    pub(crate) overlay: Changes,
    /// The changes a commit in progress is writing (empty when none is).
    pub(crate) writing: Arc<Changes>,
    /// The states written by the last commit: a verdict usually follows its item's content by
    /// less than a commit interval, and finding the state here spares a document-store read.
    pub(crate) recent: HashMap<String, ItemState>,
    pub(crate) committed: Offsets,
}

/// A commit taken from the index by [`ContentIndex::start_commit`]: the changes applied until
/// then and their offsets, with the writer. [`Commit::write`] writes it (blocking, on any
/// thread) while the index goes on applying records; [`ContentIndex::finish_commit`] gives the
/// writer back. Ordering guarantee: the documents and the offsets of one commit are taken at
/// the same moment, so a commit never holds a record without its offset or the reverse.
pub struct Commit {
    writer: IndexWriter,
    changes: Arc<Changes>,
    offsets: Offsets,
    handle: SearchHandle,
}

/// A written commit, to hand back with [`ContentIndex::finish_commit`].
pub struct Written {
    writer: IndexWriter,
    offsets: Offsets,
}

impl Commit {
    /// Writes every changed item once, commits the documents with the offsets, then makes them
    /// visible to readers. Blocking: Tantivy flushes segments and syncs files.
    pub fn write(mut self) -> Result<Written, IndexError> {
        let dir = self.handle.dir.clone();
        let fields = self.handle.fields;
        for pending in self.changes.values() {
            let doc =
                document(fields, &pending.state).map_err(|e| self.handle.corrupt(e.to_string()))?;
            if pending.replaces {
                self.writer
                    .delete_term(Term::from_field_text(fields.id, &pending.state.id));
            }
            self.writer.add_document(doc).map_err(tantivy_err(&dir))?;
        }
        let payload = serde_json::to_string(&Payload {
            offsets: self.offsets.clone(),
        })
        .map_err(|e| self.handle.corrupt(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit().map_err(tantivy_err(&dir))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(tantivy_err(&dir))?;
        self.handle.reader.reload().map_err(tantivy_err(&dir))?;
        Ok(Written {
            writer: self.writer,
            offsets: self.offsets,
        })
    }
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
                writer: Some(writer),
                premoderation: settings.premoderation,
                overlay: HashMap::new(),
                writing: Arc::default(),
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

    pub(crate) fn current(&self, id: &str) -> Result<Option<ItemState>, IndexError> {
        if let Some(pending) = self.overlay.get(id).or_else(|| self.writing.get(id)) {
            return Ok(Some(pending.state.clone()));
        }
        match self.recent.get(id) {
            Some(state) => Ok(Some(state.clone())),
            None => self.handle.get(id),
        }
    }

    /// Puts a changed state in the overlay, remembering whether a committed document exists
    /// that the commit must replace (a new item needs no delete, which saves its cost).
    pub(crate) fn change(&mut self, state: ItemState, existed: bool) {
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

    pub(crate) fn apply_channel_verdict(
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

    pub(crate) fn store(
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

    /// Takes everything applied so far, with `offsets` (the next offset to read per topic and
    /// partition), as a [`Commit`] to write; applying goes on meanwhile. Each changed item is
    /// written once per commit, however many records changed it (typically its content and its
    /// verdict). One commit at a time: the writer is the commit's until it is finished.
    pub fn start_commit(&mut self, offsets: &Offsets) -> Result<Commit, IndexError> {
        let writer = self.writer.take().ok_or(IndexError::CommitInProgress)?;
        self.writing = Arc::new(std::mem::take(&mut self.overlay));
        Ok(Commit {
            writer,
            changes: Arc::clone(&self.writing),
            offsets: offsets.clone(),
            handle: self.handle.clone(),
        })
    }

    /// Takes the writer back from a written commit: its offsets are now the committed ones.
    pub fn finish_commit(&mut self, written: Written) {
        self.writer = Some(written.writer);
        self.recent = Arc::unwrap_or_clone(std::mem::take(&mut self.writing))
            .into_iter()
            .map(|(id, pending)| (id, pending.state))
            .collect();
        self.committed = written.offsets;
    }

    /// Commits everything applied so far with `offsets` and waits for it (blocking).
    pub fn commit(&mut self, offsets: &Offsets) -> Result<(), IndexError> {
        let written = self.start_commit(offsets)?.write()?;
        self.finish_commit(written);
        Ok(())
    }

    /// Waits for background merges to finish and closes the writer.
    pub fn close(self) -> Result<(), IndexError> {
        let dir = self.handle.dir.clone();
        self.writer
            .ok_or(IndexError::CommitInProgress)?
            .wait_merging_threads()
            .map_err(tantivy_err(&dir))
    }
}

/// The Tantivy document of an item's state, or of a channel block.
fn document(f: Fields, state: &ItemState) -> Result<TantivyDocument, serde_json::Error> {
    let json = serde_json::to_string(state)?;
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
