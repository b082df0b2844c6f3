//! Labelled evaluation files: JSON lines with `text`, `label` (0 or 1), and optionally
//! `category` and `group` (the kind of hard negative).

use std::path::Path;

use cordon_domain::Category;
use serde::Deserialize;

use crate::TrainError;

/// One labelled text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledText {
    /// The text.
    pub text: String,
    /// 1 for an illegal offer, 0 otherwise.
    pub label: u8,
    /// The offer's category, if labelled.
    #[serde(default)]
    pub category: Option<Category>,
    /// The negative's kind (news, legal_shop, ...), if labelled.
    #[serde(default)]
    pub group: Option<String>,
    /// The text's language, if labelled.
    #[serde(default)]
    pub lang: Option<String>,
}

/// Reads an evaluation file; a bad line is an error naming its line number.
pub fn read_labelled(path: &Path) -> Result<Vec<LabelledText>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: LabelledText = serde_json::from_str(line).map_err(|e| TrainError::Corpus {
            path: path.to_path_buf(),
            why: format!("line {}: {e}", i + 1),
        })?;
        if item.label > 1 {
            return Err(TrainError::Corpus {
                path: path.to_path_buf(),
                why: format!("line {}: label must be 0 or 1", i + 1),
            });
        }
        out.push(item);
    }
    Ok(out)
}
