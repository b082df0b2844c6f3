//! The OpenAPI description the API serves (`GET /v1/openapi.json`, generated from the handlers)
//! is a valid OpenAPI document (openapi-spec-validator, from PyPI, which scripts/check-deploy.sh
//! installs), names exactly the routes docs/api.md documents, and every operation it names is
//! served (none answers "no such route" or 405) and answers a status it describes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use cordon_e2e::{http_client, repo_root, succeeded, Deployment};
use serde_json::Value;

/// (method, path) of every route docs/api.md names as `` `METHOD /path` ``, path parameters as
/// `{name}`, the query left out. The operations listener's `/metrics` and the console's HTML
/// pages are not in the JSON API's description.
fn documented_routes() -> Result<BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(repo_root().join("docs/api.md"))?;
    let mut out = BTreeSet::new();
    for chunk in text.split('`').skip(1).step_by(2) {
        let Some((method, rest)) = chunk.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PATCH", "DELETE", "PUT"].contains(&method) || !rest.starts_with('/') {
            continue;
        }
        let path = rest.split('?').next().unwrap_or(rest).replace("{*", "{");
        if path == "/metrics" || path.starts_with("/console") {
            continue;
        }
        out.insert((method.to_string(), path));
    }
    Ok(out)
}

/// (method, path) of every operation in an OpenAPI document.
fn described_routes(spec: &Value) -> Result<BTreeSet<(String, String)>> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().context("paths")? {
        for method in item.as_object().context("path item")?.keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    Ok(out)
}

fn validator() -> Result<PathBuf> {
    let cache = std::env::var_os("CORDON_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cordon")))
        .context("CORDON_CACHE or HOME")?;
    let bin = cache.join("venv/bin/openapi-spec-validator");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: scripts/check-deploy.sh installs it",
        bin.display()
    );
    Ok(bin)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_description_is_valid_complete_and_served() -> Result<()> {
    let d = Deployment::new("").await?;
    let _cordon = d.start("all")?;
    d.wait_ready().await?;
    let response = reqwest::get(format!("http://{}/v1/openapi.json", d.api)).await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await?;
    let spec: Value = serde_json::from_str(&text)?;
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        spec["openapi"]
    );

    // A valid OpenAPI 3.1 document.
    let file = d.dir.path().join("openapi.json");
    std::fs::write(&file, &text)?;
    succeeded(
        "openapi-spec-validator",
        Command::new(validator()?).arg(&file).output()?,
    )?;

    // The same routes as docs/api.md, both ways.
    let described = described_routes(&spec)?;
    let documented = documented_routes()?;
    let undocumented: Vec<_> = described.difference(&documented).collect();
    let undescribed: Vec<_> = documented.difference(&described).collect();
    assert!(
        undocumented.is_empty() && undescribed.is_empty(),
        "in the description but not in docs/api.md: {undocumented:?}; \
         in docs/api.md but not in the description: {undescribed:?}"
    );

    // Every described operation is served (anonymously: refused, but by its route), and answers
    // with a status it describes.
    let client = http_client();
    for (method, path) in &described {
        let documented: Vec<String> = spec["paths"][path][method.to_lowercase()]["responses"]
            .as_object()
            .context("responses")?
            .keys()
            .cloned()
            .collect();
        let url = format!(
            "http://{}{}",
            d.api,
            path.replace("{id}", "1").replace("{username}", "x")
        );
        let request = client
            .request(method.parse()?, &url)
            .header("content-type", "application/json")
            .body("{}");
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no such route"),
            "{method} {path} is not served: {body}"
        );
        assert!(
            documented.contains(&status.to_string()),
            "{method} {path} answered {status}, which its description does not list ({documented:?}): {body}"
        );
    }
    // Every operation has a tag and says what it answers.
    for item in spec["paths"].as_object().context("paths")?.values() {
        for (method, operation) in item.as_object().context("item")? {
            assert!(
                operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method}"
            );
            assert!(
                operation["responses"]["200"]["description"].is_string(),
                "{method}"
            );
        }
    }
    Ok(())
}
