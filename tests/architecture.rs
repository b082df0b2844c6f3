//! The dependency rule of docs/ARCHITECTURE.md, checked over the workspace's Cargo.toml files
//! and sources so that it cannot rot:
//!
//! - each outside technology is named by one crate only (Kafka by `cordon-stream`, HTTP by
//!   `cordon-api`, SQL by `cordon-review`, Tantivy by `cordon-index`, ONNX Runtime by
//!   `cordon-classifier`), in its Cargo.toml and in source paths — so no crate re-exports one to the others;
//! - the role crates never depend on each other;
//! - no two modules of a crate import each other, directly or in a circle.
//!
//! The end-to-end test crate (`tests/`) is exempt: it talks to the real components.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Outside crates and the workspace crates allowed to depend on them.
const OWNERS: &[(&str, &[&str])] = &[
    ("rdkafka", &["cordon-stream"]),
    ("axum", &["cordon-api"]),
    ("axum-extra", &["cordon-api"]),
    ("hyper", &["cordon-api"]),
    ("hyper-util", &["cordon-api"]),
    ("tower", &["cordon-api"]),
    ("tower-http", &["cordon-api"]),
    ("maud", &["cordon-api"]),
    ("governor", &["cordon-api"]),
    ("sqlx", &["cordon-review"]),
    ("tantivy", &["cordon-index"]),
    ("ort", &["cordon-classifier"]),
    ("tikv-jemallocator", &["cordon"]),
];

/// The roles: libraries the composition root starts, independent of each other.
const ROLES: &[&str] = &["cordon-worker", "cordon-indexer", "cordon-api"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// Every crate under crates/: its name, directory and dependencies (all kinds).
fn crates() -> Result<Vec<(String, PathBuf, BTreeSet<String>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates"))? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let parsed: toml::Table =
            toml::from_str(&text).with_context(|| manifest.display().to_string())?;
        let name = parsed["package"]["name"]
            .as_str()
            .context("package.name")?
            .to_string();
        let mut deps = BTreeSet::new();
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(table) = parsed.get(section).and_then(|t| t.as_table()) {
                deps.extend(table.keys().cloned());
            }
        }
        out.push((name, dir, deps));
    }
    anyhow::ensure!(
        out.len() >= 10,
        "expected the workspace's crates, found {}",
        out.len()
    );
    Ok(out)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn each_outside_technology_is_named_by_its_one_crate() -> Result<()> {
    let mut broken = Vec::new();
    for (name, dir, deps) in crates()? {
        let mut files = Vec::new();
        sources(&dir.join("src"), &mut files)?;
        for (outside, owners) in OWNERS {
            if owners.contains(&name.as_str()) {
                continue;
            }
            if deps.contains(*outside) {
                broken.push(format!("{name} depends on {outside}"));
            }
            let path = format!("{}::", outside.replace('-', "_"));
            for file in &files {
                let text = std::fs::read_to_string(file)?;
                if text.lines().any(|l| {
                    let code = l.split("//").next().unwrap_or("");
                    code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .any(|word| word.starts_with(&path) || word.contains(&format!("::{path}")))
                }) {
                    broken.push(format!("{} names {outside}", file.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the dependency rule is broken:\n{}",
        broken.join("\n")
    );
    Ok(())
}

#[test]
fn roles_do_not_depend_on_each_other() -> Result<()> {
    for (name, _, deps) in crates()? {
        if ROLES.contains(&name.as_str()) {
            for other in ROLES {
                assert!(
                    !deps.contains(*other),
                    "role {name} depends on role {other}: share through cordon-ops or a domain crate"
                );
            }
        }
    }
    Ok(())
}

/// The module a source file is (`a::b` for src/a/b.rs or src/a/b/mod.rs); `None` for the crate
/// root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
        return None;
    }
    Some(parts.join("::"))
}

/// The items the crate root re-exports, by the top-level module that defines them
/// (`pub use queue::{A, B};` in lib.rs maps `A` and `B` to `queue`).
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = root;
    while let Some(at) = rest.find("use ") {
        rest = &rest[at + "use ".len()..];
        let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
        let Some((module, names)) = statement.split_once("::") else {
            continue;
        };
        let module = module.trim();
        if !module.chars().all(|c| c.is_lowercase() || c == '_') || module == "crate" {
            continue;
        }
        for name in names
            .trim_matches(|c| c == '{' || c == '}' || c == ' ')
            .split(',')
        {
            let name = name.trim().rsplit("::").next().unwrap_or_default();
            if !name.is_empty() {
                out.insert(name.to_string(), module.to_string());
            }
        }
    }
    out
}

/// The top-level sibling modules `text` imports through `crate::`: named directly
/// (`crate::queue::…`) or through an item the root re-exports (`crate::{Case, …}`).
fn imports(text: &str, reexported: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |name: &str| {
        let name: String = name
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_lowercase()) {
            out.insert(name);
        } else if let Some(module) = reexported.get(&name) {
            out.insert(module.clone());
        }
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            for part in inner[..inner.find('}').unwrap_or(inner.len())].split(',') {
                add(part);
            }
        } else {
            add(rest);
        }
    }
    out
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() -> Result<()> {
    for (name, dir, _) in crates()? {
        let src = dir.join("src");
        let mut files = Vec::new();
        sources(&src, &mut files)?;
        let root = ["lib.rs", "main.rs"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(src.join(f)).ok())
            .collect::<String>();
        let reexported = reexports(&root);
        // Edges between a crate's top-level modules (a file counts for its top-level module).
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let Some(module) = module_of(&src, file) else {
                continue;
            };
            let top = module.split("::").next().unwrap_or_default().to_string();
            let text = std::fs::read_to_string(file)?;
            let targets = edges.entry(top.clone()).or_default();
            targets.extend(
                imports(&text, &reexported)
                    .into_iter()
                    .filter(|t| *t != top),
            );
        }
        // Depth-first search for a cycle.
        fn visit(
            node: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|p| p == node) {
                let mut cycle = path[at..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_string());
            for next in edges.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(next, edges, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            done.insert(node.to_string());
            None
        }
        let mut done = BTreeSet::new();
        for node in edges.keys() {
            if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
                panic!("{name}: modules import each other: {}", cycle.join(" → "));
            }
        }
    }
    Ok(())
}
