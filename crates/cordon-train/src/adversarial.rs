//! Adversarial variants of offers: what a seller does to an offer to slip it past a model that
//! counts words — filler text around it, a long benign preamble, markup, the offer split between
//! a listing's title and its text — and how far each variant moves the offer's score.

use std::collections::BTreeMap;

use cordon_domain::{Action, Policy, Scores};
use serde::Serialize;

/// How a variant was made from a bare offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// A paragraph of unrelated text (about 60 words) after the offer.
    ParagraphAfter,
    /// The same paragraph before the offer.
    ParagraphBefore,
    /// About 200 words of unrelated text on both sides.
    FillerAround,
    /// A long benign preamble (about 300 words) before the offer.
    LongPreamble,
    /// Ten unrelated words on the offer's own line, after it.
    InlineWords,
    /// The offer inside HTML (tags, classes, styles, a link).
    Html,
    /// The offer in Markdown (emphasis, a quote, a rule).
    Markdown,
    /// The offer inside BBCode tags.
    Bbcode,
    /// The first words of the offer as a listing's title, the rest as its text.
    TitleSplit,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 9] = [
        Variant::ParagraphAfter,
        Variant::ParagraphBefore,
        Variant::FillerAround,
        Variant::LongPreamble,
        Variant::InlineWords,
        Variant::Html,
        Variant::Markdown,
        Variant::Bbcode,
        Variant::TitleSplit,
    ];
}

/// Unrelated text: weather, cooking, sport, transport — nothing any category is about. Written
/// for this corpus, not taken from the training templates.
const FILLER: &[&str] = &[
    "The morning started grey but by noon the clouds had thinned and the whole valley was bright.",
    "My grandmother always added a spoon of honey to the tomato sauce, and nobody ever guessed why.",
    "The local team lost again on Saturday, two goals in the last ten minutes, and the coach looked tired.",
    "Trains on the northern line will run every twelve minutes this weekend because of track works.",
    "We planted garlic along the fence in October and the first green shoots are already showing.",
    "Утром было прохладно, но к обеду солнце прогрело двор и дети вышли играть в мяч.",
    "La biblioteca del barrio abre ahora los domingos y tiene una sala nueva para leer en silencio.",
    "Remember to water the basil every second day and keep it away from the cold window at night.",
    "The museum's new wing shows old maps of the harbour, drawn long before the bridge was built.",
    "Our cat has decided that the top of the bookshelf is the only acceptable place to sleep.",
];

/// About `words` words of filler, whole sentences, starting at sentence `from`.
fn filler(words: usize, from: usize) -> String {
    let mut out = String::new();
    let mut i = from;
    while out.split_whitespace().count() < words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(FILLER[i % FILLER.len()]);
        i += 1;
    }
    out
}

/// The text of `variant` made from `offer`.
pub fn variant(variant: Variant, offer: &str) -> String {
    match variant {
        Variant::ParagraphAfter => format!("{offer}\n{}", filler(60, 0)),
        Variant::ParagraphBefore => format!("{}\n{offer}", filler(60, 3)),
        Variant::FillerAround => format!("{}\n{offer}\n{}", filler(100, 1), filler(100, 6)),
        Variant::LongPreamble => format!("{}\n\n{offer}", filler(300, 2)),
        Variant::InlineWords => {
            let words: Vec<&str> = FILLER[4].split_whitespace().take(10).collect();
            format!("{offer} {}", words.join(" "))
        }
        Variant::Html => format!(
            "<div class=\"post\" style=\"font-family:Arial\"><p><b>{offer}</b></p>\
             <span class=\"muted\">&nbsp;</span></div>"
        ),
        Variant::Markdown => format!("> **{offer}**\n\n---\n_{}_", filler(12, 7)),
        Variant::Bbcode => {
            format!("[center][size=4][b][color=#ff0000]{offer}[/color][/b][/size][/center]")
        }
        Variant::TitleSplit => {
            let words: Vec<&str> = offer.split_whitespace().collect();
            let cut = (words.len() / 3).max(1).min(words.len());
            format!("{}\n{}", words[..cut].join(" "), words[cut..].join(" "))
        }
    }
}

