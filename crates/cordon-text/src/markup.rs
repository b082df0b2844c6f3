//! Markup that means nothing to the classifier: HTML tags and character references, BBCode tags.
//!
//! Sellers wrap offers in markup (`<b>coke</b>`, `[color=red]meth[/color]`, `&#99;&#111;ke`) so
//! that tag names and attributes dilute the text's features or spell the goods out of view.
//! [`strip_markup`] removes the names of tags of known names and of their attributes (block-level
//! tags become line breaks, which the featurizer treats as paragraph ends) and decodes character
//! references. Everything else stays text: the text between tags, every attribute value and every
//! other word inside a tag (`<i sell weed dm>` keeps `sell weed dm`), BBCode values
//! (`[color=…]`) — so markup can never hide words, only its own names.

use std::borrow::Cow;

/// HTML elements that end a line of text when rendered.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// HTML elements that only style or wrap text inline.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "big", "body", "center", "cite", "code", "del", "em", "font", "head", "html",
    "i", "img", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "tt", "u", "var",
];

/// BBCode tags of forums and marketplaces.
const BBCODE_TAGS: &[&str] = &[
    "b", "center", "code", "color", "font", "i", "img", "list", "quote", "s", "size", "spoiler",
    "u", "url", "*",
];

/// Named character references worth decoding (the rest stay as written).
const ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("apos", '\''),
    ("copy", '©'),
    ("euro", '€'),
    ("gt", '>'),
    ("hellip", '…'),
    ("laquo", '«'),
    ("lt", '<'),
    ("mdash", '—'),
    ("nbsp", ' '),
    ("ndash", '–'),
    ("pound", '£'),
    ("quot", '"'),
    ("raquo", '»'),
    ("reg", '®'),
    ("shy", '\u{00AD}'),
    ("yen", '¥'),
    ("zwj", '\u{200D}'),
    ("zwnj", '\u{200C}'),
];

/// Attributes and BBCode tags whose values only style text, never shown to a reader: their value is
/// dropped when it looks like styling (see [`is_styling`]), kept as text otherwise.
const STYLING: &[&str] = &[
    "align", "class", "color", "dir", "face", "font", "height", "id", "lang", "rel", "size",
    "style", "target", "width",
];

/// A styling value: one word (a class, a colour, a size) or CSS declarations (`a: b; c: d`).
fn is_styling(value: &str) -> bool {
    let value = value.trim();
    !value.contains(char::is_whitespace)
        || value.split(';').filter(|d| !d.trim().is_empty()).all(|d| {
            d.split_once(':').is_some_and(|(p, _)| {
                let p = p.trim();
                !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            })
        })
}

/// The longest tag this pass looks at; a longer `<...>` stays text.
const MAX_TAG_BYTES: usize = 1024;

