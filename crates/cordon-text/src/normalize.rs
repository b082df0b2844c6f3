//! Normalization: one canonical form for text that sellers write in many ways to evade filters.
//!
//! In order:
//! 0. Markup is removed ([`crate::markup`]): HTML and BBCode tags, character references.
//! 1. Unicode NFKC (fullwidth and mathematical letters become plain) and lower case.
//! 2. Invisible characters (zero-width, bidi controls, variation selectors, soft hyphen, emoji skin
//!    tones) are removed.
//! 3. Letters spelled out with separators (`M E T H`, `m.e.p.h`, `c-o-k-e`) are joined.
//! 4. Per word: homoglyphs are folded into the word's anchor script (Cyrillic or Greek lookalikes
//!    inside a Latin word and the reverse, after Unicode's confusables), and leetspeak digits and
//!    symbols between letters become letters (`c0ca1ne`, `c@ke`).
//! 5. Runs of three or more identical letters are cut to two (`cocaaaine` → `cocaaine`; the
//!    featurizer also emits each word with doubled letters squeezed).
//! 6. Numbers are split from units and currencies (`3.5g` → `3.5 g`, `80$` → `80 $`).
//! 7. White space is folded to single spaces; a run of white space holding a line break becomes
//!    one line break (the featurizer ends a segment there).

use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// `char::is_alphabetic` with fast paths for ASCII, Latin-1 and Cyrillic.
fn is_letter(c: char) -> bool {
    match c as u32 {
        0..=0x7F => c.is_ascii_alphabetic(),
        0xC0..=0xFF => c != '×' && c != '÷',
        0x400..=0x481 | 0x48A..=0x52F => true,
        _ => c.is_alphabetic(),
    }
}

/// Characters that render as nothing or only steer direction, used to split words invisibly.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0020}'..='\u{E007F}')
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
    Other,
}

fn script(c: char) -> Script {
    match c {
        'a'..='z' | '\u{00DF}'..='\u{024F}' => Script::Latin,
        '\u{0400}'..='\u{052F}' => Script::Cyrillic,
        '\u{0370}'..='\u{03FF}' => Script::Greek,
        _ => Script::Other,
    }
}

/// Lower-case Cyrillic and Greek letters that look like a Latin letter (Unicode confusables).
const TO_LATIN: &[(char, char)] = &[
    ('а', 'a'),
    ('в', 'b'),
    ('е', 'e'),
    ('ё', 'e'),
    ('і', 'i'),
    ('ї', 'i'),
    ('ј', 'j'),
    ('к', 'k'),
    ('м', 'm'),
    ('н', 'h'),
    ('о', 'o'),
    ('р', 'p'),
    ('с', 'c'),
    ('т', 't'),
    ('у', 'y'),
    ('х', 'x'),
    ('ѕ', 's'),
    ('ԁ', 'd'),
    ('ԛ', 'q'),
    ('ԝ', 'w'),
    ('ү', 'y'),
    ('һ', 'h'),
    ('ɡ', 'g'),
    ('α', 'a'),
    ('β', 'b'),
    ('ε', 'e'),
    ('ι', 'i'),
    ('κ', 'k'),
    ('ν', 'v'),
    ('ο', 'o'),
    ('ρ', 'p'),
    ('τ', 't'),
    ('υ', 'u'),
    ('χ', 'x'),
    ('γ', 'y'),
    ('ω', 'w'),
];

/// Latin letters that look like a Cyrillic letter.
const TO_CYRILLIC: &[(char, char)] = &[
    ('a', 'а'),
    ('b', 'в'),
    ('c', 'с'),
    ('e', 'е'),
    ('h', 'н'),
    ('i', 'і'),
    ('k', 'к'),
    ('m', 'м'),
    ('o', 'о'),
    ('p', 'р'),
    ('t', 'т'),
    ('x', 'х'),
    ('y', 'у'),
];

fn lookup(table: &[(char, char)], c: char) -> Option<char> {
    table.iter().find(|(from, _)| *from == c).map(|(_, to)| *to)
}

/// Leetspeak: digits and symbols standing for letters when written between letters.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        '|' => 'l',
        _ => return None,
    })
}