/// How one variant moved the scores of a set of offers and of legitimate texts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariantReport {
    /// Legitimate texts tried.
    pub legitimate: usize,
    /// Of the legitimate texts the policy allows bare, the share the variant flags.
    pub legitimate_newly_flagged: f64,
    /// Offers tried.
    pub offers: usize,
    /// Mean of (variant's score − bare offer's score) in the bare offer's top category.
    pub mean_change: f64,
    /// The largest drop (bare − variant), 0 when no score dropped.
    pub max_drop: f64,
    /// Share of variants whose score is within [`MARGIN`] of the bare offer's or higher.
    pub within_margin: f64,
    /// Of the offers the policy flags bare, the share still flagged as the variant.
    pub still_flagged: f64,
    /// Of the offers the policy suppresses bare, the share still suppressed as the variant.
    pub still_suppressed: f64,
}

/// How far below the bare offer's score a variant may score and still count as unmoved.
pub const MARGIN: f32 = 0.05;

/// Scores every variant of every offer and legitimate text with `score` and reports the changes
/// per variant.
pub fn evaluate<E>(
    policy: &Policy,
    offers: &[&str],
    legitimate: &[&str],
    mut score: impl FnMut(&[String]) -> Result<Vec<Scores>, E>,
) -> Result<BTreeMap<Variant, VariantReport>, E> {
    let bare_texts: Vec<String> = offers.iter().map(|o| o.to_string()).collect();
    let bare = score(&bare_texts)?;
    let legit_texts: Vec<String> = legitimate.iter().map(|o| o.to_string()).collect();
    let legit_bare = score(&legit_texts)?;
    let mut out = BTreeMap::new();
    for v in Variant::ALL {
        let texts: Vec<String> = legitimate.iter().map(|o| variant(v, o)).collect();
        let (mut allowed, mut newly_flagged) = (0, 0);
        for (b, s) in legit_bare.iter().zip(score(&texts)?) {
            if policy.decide(b).action == Action::Allow {
                allowed += 1;
                newly_flagged += usize::from(policy.decide(&s).action != Action::Allow);
            }
        }
        let texts: Vec<String> = offers.iter().map(|o| variant(v, o)).collect();
        let scored = score(&texts)?;
        let (mut sum, mut max_drop, mut within) = (0f64, 0f64, 0usize);
        let (mut flagged, mut kept_flagged, mut suppressed, mut kept_suppressed) = (0, 0, 0, 0);
        for (b, s) in bare.iter().zip(&scored) {
            let (category, before) = b.top();
            let after = s.get(category);
            sum += f64::from(after - before);
            max_drop = max_drop.max(f64::from(before - after));
            within += usize::from(after >= before - MARGIN);
            let (was, now) = (policy.decide(b).action, policy.decide(s).action);
            if was != Action::Allow {
                flagged += 1;
                kept_flagged += usize::from(now != Action::Allow);
            }
            if was == Action::Suppress {
                suppressed += 1;
                kept_suppressed += usize::from(now == Action::Suppress);
            }
        }
        let share = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        out.insert(
            v,
            VariantReport {
                legitimate: legitimate.len(),
                legitimate_newly_flagged: if allowed == 0 {
                    0.0
                } else {
                    newly_flagged as f64 / allowed as f64
                },
                offers: offers.len(),
                mean_change: if offers.is_empty() {
                    0.0
                } else {
                    sum / offers.len() as f64
                },
                max_drop,
                within_margin: share(within, offers.len()),
                still_flagged: share(kept_flagged, flagged),
                still_suppressed: share(kept_suppressed, suppressed),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_keep_the_offer_and_add_what_they_say() {
        let offer = "fresh coke 1g 80$ dead drops all over town dm @plug_bot";
        for v in Variant::ALL {
            let text = variant(v, offer);
            let plain = cordon_text::normalize(&text);
            for word in ["fresh", "coke", "plug_bot"] {
                assert!(plain.contains(word), "{v:?}: {plain}");
            }
        }
        let words = |v| variant(v, offer).split_whitespace().count();
        assert!(words(Variant::LongPreamble) >= 300);
        assert!(words(Variant::FillerAround) >= 200);
        assert_eq!(variant(Variant::TitleSplit, offer).lines().count(), 2);
    }
}
