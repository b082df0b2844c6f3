//! The multilingual sentence encoder: a tokenizer and an ONNX graph that turn texts into
//! L2-normalized embeddings.
//!
//! An encoder directory (written at set-up by `scripts/convert-encoder.py` from the pinned
//! package, never committed) holds `encoder.onnx` (inputs `input_ids` and `attention_mask`, int64
//! `[batch, tokens]`; output `sentence_embedding`, float `[batch, dims]`), `tokenizer.json` and
//! the card `encoder.json` ([`EncoderCard`]). [`Encoder::load`] checks the graph's bytes against
//! the card's fingerprint and runs a smoke inference.

use std::path::{Path, PathBuf};

use cordon_classifier::{Input, SessionPool};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ContextError, Device};

/// File name of the graph inside an encoder directory.
pub const ENCODER_FILE: &str = "encoder.onnx";
/// File name of the tokenizer inside an encoder directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File name of the card inside an encoder directory.
pub const ENCODER_CARD_FILE: &str = "encoder.json";

/// What an encoder is and where it came from, stored beside it as `encoder.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderCard {
    /// The model's name, e.g. `multilingual-e5-small`.
    pub name: String,
    /// The package and file it was converted from.
    pub source: serde_json::Value,
    /// Embedding size.
    pub dimensions: usize,
    /// Most tokens per text (longer texts are truncated).
    pub max_tokens: usize,
    /// Prepended to every text (`"passage: "` for e5).
    pub prefix: String,
    /// Version of the converter that wrote it.
    pub converter_version: u32,
    /// SHA-256 of `encoder.onnx`, hex.
    pub onnx_sha256: String,
}

/// A loaded encoder: tokenizer and a pool of inference sessions.
pub struct Encoder {
    card: EncoderCard,
    dir: PathBuf,
    tokenizer: tokenizers::Tokenizer,
    sessions: SessionPool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("name", &self.card.name)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl Encoder {
    /// Loads the encoder in `dir` with `sessions` parallel sessions of `threads` intra-op threads
    /// on `device`, and checks it.
    pub fn load(
        dir: &Path,
        sessions: usize,
        threads: usize,
        device: Device,
    ) -> Result<Encoder, ContextError> {
        let card: EncoderCard = crate::read_json(&dir.join(ENCODER_CARD_FILE))?;
        if card.max_tokens < 2 || card.dimensions == 0 {
            return Err(ContextError::Incompatible {
                model: dir.to_path_buf(),
                why: "the card needs max_tokens >= 2 and dimensions >= 1".into(),
            });
        }
        let bytes = crate::read(&dir.join(ENCODER_FILE))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != card.onnx_sha256 {
            return Err(ContextError::Incompatible {
                model: dir.to_path_buf(),
                why: format!(
                    "{ENCODER_FILE} has sha256 {sha}, its card names {}",
                    card.onnx_sha256
                ),
            });
        }
        let tokenizer =
            tokenizers::Tokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(|e| {
                ContextError::Incompatible {
                    model: dir.to_path_buf(),
                    why: format!("{TOKENIZER_FILE}: {e}"),
                }
            })?;
        let pool = SessionPool::new(&bytes, sessions, threads, device)?;
        let encoder = Encoder {
            card,
            dir: dir.to_path_buf(),
            tokenizer,
            sessions: pool,
        };
        let smoke = encoder.embed(&["smoke test", ""])?;
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if smoke.iter().any(|e| (norm(e) - 1.0).abs() > 1e-3) {
            return Err(ContextError::Incompatible {
                model: dir.to_path_buf(),
                why: "smoke inference did not give unit-length embeddings".into(),
            });
        }
        Ok(encoder)
    }

    /// The encoder's card.
    pub fn card(&self) -> &EncoderCard {
        &self.card
    }

    /// Embeds a batch of texts (each with the card's prefix, truncated to its `max_tokens`).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, ContextError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for text in texts {
            let input = format!("{}{}", self.card.prefix, text.as_ref());
            let encoding = self
                .tokenizer
                .encode(input, true)
                .map_err(|e| ContextError::Runtime(format!("tokenizer: {e}")))?;
            let mut row = encoding.get_ids().to_vec();
            if row.len() > self.card.max_tokens {
                // Keep the end-of-sequence token the tokenizer appended.
                let last = row[row.len() - 1];
                row.truncate(self.card.max_tokens - 1);
                row.push(last);
            }
            ids.push(row);
        }
        let batch = ids.len();
        let len = ids.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut input_ids = vec![1i64; batch * len];
        let mut mask = vec![0i64; batch * len];
        for (r, row) in ids.iter().enumerate() {
            for (c, id) in row.iter().enumerate() {
                input_ids[r * len + c] = i64::from(*id);
                mask[r * len + c] = 1;
            }
        }
        let dims = self.card.dimensions;
        let data = self.sessions.run(
            vec![
                (
                    "input_ids",
                    Input::Int64 {
                        shape: [batch, len],
                        data: input_ids,
                    },
                ),
                (
                    "attention_mask",
                    Input::Int64 {
                        shape: [batch, len],
                        data: mask,
                    },
                ),
            ],
            "sentence_embedding",
            batch,
            dims,
        )?;
        Ok(data.chunks_exact(dims).map(<[f32]>::to_vec).collect())
    }
}
