//! Normalization: one canonical form for text that sellers write in many ways.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (or only steer direction) and are used to split words
/// invisibly: zero-width spaces and joiners, bidi controls, word joiner, soft hyphen, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}')
}

/// Normalizes text for featurization: Unicode NFKC (fullwidth and stylized letters become plain),
/// lower case, invisible characters removed, and runs of white space folded to one space.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfkc().filter(|c| !is_invisible(*c)) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_width_invisibles_and_space() {
        assert_eq!(
            normalize("  ＣＯＣＡＩＮＥ\u{200B}  Sale\n\tnow "),
            "cocaine sale now"
        );
        assert_eq!(normalize("co\u{200D}ca\u{202E}ine"), "cocaine");
        assert_eq!(normalize("МЕФЕДРОН"), "мефедрон");
        assert_eq!(normalize(""), "");
    }
}
