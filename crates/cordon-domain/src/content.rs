//! Content items: the input contract on the content topic (see `docs/input-contract.md`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::Verdict;

/// What kind of public content an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// A post in a public channel.
    ChannelPost,
    /// A marketplace listing.
    Listing,
    /// A channel's own profile (title and description).
    ChannelProfile,
}

impl ContentKind {
    /// Every kind.
    pub const ALL: [ContentKind; 3] = [
        ContentKind::ChannelPost,
        ContentKind::Listing,
        ContentKind::ChannelProfile,
    ];

    /// The wire name of the kind, as used in JSON and in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::ChannelPost => "channel_post",
            ContentKind::Listing => "listing",
            ContentKind::ChannelProfile => "channel_profile",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<ContentKind> {
        ContentKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The channel an item was published in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// The platform's stable channel id.
    pub id: String,
    /// The channel's public @username, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The channel's display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// How many people follow the channel: the item's reach, used for review priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<u64>,
}

/// What kind of media an item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video (the console shows its poster or a link).
    Video,
}

/// A picture or video attached to an item, by public `http(s)` link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// What it is.
    pub kind: MediaKind,
    /// Where it is: an `http` or `https` URL.
    pub url: String,
}

/// Most media one item may carry.
pub const MAX_MEDIA: usize = 16;

/// One piece of public content to be moderated and indexed.
///
/// Unknown fields are ignored so that producers can add fields without breaking Cordon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentItem {
    /// Stable id, e.g. `tg:channel/123/post/456`.
    pub id: String,
    /// What kind of content this is.
    pub kind: ContentKind,
    /// The channel it belongs to.
    pub channel: Channel,
    /// The body text.
    pub text: String,
    /// A listing's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A listing's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// ISO 4217 currency of `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The producer's guess at the language (BCP 47), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Public link to the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Pictures and videos attached to the item (at most [`MAX_MEDIA`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
    /// When the author published it.
    pub published_at: DateTime<Utc>,
    /// When the platform handed it to search indexing.
    pub indexed_at: DateTime<Utc>,
    /// Edit version: a newer version of an id replaces an older one; an older one arriving late is ignored.
    pub version: u64,
}

/// Bounds applied while decoding a message; anything beyond them is rejected with a reason.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Largest accepted `text`, in bytes.
    pub max_text_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_message_bytes: 256 * 1024,
            max_text_bytes: 64 * 1024,
        }
    }
}

/// Why a message could not be accepted as a [`ContentItem`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The message is larger than [`DecodeLimits::max_message_bytes`].
    #[error("message is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The message has no payload at all.
    #[error("message has no payload")]
    Empty,
    /// The payload is not valid UTF-8.
    #[error("payload is not valid UTF-8 at byte {0}")]
    Utf8(usize),
    /// The JSON nests deeper than [`MAX_JSON_DEPTH`] (checked before parsing, unknown fields too).
    #[error("JSON nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    /// The payload is not JSON of the expected shape (missing fields, wrong types, ...).
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON has the right shape but a field's value is not acceptable.
    #[error("invalid field `{field}`: {why}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl DecodeError {
    /// A short stable code for metrics labels and dead-letter headers.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Empty => "empty",
            DecodeError::Utf8(_) => "utf8",
            DecodeError::TooDeep => "too_deep",
            DecodeError::Json(_) => "json",
            DecodeError::Field { .. } => "field",
        }
    }
}

/// Longest id (item, channel), in bytes.
pub const MAX_ID_BYTES: usize = 512;
const MAX_SHORT_FIELD_BYTES: usize = 2048;
/// Longest language tag (BCP 47), in bytes.
pub const MAX_LANG_BYTES: usize = 35;
/// Deepest nesting of arrays and objects accepted in a JSON message.
pub const MAX_JSON_DEPTH: usize = 128;

/// Whether `json` nests arrays and objects at most `max` levels deep (string contents are
/// skipped). Checked before parsing: serde bounds the depth of the values it builds, but not of
/// the values it skips (unknown fields), so a deep unknown field would otherwise pass.
pub fn json_depth_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Whether `c` shows nothing of itself while changing how text around it looks or reads:
/// Unicode format characters (bidi overrides and isolates, zero-width spaces and joiners, the
/// byte-order mark, tag characters), line and paragraph separators, control characters, and the
/// Hangul fillers that render as blanks.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
        || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// Marks that render as nothing on their own: the combining grapheme joiner, variation selectors,
/// Mongolian free variation selectors, Khmer inherent vowels. Legitimate in text (emoji use
/// variation selectors), never in an id.
fn is_ignorable_mark(c: char) -> bool {
    matches!(c,
        '\u{034F}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// The rule for ids (items, channels, reporters): 1 to [`MAX_ID_BYTES`] bytes, no whitespace and
/// nothing invisible ([`is_invisible`]), so one id can never look like another. The error says
/// what is wrong.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("is over {MAX_ID_BYTES} bytes"));
    }
    if id
        .chars()
        .any(|c| c.is_whitespace() || is_invisible(c) || is_ignorable_mark(c))
    {
        return Err(
            "must not contain whitespace, control or invisible formatting characters".into(),
        );
    }
    Ok(())
}

