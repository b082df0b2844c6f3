//! `cordon eval`: rates per category, language and negative kind, adversarial variants, the
//! cascade.

use crate::config::Config;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The cascade on labelled `items`: the fast model's scores for all, the context model's for
/// those in its band.
pub fn cascade(
    classifier: &cordon_classifier::Classifier,
    policy: &cordon_domain::Policy,
    dir: &Path,
    encoder: Option<std::path::PathBuf>,
    items: &[cordon_train::LabelledText],
    set: &Path,
) -> Result<cordon_train::context::CascadeReport> {
    use cordon_context::{ContextModel, Device, Encoder};
    let encoder = encoder.unwrap_or_else(cordon_worker::default_encoder_dir);
    let encoder = Arc::new(Encoder::load(&encoder, 1, 2, Device::Cpu)?);
    let context = ContextModel::load(dir, encoder, 1, 2, Device::Cpu)?;
    let rule = cordon_train::context::Cascade {
        fast_policy: policy,
        context_policy: &context.card().policy,
        band_low: context.card().band_low,
    };
    let mut rows = Vec::with_capacity(items.len());
    for chunk in items.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|i| i.text.as_str()).collect();
        let fast = classifier.score(&texts)?;
        let sent: Vec<usize> = (0..chunk.len()).filter(|&k| rule.sends(&fast[k])).collect();
        let sent_texts: Vec<&str> = sent.iter().map(|&k| texts[k]).collect();
        let sent_fast: Vec<cordon_domain::Scores> = sent.iter().map(|&k| fast[k]).collect();
        let mut scored = context.score(&sent_texts, &sent_fast)?.into_iter();
        for (k, (item, fast)) in chunk.iter().zip(fast).enumerate() {
            rows.push(cordon_train::context::CascadeItem {
                label: (item.label == 1).then(|| item.category.unwrap_or(fast.top().0)),
                group: item.group.clone(),
                lang: item.lang.clone(),
                fast,
                context: if sent.contains(&k) {
                    scored.next()
                } else {
                    None
                },
            });
        }
    }
    Ok(rule.report(set.display().to_string(), false, &rows))
}

/// Prints a report: flagged and suppressed, per category, per language, per negative kind.
pub fn print_report(report: &cordon_train::Report) {
    let row = |name: &str, r: &cordon_train::Rates| {
        println!(
            "{name:<20} precision {:.3}  recall {:.3}  F1 {:.3}  false-positive rate {:.3}  ({} positives, {} negatives)",
            r.precision, r.recall, r.f1, r.false_positive_rate, r.positives, r.negatives
        )
    };
    println!("\nflagged = review or suppress; suppressed = hidden without a person");
    row("flagged", &report.overall);
    row("suppressed", &report.suppressed);
    println!("\nper category (flagged under it)");
    for (category, rates) in &report.per_category {
        row(category.as_str(), rates);
    }
    println!("\nper language (flagged)");
    for (lang, rates) in &report.per_language {
        row(lang, rates);
    }
    println!("\nper negative kind");
    for (group, rates) in &report.hard_negatives {
        let suppressed = report
            .hard_negatives_suppressed
            .get(group)
            .map_or(0.0, |r| r.false_positive_rate);
        println!(
            "{group:<20} flagged {:.3}  suppressed {:.3}  ({} texts)",
            rates.false_positive_rate, suppressed, rates.negatives
        );
    }
}

pub fn eval(
    config: &Config,
    data: &Path,
    context: Option<&Path>,
    encoder: Option<std::path::PathBuf>,
    as_json: bool,
) -> Result<ExitCode> {
    let cordon_worker::LoadedModel { classifier, policy } =
        cordon_worker::load_model(&config.model, &config.policy)?;
    let items = cordon_train::read_labelled(data)?;
    let score = |texts: &[&str]| classifier.score(texts).map_err(Into::into);
    let report = cordon_train::evaluate(&policy, &items, score)?;
    let cascade = context
        .map(|dir| cascade(&classifier, &policy, dir, encoder, &items, data))
        .transpose()?;
    let offers: Vec<&str> = items
        .iter()
        .filter(|i| i.label == 1)
        .map(|i| i.text.as_str())
        .collect();
    let legitimate: Vec<&str> = items
        .iter()
        .filter(|i| i.label == 0)
        .map(|i| i.text.as_str())
        .collect();
    let adversarial =
        cordon_train::adversarial::evaluate(&policy, &offers, &legitimate, |texts| {
            classifier.score(texts)
        })?;
    if as_json {
        let json =
            serde_json::json!({"report": report, "adversarial": adversarial, "cascade": cascade});
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "model {} on {} ({} texts)",
        classifier.card().version,
        data.display(),
        items.len()
    );
    print_report(&report);
    if let Some(c) = &cascade {
        println!(
            "\ncascade: the context stage decides {:.1} % of the texts ({:.1} % of the legitimate ones: fast top score in its band); the fast model the rest",
            100.0 * c.context_share,
            100.0 * c.context_share_legitimate
        );
        print_report(&c.cascade);
    }
    println!(
        "\nadversarial variants of the {} offers (score change in the bare offer's top category; margin {})",
        offers.len(),
        cordon_train::adversarial::MARGIN
    );
    for (variant, r) in &adversarial {
        println!(
            "{:<20} mean change {:+.3}  max drop {:.3}  within margin {:.3}  still flagged {:.3}  still suppressed {:.3}  legitimate newly flagged {:.3}",
            serde_json::to_value(variant)?.as_str().unwrap_or_default(),
            r.mean_change,
            r.max_drop,
            r.within_margin,
            r.still_flagged,
            r.still_suppressed,
            r.legitimate_newly_flagged
        );
    }
    Ok(ExitCode::SUCCESS)
}
