//! `cordon classify`: scores JSON lines offline.

use crate::config::Config;
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use tracing::warn;

#[derive(Deserialize)]
struct ClassifyLine {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    title: Option<String>,
}

pub fn classify(config: &Config, input: &Path) -> Result<ExitCode> {
    let cordon_worker::LoadedModel { classifier, policy } =
        cordon_worker::load_model(&config.model, &config.policy)?;
    let reader: Box<dyn BufRead> = if input == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    let mut total = 0usize;
    let mut pending: Vec<(usize, Result<ClassifyLine, String>)> = Vec::new();
    let flush = |pending: &mut Vec<(usize, Result<ClassifyLine, String>)>,
                 out: &mut dyn Write|
     -> Result<()> {
        let texts: Vec<String> = pending
            .iter()
            .filter_map(|(_, l)| l.as_ref().ok())
            .map(|l| match &l.title {
                Some(t) => format!("{t}\n{}", l.text),
                None => l.text.clone(),
            })
            .collect();
        let mut scores = classifier.score(&texts)?.into_iter();
        let mut texts = texts.iter();
        for (line_no, line) in pending.drain(..) {
            let value = match line {
                Ok(l) => {
                    let s = scores.next().context("one score per text")?;
                    let text = texts.next().context("one text per score")?;
                    let d = policy.decide(&s);
                    let (top, top_score) = s.top();
                    let explanation =
                        classifier.explain(text, top, cordon_worker::EXPLAIN_FEATURES);
                    json!({
                        "id": l.id, "scores": s, "top_category": top, "top_score": top_score,
                        "action": d.action, "category": d.category, "reason": d.reason,
                        "explanation": explanation,
                    })
                }
                Err(e) => json!({ "line": line_no, "error": e }),
            };
            writeln!(out, "{value}")?;
        }
        Ok(())
    };
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                failures += 1;
                pending.push((line_no, Err(format!("unreadable line: {e}"))));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        total += 1;
        let parsed = serde_json::from_str::<ClassifyLine>(&line).map_err(|e| e.to_string());
        if let Err(e) = &parsed {
            failures += 1;
            warn!(line = line_no, error = %e, "invalid input line");
        }
        pending.push((line_no, parsed));
        if pending.len() >= 256 {
            flush(&mut pending, &mut out)?;
        }
    }
    flush(&mut pending, &mut out)?;
    out.flush()?;
    if failures > 0 {
        eprintln!("{failures} of {total} lines could not be classified (see their `error` lines)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