/// Text fields may hold line breaks and tabs, but no other control character (PostgreSQL
/// refuses NUL; the rest only deceive).
fn check_text(name: &'static str, text: &str) -> Result<(), DecodeError> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(field(name, "must not contain control characters"));
    }
    Ok(())
}

fn field(field: &'static str, why: impl Into<String>) -> DecodeError {
    DecodeError::Field {
        field,
        why: why.into(),
    }
}

impl ContentItem {
    /// Whether it carries pictures.
    pub fn has_images(&self) -> bool {
        self.media.iter().any(|m| m.kind == MediaKind::Image)
    }

    /// Decodes and validates one message payload.
    pub fn decode(
        payload: Option<&[u8]>,
        limits: &DecodeLimits,
    ) -> Result<ContentItem, DecodeError> {
        let bytes = payload.ok_or(DecodeError::Empty)?;
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        if bytes.len() > limits.max_message_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: limits.max_message_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Utf8(e.valid_up_to()))?;
        if !json_depth_within(bytes, MAX_JSON_DEPTH) {
            return Err(DecodeError::TooDeep);
        }
        let item: ContentItem = serde_json::from_str(text)?;
        item.validate(limits)?;
        Ok(item)
    }

    fn validate(&self, limits: &DecodeLimits) -> Result<(), DecodeError> {
        check_field_id("id", &self.id)?;
        check_field_id("channel.id", &self.channel.id)?;
        if self.id.starts_with(Verdict::CHANNEL_KEY_PREFIX) {
            return Err(field(
                "id",
                format!(
                    "must not start with `{}` (the keys of channel verdicts)",
                    Verdict::CHANNEL_KEY_PREFIX
                ),
            ));
        }
        check_text("text", &self.text)?;
        if self.text.len() > limits.max_text_bytes {
            return Err(field(
                "text",
                format!(
                    "{} bytes, over the limit of {}",
                    self.text.len(),
                    limits.max_text_bytes
                ),
            ));
        }
        for (name, value) in [
            ("title", &self.title),
            ("channel.title", &self.channel.title),
            ("channel.username", &self.channel.username),
            ("url", &self.url),
            ("lang", &self.lang),
        ] {
            if let Some(value) = value {
                if value.len() > MAX_SHORT_FIELD_BYTES {
                    return Err(field(name, format!("over {MAX_SHORT_FIELD_BYTES} bytes")));
                }
                check_text(name, value)?;
            }
        }
        if let Some(lang) = &self.lang {
            let ok = (1..=MAX_LANG_BYTES).contains(&lang.len())
                && lang
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(field(
                    "lang",
                    format!(
                        "must be a language tag of 1 to {MAX_LANG_BYTES} letters, digits and -"
                    ),
                ));
            }
        }
        if let Some(price) = self.price {
            if !price.is_finite() || price < 0.0 {
                return Err(field("price", "must be a finite, non-negative number"));
            }
        }
        if let Some(currency) = &self.currency {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(field("currency", "must be a three-letter ISO 4217 code"));
            }
        }
        if self.media.len() > MAX_MEDIA {
            return Err(field("media", format!("more than {MAX_MEDIA} entries")));
        }
        for m in &self.media {
            if m.url.len() > MAX_SHORT_FIELD_BYTES {
                return Err(field(
                    "media.url",
                    format!("over {MAX_SHORT_FIELD_BYTES} bytes"),
                ));
            }
            if !is_web_url(&m.url) {
                return Err(field("media.url", "must be an http or https URL"));
            }
        }
        if self.version > i64::MAX as u64 {
            return Err(field("version", "must fit in a signed 64-bit integer"));
        }
        Ok(())
    }

    /// The text the classifier reads: title and body (and the channel title for profiles).
    pub fn classifier_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        if self.kind == ContentKind::ChannelProfile {
            if let Some(t) = &self.channel.title {
                out.push_str(t);
                out.push('\n');
            }
        }
        if let Some(t) = &self.title {
            out.push_str(t);
            out.push('\n');
        }
        out.push_str(&self.text);
        out
    }
}