/// Removes markup from `text` (see the module documentation); borrows when there is none.
pub fn strip_markup(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| matches!(b, b'<' | b'&' | b'[')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&', '[']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let consumed = match rest.as_bytes()[0] {
            b'<' => html_tag(rest, &mut out),
            b'&' => reference(rest, &mut out),
            _ => bbcode_tag(rest, &mut out),
        };
        match consumed {
            Some(n) => rest = &rest[n..],
            None => {
                out.push(rest.as_bytes()[0] as char);
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The ASCII tag name at the start of `s` (after an optional `/`), lower-cased, and where it ends.
fn tag_name(s: &str, extra: &[u8]) -> Option<(String, usize)> {
    let start = usize::from(s.starts_with('/'));
    let len = s[start..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || extra.contains(b))
        .count();
    (1..=10)
        .contains(&len)
        .then(|| (s[start..start + len].to_ascii_lowercase(), start + len))
}

/// An HTML tag or comment marker at the start of `s`: writes what it leaves and returns its length.
fn html_tag(s: &str, out: &mut String) -> Option<usize> {
    if s.starts_with("<!--") {
        out.push(' ');
        return Some(4);
    }
    let (name, end) = tag_name(&s[1..], b"")?;
    let block = BLOCK_TAGS.contains(&name.as_str());
    if !block && !INLINE_TAGS.contains(&name.as_str()) {
        return None;
    }
    let after = &s[1 + end..];
    if !after.starts_with(|c: char| c == '>' || c == '/' || c.is_ascii_whitespace()) {
        return None;
    }
    let close = after
        .bytes()
        .take(MAX_TAG_BYTES)
        .position(|b| b == b'>' || b == b'<')?;
    if after.as_bytes()[close] != b'>' {
        return None;
    }
    out.push(if block { '\n' } else { ' ' });
    for word in attribute_text(&after[..close]) {
        out.push_str(word);
        out.push(' ');
    }
    Some(1 + end + close + 1)
}

/// What a tag's attribute text holds besides attribute names: every value (but styling values of
/// [`STYLING`] attributes), and every word that is not `name=value`.
fn attribute_text(mut attrs: &str) -> Vec<&str> {
    let mut values = Vec::new();
    loop {
        attrs = attrs.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        let name_len = attrs
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(attrs.len());
        if name_len == 0 {
            return values;
        }
        let name = &attrs[..name_len];
        attrs = attrs[name_len..].trim_start();
        let Some(after_eq) = attrs.strip_prefix('=') else {
            values.push(name);
            continue;
        };
        let after_eq = after_eq.trim_start();
        let (value, rest) = match after_eq.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &after_eq[1..];
                let end = body.find(q).unwrap_or(body.len());
                (&body[..end], &body[(end + 1).min(body.len())..])
            }
            _ => {
                let end = after_eq
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(after_eq.len());
                (&after_eq[..end], &after_eq[end..])
            }
        };
        let styling = STYLING.iter().any(|a| a.eq_ignore_ascii_case(name)) && is_styling(value);
        if !styling {
            values.push(value);
        }
        attrs = rest;
    }
}

/// A BBCode tag at the start of `s` (`[b]`, `[/url]`, `[color=red]`, `[url=https://…]`).
fn bbcode_tag(s: &str, out: &mut String) -> Option<usize> {
    let (name, end) = tag_name(&s[1..], b"*")?;
    if !BBCODE_TAGS.contains(&name.as_str()) {
        return None;
    }
    let after = &s[1 + end..];
    let close = after
        .bytes()
        .take(256)
        .position(|b| b == b']' || b == b'[')?;
    if after.as_bytes()[close] != b']' || !(close == 0 || after.starts_with('=')) {
        return None;
    }
    out.push(' ');
    // The value stays text — a link's target, a quote's author, words hidden as a "colour" — but
    // a real colour, size or font.
    let value = after.get(1..close).unwrap_or("").trim_matches(['"', '\'']);
    if close > 0 && !(STYLING.contains(&name.as_str()) && is_styling(value)) {
        out.push_str(value);
        out.push(' ');
    }
    Some(1 + end + close + 1)
}

/// A character reference at the start of `s` (`&amp;`, `&#99;`, `&#x63;`).
fn reference(s: &str, out: &mut String) -> Option<usize> {
    let body = &s[1..];
    let end = body.bytes().take(12).position(|b| b == b';')?;
    let name = &body[..end];
    let c = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
    } else if let Some(dec) = name.strip_prefix('#') {
        char::from_u32(dec.parse().ok()?)?
    } else {
        ENTITIES.iter().find(|(n, _)| *n == name)?.1
    };
    out.push(c);
    Some(1 + end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_tags_go_text_and_links_stay() {
        assert_eq!(
            strip_markup("<b>buy</b> <span style=\"color:red\">coke</span>"),
            " buy   coke "
        );
        assert_eq!(
            strip_markup("<p>line one</p><div class=x>two<br/>three</div>"),
            "\nline one\n\ntwo\nthree\n"
        );
        assert_eq!(
            strip_markup("<a href='https://t.me/shop' class=\"btn\">menu</a>"),
            " https://t.me/shop menu "
        );
        assert_eq!(
            strip_markup("<img src=x.png alt=\"snow ❄️\">"),
            " x.png snow ❄️ "
        );
    }

    #[test]
    fn words_in_brackets_are_never_hidden() {
        // Inside a tag of a known name only the tag's and attributes' names go.
        assert_eq!(
            strip_markup("<i sell weed dm @plug>"),
            " sell weed dm @plug "
        );
        assert_eq!(
            strip_markup("<a gram of coke for 50$>"),
            " gram of coke for 50$ "
        );
        assert_eq!(strip_markup("<b class=\"coke 80$\">x</b>"), " coke 80$ x ");
        assert_eq!(
            strip_markup("[color=buy coke 80$]x[/color]"),
            " buy coke 80$ x "
        );
        for text in [
            "<coke 80$ dm>",
            "a < b and c > d",
            "<b unclosed",
            "[meth 1g]",
            "[b never closed",
            "&notanentity; & more",
        ] {
            assert_eq!(strip_markup(text).replace(' ', ""), text.replace(' ', ""));
        }
    }

    #[test]
    fn bbcode_and_references() {
        assert_eq!(
            strip_markup("[b]weed[/b] [color=red]now[/color]"),
            " weed   now "
        );
        assert_eq!(
            strip_markup("[url=https://x.onion]shop[/url]"),
            " https://x.onion shop "
        );
        assert_eq!(
            strip_markup("&#99;&#x6f;ke &amp; m&eacute;"),
            "coke & m&eacute;"
        );
        assert_eq!(strip_markup("&#xFFFFFFFF;"), "&#xFFFFFFFF;");
        assert!(matches!(strip_markup("plain text"), Cow::Borrowed(_)));
    }
}