/// Folds homoglyphs of one word into its anchor script: the script that has letters without a
/// lookalike in the other. A word with no anchor, or anchors in both scripts, is left alone
/// unless it is mixed, in which case the script with more letters wins.
fn fold_homoglyphs(word: &mut [char]) {
    let (mut latin, mut cyrillic, mut greek) = (0, 0, 0);
    for &c in word.iter() {
        match script(c) {
            Script::Latin => latin += 1,
            Script::Cyrillic => cyrillic += 1,
            Script::Greek => greek += 1,
            Script::Other => {}
        }
    }
    let mixed = [latin, cyrillic, greek].iter().filter(|n| **n > 0).count() > 1;
    if !mixed {
        return;
    }
    let latin_anchor = word
        .iter()
        .any(|&c| script(c) == Script::Latin && lookup(TO_CYRILLIC, c).is_none());
    let cyrillic_anchor = word
        .iter()
        .any(|&c| script(c) == Script::Cyrillic && lookup(TO_LATIN, c).is_none());
    let to_latin = match (latin_anchor, cyrillic_anchor) {
        (true, false) => true,
        (false, true) => false,
        _ => latin >= cyrillic,
    };
    for c in word.iter_mut() {
        let folded = if to_latin {
            matches!(script(*c), Script::Cyrillic | Script::Greek)
                .then(|| lookup(TO_LATIN, *c))
                .flatten()
        } else {
            (script(*c) == Script::Latin)
                .then(|| lookup(TO_CYRILLIC, *c))
                .flatten()
        };
        if let Some(f) = folded {
            *c = f;
        }
    }
}