/// Whether `url` is an absolute `http` or `https` URL (the only links the console follows).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn check_field_id(name: &'static str, id: &str) -> Result<(), DecodeError> {
    check_id(id).map_err(|why| field(name, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "id": "tg:channel/1/post/2",
            "kind": "channel_post",
            "channel": {"id": "tg:channel/1", "username": "shop", "title": "Shop"},
            "text": "hello",
            "published_at": "2026-11-01T10:00:00Z",
            "indexed_at": "2026-11-01T10:00:01Z",
            "version": 1,
            "some_future_field": {"x": 1}
        })
    }

    fn decode(v: &serde_json::Value) -> Result<ContentItem, DecodeError> {
        ContentItem::decode(Some(v.to_string().as_bytes()), &DecodeLimits::default())
    }

    #[test]
    fn decodes_valid_item_ignoring_unknown_fields() {
        let item = decode(&sample()).expect("valid");
        assert_eq!(item.id, "tg:channel/1/post/2");
        assert_eq!(item.kind, ContentKind::ChannelPost);
        assert_eq!(item.version, 1);
    }

    #[test]
    fn a_price_with_more_digits_than_a_float_holds_reads_back_the_same() {
        // Found by the fuzzer: serde_json's fast float parsing rounded such a number to a
        // neighbour of the nearest float, and the item's own JSON then decoded differently.
        let mut v = sample();
        v["kind"] = "listing".into();
        let mut text = v.to_string();
        text.pop();
        text.push_str(r#","price":2099999999999999599999999999999999999999990}"#);
        let limits = DecodeLimits::default();
        let item = ContentItem::decode(Some(text.as_bytes()), &limits).expect("valid");
        assert!(item.price.is_some_and(|p| p > 2.0e42), "{text}");
        let again = serde_json::to_vec(&item).expect("serializes");
        let back = ContentItem::decode(Some(&again), &limits).expect("its own JSON decodes");
        assert_eq!(back, item);
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        assert!(matches!(
            ContentItem::decode(None, &DecodeLimits::default()),
            Err(DecodeError::Empty)
        ));
        assert!(matches!(
            ContentItem::decode(Some(b"\xff\xfe"), &DecodeLimits::default()),
            Err(DecodeError::Utf8(0))
        ));
        let mut missing = sample();
        missing.as_object_mut().unwrap().remove("text");
        let err = decode(&missing).unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
        let mut empty_id = sample();
        empty_id["id"] = "".into();
        assert_eq!(decode(&empty_id).unwrap_err().code(), "field");
        let mut bad_currency = sample();
        bad_currency["currency"] = "dollars".into();
        assert_eq!(decode(&bad_currency).unwrap_err().code(), "field");
        let mut bad_media = sample();
        bad_media["media"] = serde_json::json!([{"kind": "image", "url": "javascript:alert(1)"}]);
        assert_eq!(decode(&bad_media).unwrap_err().code(), "field");
        let mut media = sample();
        media["media"] = serde_json::json!([{"kind": "image", "url": "https://cdn.example/a.jpg"}]);
        assert_eq!(decode(&media).unwrap().media.len(), 1);
        let mut bad_kind = sample();
        bad_kind["kind"] = "story".into();
        assert_eq!(decode(&bad_kind).unwrap_err().code(), "json");
        let mut bad_date = sample();
        bad_date["published_at"] = "yesterday".into();
        assert_eq!(decode(&bad_date).unwrap_err().code(), "json");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            ContentItem::decode(Some(deep.as_bytes()), &DecodeLimits::default())
                .unwrap_err()
                .code(),
            "too_deep"
        );
        // Deep nesting inside an unknown field is refused too (serde would skip it unchecked).
        let text = sample().to_string().replacen(
            '{',
            &format!("{{\"extra\":{}1{},", "[".repeat(200), "]".repeat(200)),
            1,
        );
        assert_eq!(
            ContentItem::decode(Some(text.as_bytes()), &DecodeLimits::default())
                .unwrap_err()
                .code(),
            "too_deep"
        );
        let just_deep_enough = sample().to_string().replacen(
            '{',
            &format!("{{\"extra\":{}1{},", "[".repeat(127), "]".repeat(127)),
            1,
        );
        assert!(
            ContentItem::decode(Some(just_deep_enough.as_bytes()), &DecodeLimits::default())
                .is_ok()
        );
        // Strings do not count as nesting.
        assert!(json_depth_within(br#"{"a": "[[[[[[[[[[[[\"[[["}"#, 2));
        // Ids that could pass for others, and ids that collide with channel keys.
        for bad in [
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{2066}b",
            "abc\u{FE0F}",
            "a\u{034F}b",
            "channel:x",
        ] {
            let mut v = sample();
            v["id"] = bad.into();
            assert_eq!(decode(&v).unwrap_err().code(), "field", "{bad:?}");
        }
        let mut nul = sample();
        nul["lang"] = "en\u{0}".into();
        assert_eq!(decode(&nul).unwrap_err().code(), "field");
        let mut long_lang = sample();
        long_lang["lang"] = "x".repeat(2000).into();
        assert_eq!(decode(&long_lang).unwrap_err().code(), "field");
        let mut nul_text = sample();
        nul_text["text"] = "a\u{0}b".into();
        assert_eq!(decode(&nul_text).unwrap_err().code(), "field");
        let mut lang = sample();
        lang["lang"] = "pt-BR".into();
        assert!(decode(&lang).is_ok());
        let limits = DecodeLimits {
            max_message_bytes: 10,
            max_text_bytes: 10,
        };
        assert_eq!(
            ContentItem::decode(Some(sample().to_string().as_bytes()), &limits)
                .unwrap_err()
                .code(),
            "too_large"
        );
    }

    #[test]
    fn profile_text_includes_channel_title() {
        let mut v = sample();
        v["kind"] = "channel_profile".into();
        let item = decode(&v).unwrap();
        assert_eq!(item.classifier_text(), "Shop\nhello");
    }
}
