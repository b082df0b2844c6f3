//! The one writer: applies content and verdicts in stream order and commits them with their
//! offsets.

use cordon_domain::{Action, ContentItem, Verdict, Visibility};
use std::collections::HashMap;
use std::path::PathBuf;
use tantivy::{DateTime, Index, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::{
    schema, tantivy_err, Applied, IndexError, ItemState, Offsets, Payload, SearchHandle,
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
pub(crate) struct Pending {
    pub(crate) state: ItemState,
    /// A committed document of the item exists and must be deleted at the commit.
    pub(crate) replaces: bool,
}

/// The single writer of the index.
pub struct ContentIndex {
    pub(crate) handle: SearchHandle,
    pub(crate) writer: IndexWriter,
    pub(crate) premoderation: bool,
    pub(crate) overlay: HashMap<String, Pending>,
    /// The states written by the last commit: a verdict usually follows its item's content by
    /// less than a commit interval, and finding the state here spares a document-store read.
    pub(crate) recent: HashMap<String, ItemState>,
    pub(crate) committed: Offsets,
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

    pub(crate) fn current(&self, id: &str) -> Result<Option<ItemState>, IndexError> {
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

    /// The Tantivy document of an item's state, or of a channel block.
    pub(crate) fn document(&self, state: &ItemState) -> Result<TantivyDocument, IndexError> {
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