/// Replaces leetspeak characters that stand between letters of the same word.
fn fold_leet(word: &mut [char]) {
    let (mut first, mut last, mut digits, mut alphas) = (None, 0, 0, 0);
    for (i, c) in word.iter().enumerate() {
        if is_letter(*c) {
            first.get_or_insert(i);
            last = i;
            alphas += 1;
        } else if c.is_ascii_digit() {
            digits += 1;
        }
    }
    let Some(first) = first else {
        return;
    };
    if digits > alphas || digits + alphas == word.len() && digits == 0 {
        return; // a code or a number with a suffix, or a plain word
    }
    for c in word[first..last].iter_mut() {
        if let Some(l) = leet(*c) {
            *c = l;
        }
    }
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn is_word_char(c: char) -> bool {
    is_alnum(c) || matches!(c, '@' | '$' | '|')
}

const SEPARATORS: &[char] = &['.', '-', '_', '*', '·', '|', '/', ' ', '•', '+', '~'];

/// Joins letters spelled out one by one with separators: `m e t h`, `m.e.p.h`, `c-o-k-e`.
fn join_spelled(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        // A run is letter (sep+ letter){2,} where each letter stands alone.
        let standalone = |j: usize| {
            is_letter(chars[j])
                && (j == 0 || !is_alnum(chars[j - 1]))
                && (j + 1 == chars.len() || !is_alnum(chars[j + 1]))
        };
        if standalone(i) {
            let mut letters = vec![chars[i]];
            let mut j = i + 1;
            loop {
                let mut k = j;
                while k < chars.len() && SEPARATORS.contains(&chars[k]) && k - j < 3 {
                    k += 1;
                }
                if k > j && k < chars.len() && standalone(k) {
                    letters.push(chars[k]);
                    j = k + 1;
                } else {
                    break;
                }
            }
            if letters.len() >= 3 {
                out.extend(letters);
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

const UNITS: &[&str] = &[
    "g",
    "gr",
    "gram",
    "grams",
    "kg",
    "mg",
    "oz",
    "ml",
    "mm",
    "г",
    "гр",
    "грамм",
    "кг",
    "мг",
    "$",
    "€",
    "£",
    "₽",
    "₺",
    "₴",
    "₹",
    "usd",
    "eur",
    "usdt",
    "btc",
    "руб",
    "р",
    "грн",
    "tl",
];

/// Where a space belongs inside a token to split a number from a unit or currency written
/// against it (`3.5g`, `80$`) or a currency from a number (`$50`).
fn unit_split(token: &str) -> Option<usize> {
    if token.starts_with(|c: char| c.is_ascii_digit()) {
        let pos = token.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
        return UNITS.contains(&&token[pos..]).then_some(pos);
    }
    ["$", "€", "£", "₽"].iter().find_map(|currency| {
        let number = token.strip_prefix(currency)?;
        number
            .starts_with(|c: char| c.is_ascii_digit())
            .then_some(currency.len())
    })
}

/// Normalizes text for featurization (see the module documentation for the steps).
pub fn normalize(text: &str) -> String {
    let text = crate::markup::strip_markup(text);
    let text = text.as_ref();
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    let mut push = |c: char| {
        if c.is_ascii() {
            chars.push(c.to_ascii_lowercase());
        } else if is_invisible(c) {
        } else if c.is_uppercase() {
            chars.extend(c.to_lowercase());
        } else {
            chars.push(c);
        }
    };
    // ASCII (and other text already in NFKC) needs no decomposition pass.
    if text.is_ascii() || unicode_normalization::is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().for_each(&mut push);
    } else {
        text.nfkc().for_each(&mut push);
    }
    let mut chars = join_spelled(&chars);

    // One pass: word by word (homoglyphs, leetspeak, repeated letters), white space folded, and
    // units split off at the end of each space-delimited token.
    let mut out = String::with_capacity(text.len() + 16);
    let mut token_start = 0;
    let mut pending_space = false;
    let mut pending_break = false;
    let end_token = |out: &mut String, token_start: usize| {
        if let Some(at) = unit_split(&out[token_start..]) {
            out.insert(token_start + at, ' ');
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            if !out.is_empty() {
                if out.len() > token_start {
                    end_token(&mut out, token_start);
                }
                pending_space = true;
                pending_break |= is_line_break(c);
            }
            i += 1;
            continue;
        }
        if pending_space {
            out.push(if pending_break { '\n' } else { ' ' });
            pending_space = false;
            pending_break = false;
            token_start = out.len();
        }
        if !is_word_char(c) {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word_char(chars[i]) {
            i += 1;
        }
        let word = &mut chars[start..i];
        fold_leet(word);
        fold_homoglyphs(word);
        for (k, c) in word.iter().enumerate() {
            if k >= 2 && word[k - 1] == *c && word[k - 2] == *c && is_letter(*c) {
                continue;
            }
            out.push(*c);
        }
    }
    if out.len() > token_start {
        end_token(&mut out, token_start);
    }
    out
}

/// `char::is_alphanumeric` with fast paths for ASCII, Latin-1 and Cyrillic.
pub(crate) fn is_alnum(c: char) -> bool {
    match c as u32 {
        0..=0x7F => c.is_ascii_alphanumeric(),
        0xC0..=0xFF => c != '×' && c != '÷',
        0x400..=0x481 | 0x48A..=0x52F => true,
        _ => c.is_alphanumeric(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_width_invisibles_and_space() {
        assert_eq!(
            normalize("  ＣＯＣＡＩＮＥ\u{200B}  Sale \t now "),
            "cocaine sale now"
        );
        assert_eq!(normalize("one\r\n \n two\u{2029}three"), "one\ntwo\nthree");
        assert_eq!(normalize("<b>Buy</b> &amp; <i>sell</i>"), "buy & sell");
        assert_eq!(normalize("co\u{200D}ca\u{202E}ine"), "cocaine");
        assert_eq!(normalize("МЕФЕДРОН"), "мефедрон");
        assert_eq!(normalize("𝐜𝐨𝐜𝐚𝐢𝐧𝐞"), "cocaine");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn folds_homoglyphs_into_the_anchor_script() {
        // Cyrillic с, о, а inside a Latin word.
        assert_eq!(normalize("\u{0441}\u{043e}\u{0441}\u{0430}ine"), "cocaine");
        // Greek ο and ι in a Latin word.
        assert_eq!(normalize("her\u{03bf}\u{03b9}n"), "heroin");
        // Latin e and o inside a Cyrillic word.
        assert_eq!(normalize("мeфeдрoн"), "мефедрон");
        // Words of one script are untouched.
        assert_eq!(normalize("привет hello"), "привет hello");
    }

    #[test]
    fn undoes_leetspeak_spelling_and_stretching() {
        assert_eq!(normalize("c0ca1ne"), "cocaine");
        assert_eq!(normalize("h3r0in and c@ke"), "heroin and cake");
        assert_eq!(normalize("M E T H"), "meth");
        assert_eq!(normalize("m.e.p.h 1g"), "meph 1 g");
        assert_eq!(normalize("c-o-k-e here"), "coke here");
        assert_eq!(normalize("cocaaaaine weeeeed"), "cocaaine weed");
        // Numbers, codes and quantities keep their digits.
        assert_eq!(normalize("ak-47 glock 19 9mm"), "ak-47 glock 19 9 mm");
        assert_eq!(normalize("order 2 b2b"), "order 2 b2b");
        // Ordinary short words are not joined.
        assert_eq!(normalize("a cat is on a mat"), "a cat is on a mat");
    }

    #[test]
    fn splits_prices_and_units() {
        assert_eq!(normalize("3.5g for 80$"), "3.5 g for 80 $");
        assert_eq!(normalize("$50/oz"), "$ 50/oz");
        assert_eq!(normalize("5гр 2500₽"), "5 гр 2500 ₽");
        assert_eq!(normalize("❄️❄️ 🔌"), "❄❄ 🔌");
    }
}
