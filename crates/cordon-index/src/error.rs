//! Why an index operation failed.

use std::path::{Path, PathBuf};

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
    /// The writer is held by a commit that was started and not finished (one commit at a time).
    #[error("a commit of the index is in progress")]
    CommitInProgress,
}

pub(crate) fn tantivy_err(dir: &Path) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
    move |source| IndexError::Tantivy {
        dir: dir.to_path_buf(),
        source,
    }
}
