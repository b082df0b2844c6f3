//! Dead letters: bounded copies of what cannot be decoded or published, with the reason in
//! headers. The header names are the wire contract (docs/input-contract.md).

use cordon_domain::DecodeError;
use cordon_stream::{Received, Record};
use sha2::{Digest, Sha256};

/// Header carrying the reason a message was dead-lettered.
pub const ERROR_HEADER: &str = "cordon.error";
/// Header carrying the reason's short code (`too_large`, `json`, ..., `unpublishable`).
pub const ERROR_CODE_HEADER: &str = "cordon.error.code";
/// Header naming the topic the dead-lettered record came from (or was meant for).
pub const SOURCE_TOPIC_HEADER: &str = "cordon.source.topic";
/// Header naming the partition the dead-lettered message came from.
pub const SOURCE_PARTITION_HEADER: &str = "cordon.source.partition";
/// Header naming the offset the dead-lettered message came from.
pub const SOURCE_OFFSET_HEADER: &str = "cordon.source.offset";
/// Header carrying the original payload's size in bytes.
pub const ORIGINAL_BYTES_HEADER: &str = "cordon.original.bytes";
/// Header carrying the original payload's SHA-256, in hex.
pub const ORIGINAL_SHA256_HEADER: &str = "cordon.original.sha256";
/// Header present (`true`) when the dead-letter payload is cut to `worker.dead_letter_max_bytes`.
pub const TRUNCATED_HEADER: &str = "cordon.truncated";
/// Header carrying the size of the original headers when they were too large to copy.
pub const HEADERS_DROPPED_HEADER: &str = "cordon.headers.dropped";
/// The code of a record that could never be published.
pub const UNPUBLISHABLE_CODE: &str = "unpublishable";
/// Original headers are copied into a dead letter only while they total at most this.
const MAX_COPIED_HEADER_BYTES: usize = 16 * 1024;
/// Longest key a dead letter keeps.
const MAX_KEY_BYTES: usize = 1024;

/// Where dead letters go and how large their payload may be.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    /// The dead-letter topic.
    pub topic: String,
    /// Most payload bytes kept (`worker.dead_letter_max_bytes`).
    pub max_bytes: usize,
}

impl DeadLetters {
    /// The dead letter of a message that did not decode.
    pub fn undecodable(&self, message: &Received, error: &DecodeError) -> Record {
        let headers: Vec<(String, Vec<u8>)> = vec![
            (ERROR_HEADER.into(), error.to_string().into_bytes()),
            (ERROR_CODE_HEADER.into(), error.code().as_bytes().to_vec()),
            (
                SOURCE_TOPIC_HEADER.into(),
                message.topic.as_bytes().to_vec(),
            ),
            (
                SOURCE_PARTITION_HEADER.into(),
                message.partition.to_string().into_bytes(),
            ),
            (
                SOURCE_OFFSET_HEADER.into(),
                message.offset.to_string().into_bytes(),
            ),
        ];
        self.copy(
            message.key.as_deref(),
            message.payload().unwrap_or_default(),
            headers,
            message.headers.clone(),
        )
    }

    /// The dead letter of a record the producer or the broker refused for good.
    pub fn unpublishable(&self, record: &Record, error: &impl std::fmt::Display) -> Record {
        let headers = vec![
            (ERROR_HEADER.to_string(), error.to_string().into_bytes()),
            (
                ERROR_CODE_HEADER.to_string(),
                UNPUBLISHABLE_CODE.as_bytes().to_vec(),
            ),
            (
                SOURCE_TOPIC_HEADER.to_string(),
                record.topic.clone().into_bytes(),
            ),
        ];
        self.copy(
            record.key.as_deref().map(str::as_bytes),
            &record.payload,
            headers,
            Vec::new(),
        )
    }

    /// A dead-letter record that always fits the producer's limit: the payload whole when it
    /// has at most `max_bytes`, else its first that many bytes (header `cordon.truncated`); the
    /// original size and SHA-256 always travel in headers, the key is cut to 1 KiB, and the
    /// original headers are kept only while they total at most 16 KiB.
    fn copy(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        mut headers: Vec<(String, Vec<u8>)>,
        original_headers: Vec<(String, Vec<u8>)>,
    ) -> Record {
        headers.push((
            ORIGINAL_BYTES_HEADER.into(),
            payload.len().to_string().into_bytes(),
        ));
        headers.push((
            ORIGINAL_SHA256_HEADER.into(),
            hex::encode(Sha256::digest(payload)).into_bytes(),
        ));
        let kept = if payload.len() > self.max_bytes {
            headers.push((TRUNCATED_HEADER.into(), b"true".to_vec()));
            &payload[..self.max_bytes]
        } else {
            payload
        };
        let original_size: usize = original_headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if original_size <= MAX_COPIED_HEADER_BYTES {
            headers.extend(original_headers);
        } else {
            headers.push((
                HEADERS_DROPPED_HEADER.into(),
                original_size.to_string().into_bytes(),
            ));
        }
        Record {
            topic: self.topic.clone(),
            key: key
                .map(|k| String::from_utf8_lossy(&k[..k.len().min(MAX_KEY_BYTES)]).into_owned()),
            payload: kept.to_vec(),
            headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_is_bounded_and_names_the_original() {
        let letters = DeadLetters {
            topic: "dead".into(),
            max_bytes: 4,
        };
        let record = Record {
            topic: "verdicts".into(),
            key: Some("k".repeat(2000)),
            payload: b"0123456789".to_vec(),
            headers: Vec::new(),
        };
        let copy = letters.unpublishable(&record, &"too large");
        assert_eq!(copy.payload, b"0123");
        assert_eq!(copy.key.as_deref().map(str::len), Some(MAX_KEY_BYTES));
        let header = |name: &str| {
            copy.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header(TRUNCATED_HEADER).as_deref(), Some("true"));
        assert_eq!(header(ORIGINAL_BYTES_HEADER).as_deref(), Some("10"));
        assert_eq!(
            header(ERROR_CODE_HEADER).as_deref(),
            Some(UNPUBLISHABLE_CODE)
        );
        assert_eq!(header(SOURCE_TOPIC_HEADER).as_deref(), Some("verdicts"));
    }
}
