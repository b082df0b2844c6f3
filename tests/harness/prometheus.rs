//! A real Prometheus (Debian's `prometheus` package, as `scripts/check-deploy.sh` installs it)
//! started by a test on a free port, scraping the targets it is given every second and evaluating
//! the rule files it is given every second.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port, http_client};

/// The Prometheus binary: `CORDON_PROMETHEUS`, else Debian's.
fn prometheus_bin() -> PathBuf {
    std::env::var_os("CORDON_PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

/// A running Prometheus server; stopped when dropped.
pub struct Prometheus {
    child: Child,
    /// Its HTTP address.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name, `host:port` of a `/metrics`) and loading
    /// `rule_files`, and waits until it is ready.
    pub async fn start(targets: &[(&str, &str)], rule_files: &[&Path]) -> Result<Prometheus> {
        let bin = prometheus_bin();
        if !bin.exists() {
            bail!(
                "{} not found: install Debian's prometheus package (scripts/check-deploy.sh does)",
                bin.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        config.push_str("rule_files:\n");
        for file in rule_files {
            config.push_str(&format!("  - {:?}\n", file.display().to_string()));
        }
        config.push_str("scrape_configs:\n");
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job:?}\n    static_configs:\n      - targets: [{addr:?}]\n"
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config)?;
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let prometheus = Prometheus { child, addr, dir };
        let url = format!("http://{}/-/ready", prometheus.addr);
        eventually(
            Duration::from_secs(30),
            "Prometheus to be ready",
            || async {
                Ok(reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
                    .then_some(()))
            },
        )
        .await
        .with_context(|| format!("Prometheus' log:\n{}", prometheus.log()))?;
        Ok(prometheus)
    }

    /// Evaluates `expr` now through `/api/v1/query`; the answer's `data` (an error names the
    /// expression and Prometheus' reason).
    pub async fn query(&self, expr: &str) -> Result<serde_json::Value> {
        let response = http_client()
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", expr)])
            .send()
            .await?;
        let body: serde_json::Value = response.json().await?;
        if body["status"] != "success" {
            bail!("Prometheus refused {expr}: {}", body["error"]);
        }
        Ok(body["data"].clone())
    }

    /// The rule groups Prometheus loaded, with each rule's health (`/api/v1/rules`).
    pub async fn rules(&self) -> Result<serde_json::Value> {
        let body: serde_json::Value = reqwest::get(format!("http://{}/api/v1/rules", self.addr))
            .await?
            .json()
            .await?;
        Ok(body["data"]["groups"].clone())
    }

    /// Prometheus' log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
